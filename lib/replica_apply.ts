/**
 * The receiving side of replication: a peer pushes copies (Replicate,
 * ReplicateBatch) and this node stores them.
 *
 * Versions too far ahead of this node's clock are refused one by one (a
 * skewed peer must not plant writes nobody can overwrite), the clock
 * observes what it takes, and a copy held for a node that is down is kept
 * as a hint for it. A fresh cluster-stamped write (`restamp`) that meets a
 * newer version here is re-stamped above it rather than dropped, and the
 * answer names its final version so the coordinator brings the other
 * copies to it (restamp.ts says why). `grpc/server.ts` registers these beside the other
 * NodeService calls; `replication.ts` is the sending side.
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { checkKey } from "./validate.ts";
import { Code, KvError } from "./errors.ts";
import { peerLimitMs } from "./versions.ts";
import type { ReplicaItem } from "./transport.ts";
import { applyAbove, type Restamped } from "./restamp.ts";

/** Copies a peer pushes: one (Replicate) or a batch (ReplicateBatch). */
export interface ReplicaPush {
  /** The sending node ("" if unnamed): refused versions are logged under it. */
  from: string;
  items: ReplicaItem[];
}

/** What this node answers the sender of a push. */
export interface ReplicaAnswer {
  /** How many copies were newer than what this node held (re-stamped ones included). */
  applied: number;
  message: string;
  /** The `restamp` items stored with a new version. */
  restamped?: Restamped[];
}

/** Replicate: one copy; a version too far ahead fails the call. */
export async function replicateOne(node: KvNode, push: ReplicaPush): Promise<ReplicaAnswer> {
  const { applied, refused, restamped } = await applyReplicas(node, push);
  if (refused > 0) throw tooFarAhead(push.items[0].record.timestamp, node.config.limits.maxClockSkewMs);
  return { applied, message: "applied", restamped };
}

/** ReplicateBatch: the copies that pass are applied; the answer says how many were refused. */
export async function replicateBatch(node: KvNode, push: ReplicaPush): Promise<ReplicaAnswer> {
  const { applied, refused, restamped } = await applyReplicas(node, push);
  const message = refused > 0
    ? `${applied} applied, ${refused} refused: version too far ahead of this node's clock`
    : `${applied} applied`;
  return { applied, message, restamped };
}

/** Applies pushed records; versions too far ahead are refused (and logged) one by one. */
async function applyReplicas(
  node: KvNode,
  push: ReplicaPush,
): Promise<{ applied: number; refused: number; restamped: Restamped[] }> {
  const n = node;
  for (const { record } of push.items) checkKey(record.key, n.config.limits);
  const all: KvRecord[] = push.items.map((item) => item.record);
  const admitted = new Set(n.versions.admit(all, push.from || "a peer"));
  const items = push.items.map((item, index) => ({ ...item, index })).filter((it) => admitted.has(it.record));
  for (const { record } of items) n.clock.observe(record.timestamp);
  // Copies keep last-write-wins, even a fresh write's first delivery: a
  // replica cannot tell a delivery that was merely late (its write was
  // acknowledged before the newer one it holds) from one whose coordinator's
  // clock lagged, and re-stamping the late one over a write acknowledged
  // after it lost that write (the chaos suite's rf3-w2-r2 isolate: 335
  // acknowledged writes lost, 79 deletes undone). Only the coordinator,
  // whose held version was stored before the write was made, re-stamps.
  const done = await applyAbove(n.storage, items.map((it) => it.record), () => false, (r) => r.timestamp);
  const restamped: Restamped[] = [];
  items.forEach(({ record, hintFor, index }, i) => {
    const stored = done.records[i];
    if (stored !== record && done.applied[i]) restamped.push({ index, timestamp: stored.timestamp });
    if (hintFor) n.hints.add(hintFor, stored.key, stored);
  });
  return { applied: done.applied.filter(Boolean).length, refused: all.length - items.length, restamped };
}

function tooFarAhead(timestamp: number, maxSkewMs: number): KvError {
  return new KvError(
    Code.INVALID_ARGUMENT,
    `version ${timestamp} is more than ${peerLimitMs(maxSkewMs)} ms (twice limits.max_clock_skew_ms) ` +
      `ahead of this node's clock: refused`,
  );
}
