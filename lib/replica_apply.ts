/**
 * The receiving side of replication: a peer pushes copies (Replicate,
 * ReplicateBatch) and this node stores them.
 *
 * Versions too far ahead of this node's clock are refused one by one (a
 * skewed peer must not plant writes nobody can overwrite), the clock
 * observes what it takes, and a copy held for a node that is down is kept
 * as a hint for it. `grpc/server.ts` registers these beside the other
 * NodeService calls; `replication.ts` is the sending side.
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { checkKey } from "./validate.ts";
import { Code, KvError } from "./errors.ts";
import { peerLimitMs } from "./versions.ts";
import type {
  ReplicateBatchRequestMsg,
  ReplicateBatchResponseMsg,
  ReplicateRequestMsg,
} from "./grpc/messages.ts";

/** Replicate: one copy; a version too far ahead fails the call. */
export async function replicateOne(
  node: KvNode,
  req: ReplicateRequestMsg,
): Promise<{ success: boolean; message: string; replica_node_id: string }> {
  const n = node;
  const { refused } = await applyReplicas(n, [req]);
  if (refused > 0) throw tooFarAhead(req.timestamp, n.config.limits.maxClockSkewMs);
  return { success: true, message: "applied", replica_node_id: n.id };
}

/** ReplicateBatch: the copies that pass are applied; the answer says how many were refused. */
export async function replicateBatch(
  node: KvNode,
  req: ReplicateBatchRequestMsg,
): Promise<ReplicateBatchResponseMsg> {
  const n = node;
  const { applied, refused } = await applyReplicas(n, req.items);
  const message = refused > 0
    ? `${applied} applied, ${refused} refused: version too far ahead of this node's clock`
    : `${applied} applied`;
  return { success: true, message, replica_node_id: n.id, applied };
}

/** Applies pushed records; versions too far ahead are refused (and logged) one by one. */
async function applyReplicas(
  node: KvNode,
  items: ReplicateRequestMsg[],
): Promise<{ applied: number; refused: number }> {
  const n = node;
  const all = items.map((m): KvRecord => {
    checkKey(m.key, n.config.limits);
    return {
      key: m.key,
      value: m.value,
      timestamp: m.timestamp,
      versionNode: m.version_node || m.primary_node,
      tombstone: m.operation === "DELETE",
    };
  });
  const records = n.versions.admit(all, items[0]?.primary_node || "a peer");
  for (const r of records) n.clock.observe(r.timestamp);
  const applied = await n.storage.apply(records);
  items.forEach((m, i) => {
    if (m.hint_for && records.includes(all[i])) n.hints.add(m.hint_for, m.key, all[i]);
  });
  return { applied: applied.filter(Boolean).length, refused: all.length - records.length };
}

function tooFarAhead(timestamp: number, maxSkewMs: number): KvError {
  return new KvError(
    Code.INVALID_ARGUMENT,
    `version ${timestamp} is more than ${peerLimitMs(maxSkewMs)} ms (twice limits.max_clock_skew_ms) ` +
      `ahead of this node's clock: refused`,
  );
}
