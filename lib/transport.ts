/**
 * What the core logic needs from the network, as plain typed calls.
 *
 * The gRPC implementation lives in `grpc/peer_client.ts`; the coordinator,
 * replication, recovery and anti-entropy see only this interface. Every call
 * has a deadline and throws `PeerUnavailableError` when the peer cannot be
 * reached (so callers fail over) or `KvError` when it answered with an error.
 */
import type { KvRecord } from "./record.ts";
import type { HeartbeatReply } from "./detector.ts";
import type { ChunkLimits } from "./storage/mod.ts";

/** A client write: a put, or a delete (tombstone), before it has a version. */
export interface WriteRequest {
  key: string;
  value: Uint8Array;
  /** The client's timestamp, or 0 for the coordinator's clock. */
  timestamp: number;
  tombstone: boolean;
  /** Time to live in ms; the coordinator fixes the expiry from it with its clock. 0 or absent: none. */
  ttlMs?: number;
  /** Absolute expiry, ms since the epoch (used when ttlMs is not given). 0 or absent: none. */
  expiresAtMs?: number;
}

/** The outcome of one write. */
export interface WriteResult {
  key: string;
  ok: boolean;
  /** Status code: 0 when ok. */
  code: number;
  message: string;
  /** The node that coordinated the write. */
  nodeId: string;
  /** Copies written when the answer left. */
  replicas: number;
  /** The version stored (0 when nothing was). */
  timestamp: number;
}

/** The outcome of one read. */
export interface ReadResult {
  key: string;
  found: boolean;
  value: Uint8Array;
  timestamp: number;
  /** When the value found expires, ms since the epoch; 0 or absent: never. */
  expiresAtMs?: number;
  /** The ms left then, by the answering node's clock (set on answers read from the wire). */
  ttlMs?: number;
  /** The node whose clock made the version ("" when not found or unknown). */
  versionNode?: string;
  /** The node that answered. */
  nodeId: string;
  code: number;
  message: string;
}

/** A write that failed with a status code (nothing stored). */
export function failedWrite(key: string, code: number, message: string, nodeId = ""): WriteResult {
  return { key, ok: false, code, message, nodeId, replicas: 0, timestamp: 0 };
}

/** A read that failed with a status code. */
export function failedRead(key: string, code: number, message: string, nodeId = ""): ReadResult {
  return { key, found: false, value: new Uint8Array(0), timestamp: 0, nodeId, code, message };
}

/** A record sent to a replica, with the node it stands in for if any. */
export interface ReplicaItem {
  record: KvRecord;
  /** Set when the receiver holds this for a node that is down. */
  hintFor?: string;
}

/**
 * A pull of the records the puller should hold (recovery), or with
 * `forMoveOfEpoch` only those it gains in the membership change of that
 * epoch. Limits of 0 leave the chunk size to the sender.
 */
export interface RecordPull extends ChunkLimits {
  forMoveOfEpoch?: number;
  /** Cancels the stream (the caller gave up on the peer); it then fails. */
  signal?: AbortSignal;
}

/** A pull of the records in some anti-entropy buckets of the keys both nodes should hold. */
export interface BucketPull extends ChunkLimits {
  bucketBits: number;
  buckets: number[];
}

/** What this node says of itself in a heartbeat. */
export interface HeartbeatInfo {
  status: "ACTIVE" | "JOINING";
  keysCount: number;
  /** Hints this node holds for the receiver. */
  hintsPending: number;
  /** Epoch of this node's member list. */
  epoch?: number;
}

/** Calls to other nodes. */
export interface PeerTransport {
  heartbeat(peer: string, info: HeartbeatInfo): Promise<HeartbeatReply>;
  /** Asks the peer to coordinate these writes (it does not forward them). */
  forwardWrites(peer: string, writes: readonly WriteRequest[]): Promise<WriteResult[]>;
  /** Asks the peer to coordinate these reads. */
  forwardReads(peer: string, keys: readonly string[]): Promise<ReadResult[]>;
  /** Stores records on a replica; resolves to how many were newer there. */
  replicate(peer: string, items: readonly ReplicaItem[]): Promise<number>;
  /** The peer's stored records (tombstones included) for some keys. */
  readRecords(peer: string, keys: readonly string[]): Promise<KvRecord[]>;
  /**
   * Streams the records the peer holds that this node is responsible for, or
   * (`forMoveOfEpoch`) only those it gains in the membership change of that epoch.
   */
  streamRecords(peer: string, opts: RecordPull): AsyncIterable<KvRecord[]>;
  /** Digests of the buckets of keys both nodes should hold. */
  digests(peer: string, bucketBits: number): Promise<number[]>;
  /** Streams the peer's records in some buckets of keys both should hold. */
  streamBuckets(peer: string, opts: BucketPull): AsyncIterable<KvRecord[]>;
}
