/**
 * Re-stamping: how a cluster-stamped write (the client sent no timestamp)
 * gets past a newer version of its key instead of being dropped.
 *
 * A coordinator versions such a write with its hybrid clock. Its clock can
 * be behind the version the key holds: a node whose clock is behind (or was
 * restarted on one) meets versions stamped by nodes whose clocks were not,
 * and the hybrid clock follows observed versions only up to
 * `limits.max_clock_skew_ms` ahead of the wall clock. The client, who sent
 * no timestamp, asked for "this write, now": so the write is re-stamped,
 * for that key alone, just above the newest version it meets. The node's
 * clock is not moved, so one key written from a fast clock does not drag
 * every later version of every key forward.
 *
 * Only the coordinator re-stamps, above the copy it holds (stored before
 * this write was made, so passing it is safe); a write acknowledged
 * elsewhere that has not reached the coordinator yet can still win by its
 * version (docs/guarantees.md). A replica keeps last-write-wins for every copy: it
 * cannot tell a first delivery that was merely late (its write acknowledged
 * before the newer version the replica holds) from one whose coordinator's
 * clock lagged, and re-stamping the late one would undo a write
 * acknowledged after it (the chaos suite's rf3-w2-r2 isolate lost 335
 * acknowledged writes and undid 79 deletes when replicas re-stamped). So
 * the coordinator sends its final version and nothing else: the wire's
 * `restamp` mark and `restamped` answer (proto/kvstore.proto) are kept for
 * older nodes but no longer set, which also keeps an older replica from
 * re-stamping. A write with a client timestamp keeps last-write-wins
 * everywhere: its version is the client's choice.
 */
import type { Storage } from "./storage/mod.ts";
import { compareVersions, type KvRecord } from "./record.ts";

/** The record with a version above `held` (when `held` is newer) and not below `floor` (the clock's reading). */
export function restampAbove(record: KvRecord, held: KvRecord | undefined, floor: number): KvRecord {
  const above = held && compareVersions(held, { ...record, timestamp: floor }) >= 0 ? held.timestamp + 1 : 0;
  const timestamp = Math.max(floor, above);
  return timestamp === record.timestamp ? record : { ...record, timestamp };
}

/** Rounds of re-stamping against writes landing in between; each meets a newer held version. */
const ROUNDS = 4;

/**
 * Applies records; each `eligible` one that loses to the version its key
 * holds is re-stamped above it and applied again. Answers, per record,
 * whether it was applied and the record as applied (re-stamped or not).
 */
export async function applyAbove(
  storage: Storage,
  records: readonly KvRecord[],
  eligible: (i: number) => boolean,
  floor: (record: KvRecord) => number,
): Promise<{ applied: boolean[]; records: KvRecord[] }> {
  const out = [...records];
  const applied = await storage.apply(out);
  for (let round = 0; round < ROUNDS; round++) {
    const lost = out.map((_, i) => i).filter((i) => !applied[i] && eligible(i));
    if (lost.length === 0) break;
    const held = await storage.get(lost.map((i) => out[i].key));
    const again = lost.map((i, j) => out[i] = restampAbove(out[i], held[j], floor(out[i])));
    const ok = await storage.apply(again);
    lost.forEach((i, j) => applied[i] = ok[j]);
  }
  return { applied, records: out };
}
