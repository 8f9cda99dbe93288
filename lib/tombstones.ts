/**
 * Tombstone purge: deleted keys are forgotten after a grace period.
 *
 * A tombstone must outlive every copy of the value it deleted, or a late
 * replica could bring the key back; `tombstone_grace_ms` (24 h by default)
 * is that bound. A node that is down longer than the grace period and keeps
 * its old data (Redis) may resurrect keys deleted meanwhile, as in any
 * Dynamo-style store: wipe its data before it rejoins.
 *
 * An expired record is a tombstone from its expiry on: it is erased once its
 * expiry is more than the grace period past, never sooner, so its version
 * keeps older copies out as long as a tombstone's would.
 */
import type { Logger } from "./log.ts";
import { scanChunks, type Storage } from "./storage/mod.ts";
import { isPurgeable, type RecordVersion } from "./record.ts";

/** Erases tombstones and expired records older than the grace period; resolves to how many. */
export async function purgeTombstones(
  storage: Storage,
  nowMicros: number,
  graceMs: number,
  log: Logger,
): Promise<number> {
  const nowMs = nowMicros / 1000;
  let purged = 0;
  const old = (r: RecordVersion) => isPurgeable(r, nowMs, graceMs);
  for await (const chunk of scanChunks(storage, old, { maxRecords: 1000, maxBytes: Infinity })) {
    for (const r of chunk) if (await storage.remove(r.key, r)) purged++;
  }
  if (purged > 0) log.info("tombstones purged", { purged, grace_ms: graceMs });
  return purged;
}
