/**
 * The key inspector of the status page: where a key lives and whether its
 * copies agree, without its value.
 *
 * Given a key, it finds the key's position on the ring, its owner and
 * replicas (and, during a membership change, the nodes gaining it), and
 * reads each holder's own copy: this node's from its storage, a peer's over
 * the peer transport (ReadRecords, the call read repair uses). Each copy is
 * reduced to its version (timestamp and node), value size, state (live,
 * tombstone, expired, absent) and expiry: the value never leaves this
 * module, so the admin port shows which keys exist but not what they hold.
 */
import type { KvNode } from "../node.ts";
import { compareVersions, isExpired, type KvRecord } from "../record.ts";
import { ringHash } from "../ring.ts";
import { errorMessage } from "../errors.ts";

/** One holder's copy, without its value. */
export interface CopyView {
  node: string;
  /** owner (first on the ring), replica, or gaining (receives it in the change under way). */
  role: "owner" | "replica" | "gaining";
  /** Whether the holder answered. */
  reachable: boolean;
  /** Why it did not. */
  error?: string;
  state?: "live" | "tombstone" | "expired" | "absent";
  /** The version: microseconds of its hybrid clock, and the node whose clock made it. */
  timestamp_us?: number;
  version_node?: string;
  /** Bytes of the value (0 for a tombstone). */
  size_bytes?: number;
  expires_at_ms?: number;
  /** Whether this copy carries the newest version seen. */
  newest?: boolean;
}

/** What the inspector shows of a key. */
export interface KeyInspection {
  key: string;
  /** The key's hash as a fraction of the ring (0 at the top, clockwise). */
  position: number;
  owner: string;
  replicas: string[];
  epoch: number;
  copies: CopyView[];
  /** Whether every holder that answered has the same version, state and expiry. */
  agree: boolean;
}

/** What the inspector needs of a node: where keys go, and each holder's copy. */
export interface KeyPlaces {
  replicationFactor: number;
  epoch: number;
  /** The holders from a ring position (owner first), and those gaining it in a change under way. */
  walk(position: number, count: number): string[];
  pendingWalk(position: number, count: number): string[];
  /** A holder's own copy of a key (undefined: it holds none); throws when it does not answer. */
  read(node: string, key: string): Promise<KvRecord | undefined>;
}

/** A node's ring and copies, as the inspector sees them. */
export function placesOf(node: KvNode): KeyPlaces {
  return {
    replicationFactor: node.config.replication.replicationFactor,
    get epoch() {
      return node.membership.epoch;
    },
    walk: (position, count) => node.ring.walk(position, count),
    pendingWalk: (position, count) => node.ring.pendingWalk(position, count),
    read: async (id, key) =>
      id === node.id
        ? (await node.storage.get([key]))[0]
        : (await node.peerRecords(id, [key])).find((r) => r.key === key),
  };
}

/** Where `key` lives and what each holder's copy is (never its value). */
export async function inspectKey(places: KeyPlaces, key: string, now = Date.now()): Promise<KeyInspection> {
  const rf = places.replicationFactor;
  const position = ringHash(key);
  const replicas = places.walk(position, rf);
  const holders = [...replicas, ...places.pendingWalk(position, rf)];
  const copies = await Promise.all(holders.map(async (id, i): Promise<CopyView> => {
    const role = i === 0 ? "owner" : i < replicas.length ? "replica" : "gaining";
    try {
      return { node: id, role, reachable: true, ...describe(await places.read(id, key), now) };
    } catch (err) {
      return { node: id, role, reachable: false, error: errorMessage(err) };
    }
  }));
  markNewest(copies);
  return {
    key,
    position: position / 2 ** 32,
    owner: replicas[0],
    replicas,
    epoch: places.epoch,
    copies,
    agree: agree(copies),
  };
}

/** A copy's version and state, dropping its value. */
function describe(r: KvRecord | undefined, now: number): Partial<CopyView> {
  if (!r) return { state: "absent" };
  return {
    state: r.tombstone ? "tombstone" : isExpired(r, now) ? "expired" : "live",
    timestamp_us: r.timestamp,
    version_node: r.versionNode,
    size_bytes: r.tombstone ? 0 : r.value.byteLength,
    expires_at_ms: r.expiresAtMs ? r.expiresAtMs : undefined,
  };
}

function markNewest(copies: CopyView[]): void {
  let best: CopyView | undefined;
  for (const c of copies) if (c.timestamp_us !== undefined && (!best || order(c, best) > 0)) best = c;
  for (const c of copies) if (c.reachable) c.newest = best !== undefined && order(c, best) === 0;
}

function order(a: CopyView, b: CopyView): number {
  if (a.timestamp_us === undefined || b.timestamp_us === undefined) {
    return a.timestamp_us === undefined ? -1 : 1;
  }
  return compareVersions(
    { timestamp: a.timestamp_us, versionNode: a.version_node! },
    { timestamp: b.timestamp_us, versionNode: b.version_node! },
  );
}

/** Same version, state and expiry on every holder that answered. */
function agree(copies: CopyView[]): boolean {
  const seen = copies.filter((c) => c.reachable)
    .map((c) => `${c.state}|${c.timestamp_us ?? ""}|${c.version_node ?? ""}|${c.expires_at_ms ?? ""}`);
  return new Set(seen).size <= 1;
}
