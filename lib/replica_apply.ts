/**
 * The receiving side of replication: a peer pushes copies (Replicate,
 * ReplicateBatch) and this node stores them.
 *
 * Versions too far ahead of this node's clock are refused one by one (a
 * skewed peer must not plant writes nobody can overwrite), the clock
 * observes what it takes, and a copy held for a node that is down is kept
 * as a hint for it. Every copy keeps last-write-wins, one an older node
 * marks `restamp` included: this node cannot tell a late delivery from
 * one whose coordinator's clock lagged (restamp.ts says why), so it never
 * re-stamps and its answer names no re-stamped version. `grpc/server.ts`
 * registers these beside the other NodeService calls; `replication.ts` is
 * the sending side.
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { checkKey } from "./validate.ts";
import { Code, KvError } from "./errors.ts";
import { peerLimitMs } from "./versions.ts";
import type { ReplicaItem } from "./transport.ts";

/** Copies a peer pushes: one (Replicate) or a batch (ReplicateBatch). */
export interface ReplicaPush {
  /** The sending node ("" if unnamed): refused versions are logged under it. */
  from: string;
  items: ReplicaItem[];
}

/** What this node answers the sender of a push. */
export interface ReplicaAnswer {
  /** How many copies were newer than what this node held. */
  applied: number;
  message: string;
}

/** Replicate: one copy; a version too far ahead fails the call. */
export async function replicateOne(node: KvNode, push: ReplicaPush): Promise<ReplicaAnswer> {
  const { applied, refused } = await applyReplicas(node, push);
  if (refused > 0) throw tooFarAhead(push.items[0].record.timestamp, node.config.limits.maxClockSkewMs);
  return { applied, message: "applied" };
}

/** ReplicateBatch: the copies that pass are applied; the answer says how many were refused. */
export async function replicateBatch(node: KvNode, push: ReplicaPush): Promise<ReplicaAnswer> {
  const { applied, refused } = await applyReplicas(node, push);
  const message = refused > 0
    ? `${applied} applied, ${refused} refused: version too far ahead of this node's clock`
    : `${applied} applied`;
  return { applied, message };
}

/** Applies pushed records; versions too far ahead are refused (and logged) one by one. */
async function applyReplicas(node: KvNode, push: ReplicaPush): Promise<{ applied: number; refused: number }> {
  const n = node;
  for (const { record } of push.items) checkKey(record.key, n.config.limits);
  const all: KvRecord[] = push.items.map((item) => item.record);
  const records = n.versions.admit(all, push.from || "a peer");
  for (const r of records) n.clock.observe(r.timestamp);
  const applied = await n.storage.apply(records);
  push.items.forEach(({ record, hintFor }) => {
    if (hintFor && records.includes(record)) n.hints.add(hintFor, record.key, record);
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
