/**
 * Tombstone purge: deleted keys are forgotten after a grace period.
 *
 * A tombstone must outlive every copy of the value it deleted, or a late
 * replica could bring the key back; `tombstone_grace_ms` (24 h by default)
 * is that bound. A node that is down longer than the grace period and keeps
 * its old data (Redis) may resurrect keys deleted meanwhile, as in any
 * Dynamo-style store: wipe its data before it rejoins.
 */
import type { Logger } from "./log.ts";
import { scanChunks, type Storage } from "./storage/mod.ts";

/** Erases tombstones older than the grace period; resolves to how many. */
export async function purgeTombstones(
  storage: Storage,
  nowMicros: number,
  graceMs: number,
  log: Logger,
): Promise<number> {
  const cutoff = nowMicros - graceMs * 1000;
  let purged = 0;
  const old = (r: { tombstone: boolean; timestamp: number }) => r.tombstone && r.timestamp < cutoff;
  for await (const chunk of scanChunks(storage, old, { maxRecords: 1000, maxBytes: Infinity })) {
    for (const r of chunk) if (await storage.remove(r.key, r)) purged++;
  }
  if (purged > 0) log.info("tombstones purged", { purged, grace_ms: graceMs });
  return purged;
}
