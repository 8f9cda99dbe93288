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
 * Two places meet a newer version: the coordinator's own copy (before the
 * client is answered) and a replica's copy, when the coordinator's copy
 * lagged (its write was made elsewhere while this node was down or
 * suspected, and had not reached it yet). The replica re-stamps there and
 * then, and names the final version in its answer; the coordinator brings
 * its own copy and the others to it (before answering from write_quorum 2,
 * so the acknowledged version is every copy's). The alternative, reading
 * the replicas' versions before stamping, would cost every write a round
 * trip, and write_quorum 1 promises the client none.
 *
 * Only the first delivery of a fresh write is marked `restamp`: a copy that
 * comes later (a retry, a hint, recovery, anti-entropy, read repair) may be
 * older than a write acknowledged after it, and keeps last-write-wins. So
 * does a write with a client timestamp: its version is the client's choice.
 */
import type { Storage } from "./storage/mod.ts";
import { compareVersions, type KvRecord } from "./record.ts";

/** A write re-stamped by a replica: its index in the push and its final version. */
export interface Restamped {
  index: number;
  timestamp: number;
}

/**
 * The record with a version above `held` (when `held` is newer) and not
 * below `floor`: the coordinator passes its clock's reading, a replica the
 * record's own version.
 */
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
