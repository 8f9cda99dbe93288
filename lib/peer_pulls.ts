/**
 * What a node hands a peer that pulls records from it: recovery, the ranges
 * a peer gains in a membership change, and anti-entropy's digests and
 * buckets.
 *
 * Each pull names its requester, who must be a member other than this node,
 * and asks for chunks within this node's own limits. A range move is served
 * only at the requester's epoch, so both sides filter by the same rings.
 * `grpc/server.ts` registers these beside the other NodeService calls.
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { Code, KvError } from "./errors.ts";
import { recordsFor } from "./recovery.ts";
import { bucketDigests, recordsInBuckets } from "./anti_entropy.ts";
import { BUCKET_BITS } from "./config.ts";
import type { BucketPull, RecordPull } from "./transport.ts";
import type { ChunkLimits } from "./storage/mod.ts";

/**
 * Recovery and range moves: the records the requester should hold, or only
 * those it gains in a membership change (after catching up to its epoch,
 * so both sides filter by the same rings).
 */
export async function* streamRecordsTo(
  node: KvNode,
  requester: string,
  pull: RecordPull,
): AsyncGenerator<KvRecord[]> {
  const n = node;
  const epoch = pull.forMoveOfEpoch;
  const forMove = epoch !== undefined;
  if (forMove && epoch > n.membership.epoch) await n.membership.syncFrom([requester]);
  if (forMove && epoch !== n.membership.epoch) {
    throw new KvError(
      Code.FAILED_PRECONDITION,
      `node ${n.id} is at membership epoch ${n.membership.epoch}, not ${epoch}`,
    );
  }
  checkPeer(n, requester);
  n.log.info(forMove ? "streaming records for a range move" : "streaming records for recovery", {
    to: requester,
  });
  const rf = n.config.replication.replicationFactor;
  const wanted = forMove
    ? (key: string) => n.ring.gains(key, requester, rf)
    : (key: string) => n.ring.holds(key, requester, rf);
  yield* recordsFor(n.storage, wanted, chunkLimits(n, pull));
}

/** Anti-entropy: this node's digest of each bucket it shares with the requester. */
export async function digestsFor(node: KvNode, requester: string, bucketBits: number): Promise<number[]> {
  checkPeer(node, requester);
  checkBucketBits(bucketBits);
  return await bucketDigests(node.storage, node.shared, node.id, requester, bucketBits);
}

/** Anti-entropy: the records of the buckets whose digests differed. */
export function bucketsFor(node: KvNode, requester: string, pull: BucketPull): AsyncIterable<KvRecord[]> {
  const n = node;
  checkPeer(n, requester);
  checkBucketBits(pull.bucketBits);
  return recordsInBuckets(
    n.storage,
    n.shared,
    n.id,
    requester,
    pull.bucketBits,
    pull.buckets,
    chunkLimits(n, pull),
  );
}

function checkPeer(node: KvNode, id: string): void {
  if (id === node.id || !node.membership.list.members.some((m) => m.id === id)) {
    throw new KvError(Code.INVALID_ARGUMENT, `"${id}" is not a peer in this cluster`);
  }
}

/** A peer's bucket_bits must be one a node of this cluster could be configured with. */
function checkBucketBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < BUCKET_BITS.min || bits > BUCKET_BITS.max) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `bucket_bits must be ${BUCKET_BITS.min}-${BUCKET_BITS.max} (recovery.anti_entropy_bucket_bits), not ${bits}`,
    );
  }
}

/** The chunk size a requester asked for, within this node's own limits. */
function chunkLimits(node: KvNode, asked: ChunkLimits): ChunkLimits {
  const own = node.chunkLimits();
  return {
    maxRecords: asked.maxRecords > 0 ? Math.min(asked.maxRecords, own.maxRecords * 10) : own.maxRecords,
    maxBytes: asked.maxBytes > 0 ? Math.min(asked.maxBytes, own.maxBytes) : own.maxBytes,
  };
}
