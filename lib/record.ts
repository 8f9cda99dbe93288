/**
 * The versioned record every part of the store passes around.
 *
 * A record is a key's value together with its last-write-wins version: a
 * timestamp (microseconds from a hybrid logical clock, or the client's) and
 * the id of the node whose clock made it, which breaks ties. A delete is a
 * record too, a tombstone, so that an older write arriving late cannot bring
 * the key back.
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

/** Whether `incoming` should replace `held` under last-write-wins. */
export function isNewer(incoming: Version, held: Version | undefined): boolean {
  return held === undefined || compareVersions(incoming, held) > 0;
}

/** The newest of some records (undefined entries are absent copies). */
export function newestOf(records: readonly (KvRecord | undefined)[]): KvRecord | undefined {
  let best: KvRecord | undefined;
  for (const r of records) if (r && isNewer(r, best)) best = r;
  return best;
}

/** Bytes a record takes on the wire, roughly, for sizing batches. */
export function recordSize(r: KvRecord): number {
  return r.key.length + r.value.length + r.versionNode.length + 24;
}
