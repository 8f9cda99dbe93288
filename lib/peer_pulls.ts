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
import type { BucketRequestMsg, DigestRequestMsg, StreamRecordsRequestMsg } from "./grpc/messages.ts";

/**
 * Recovery and range moves: the records the requester should hold, or only
 * those it gains in a membership change (after catching up to its epoch,
 * so both sides filter by the same rings).
 */
export async function* streamRecordsTo(
  node: KvNode,
  req: StreamRecordsRequestMsg,
): AsyncGenerator<KvRecord[]> {
  const n = node;
  const to = req.requesting_node_id;
  if (req.for_move && req.epoch > n.membership.epoch) await n.membership.syncFrom([to]);
  if (req.for_move && req.epoch !== n.membership.epoch) {
    throw new KvError(
      Code.FAILED_PRECONDITION,
      `node ${n.id} is at membership epoch ${n.membership.epoch}, not ${req.epoch}`,
    );
  }
  checkPeer(n, to);
  n.log.info(req.for_move ? "streaming records for a range move" : "streaming records for recovery", {
    to,
  });
  const rf = n.config.replication.replicationFactor;
  const wanted = req.for_move
    ? (key: string) => n.ring.gains(key, to, rf)
    : (key: string) => n.ring.holds(key, to, rf);
  yield* recordsFor(n.storage, wanted, chunkLimits(n, req));
}

/** Anti-entropy: this node's digest of each bucket it shares with the requester. */
export async function digestsFor(
  node: KvNode,
  req: DigestRequestMsg,
): Promise<{ digests: number[]; provider_node_id: string }> {
  const n = node;
  checkPeer(n, req.requesting_node_id);
  const digests = await bucketDigests(
    n.storage,
    n.shared,
    n.id,
    req.requesting_node_id,
    req.bucket_bits,
  );
  return { digests, provider_node_id: n.id };
}

/** Anti-entropy: the records of the buckets whose digests differed. */
export function bucketsFor(node: KvNode, req: BucketRequestMsg): AsyncIterable<KvRecord[]> {
  const n = node;
  checkPeer(n, req.requesting_node_id);
  return recordsInBuckets(
    n.storage,
    n.shared,
    n.id,
    req.requesting_node_id,
    req.bucket_bits,
    req.buckets,
    chunkLimits(n, req),
  );
}

function checkPeer(node: KvNode, id: string): void {
  if (id === node.id || !node.membership.list.members.some((m) => m.id === id)) {
    throw new KvError(Code.INVALID_ARGUMENT, `"${id}" is not a peer in this cluster`);
  }
}

/** The chunk size a requester asked for, within this node's own limits. */
function chunkLimits(node: KvNode, req: { max_records: number; max_bytes: number }) {
  const own = node.chunkLimits();
  return {
    maxRecords: req.max_records > 0 ? Math.min(req.max_records, own.maxRecords * 10) : own.maxRecords,
    maxBytes: req.max_bytes > 0 ? Math.min(req.max_bytes, own.maxBytes) : own.maxBytes,
  };
}
