/**
 * The versioned record every part of the store passes around.
 *
 * A record is a key's value together with its last-write-wins version: a
 * timestamp (microseconds from a hybrid logical clock, or the client's) and
 * the id of the node whose clock made it, which breaks ties. A delete is a
 * record too, a tombstone, so that an older write arriving late cannot bring
 * the key back.
 *
 * A record may carry an absolute expiry (`expiresAtMs`, wall-clock ms since
 * the epoch), fixed by its coordinator and replicated with it, so every copy
 * agrees on it. Once past it the record reads as absent but is kept, like a
 * tombstone, with its version until the purge (expiry + tombstone grace):
 * an older write arriving late still loses to it.
 */

/** A key's stored state. */
export interface KvRecord {
  key: string;
  /** Empty for a tombstone. */
  value: Uint8Array;
  /** Last-write-wins timestamp, microseconds since the Unix epoch. */
  timestamp: number;
  /** Node whose clock made the timestamp; breaks ties between equal ones. */
  versionNode: string;
  tombstone: boolean;
  /** Wall-clock ms since the epoch at which the value expires; absent or 0: never. */
  expiresAtMs?: number;
}

/** The version of a record, without its value. */
export type Version = Pick<KvRecord, "timestamp" | "versionNode">;

/** A record without its value: what digests and scan filters look at. */
export type RecordVersion = Omit<KvRecord, "value">;

/** Orders versions: negative when a is older than b, 0 when equal. */
export function compareVersions(a: Version, b: Version): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.versionNode === b.versionNode) return 0;
  return a.versionNode < b.versionNode ? -1 : 1;
}

/** A version with the expiry its record carries, when one does. */
export type ExpiringVersion = Version & Pick<KvRecord, "expiresAtMs">;

/**
 * Whether `incoming` should replace `held` under last-write-wins. Equal
 * versions are the same write, so they normally agree on the expiry too;
 * should they not (a copy damaged or pushed by hand), the earlier expiry
 * wins, so copies still converge and anti-entropy stops finding them apart.
 */
export function isNewer(incoming: ExpiringVersion, held: ExpiringVersion | undefined): boolean {
  if (held === undefined) return true;
  const order = compareVersions(incoming, held);
  return order > 0 || (order === 0 && expiryRank(incoming.expiresAtMs) < expiryRank(held.expiresAtMs));
}

/** An expiry as a number to order by: no expiry is the latest of all. */
export function expiryRank(expiresAtMs: number | undefined): number {
  return expiresAtMs ? expiresAtMs : Infinity;
}

/** Whether a record's expiry has passed at `nowMs` (a record without one never expires). */
export function isExpired(r: Pick<KvRecord, "expiresAtMs">, nowMs: number): boolean {
  return r.expiresAtMs !== undefined && r.expiresAtMs > 0 && r.expiresAtMs <= nowMs;
}

/** Whether a record reads as present at `nowMs`: neither deleted nor expired. */
export function isLive(r: Pick<KvRecord, "tombstone" | "expiresAtMs">, nowMs: number): boolean {
  return !r.tombstone && !isExpired(r, nowMs);
}

/**
 * Whether the purge may erase a record at `nowMs`: a tombstone older than the
 * grace period, or a record expired longer ago than it. Until then an expired
 * record keeps its version, as a tombstone does, so no older copy comes back.
 */
export function isPurgeable(
  r: Pick<KvRecord, "tombstone" | "timestamp" | "expiresAtMs">,
  nowMs: number,
  graceMs: number,
): boolean {
  if (r.tombstone) return r.timestamp < (nowMs - graceMs) * 1000;
  return isExpired(r, nowMs - graceMs - 1);
}

/** The newest of some records (undefined entries are absent copies). */
export function newestOf(records: readonly (KvRecord | undefined)[]): KvRecord | undefined {
  let best: KvRecord | undefined;
  for (const r of records) if (r && isNewer(r, best)) best = r;
  return best;
}

/** Bytes a record takes on the wire, roughly, for sizing batches. */
export function recordSize(r: KvRecord): number {
  return r.key.length + r.value.length + r.versionNode.length + (r.expiresAtMs ? 32 : 24);
}
