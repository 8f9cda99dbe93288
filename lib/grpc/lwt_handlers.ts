/**
 * The gRPC handlers of conditional writes, counters and per-key Paxos: each
 * checks its input, calls the node's `lwt` (or its acceptor), and converts
 * the answer. Registered by `server.ts`, which stays a thin edge.
 */
import type { KvNode } from "../node.ts";
import { Code, KvError } from "../errors.ts";
import { checkKey, checkValue } from "../validate.ts";
import { ballotFromMsg, type KeyValuePairMsg } from "./messages.ts";
import type { BallotMsg } from "./messages.ts";
import {
  checkedRecord,
  type ConditionalAnswerMsg,
  type ConditionalOpMsg,
  conditionFromMsg,
  type ConditionMsg,
  expiryFromMsg,
  incrementFromMsg,
  type IncrementRequestMsg,
  opFromMsg,
  paxosVoteToMsg,
  refusalToMsg,
  resultToAnswer,
  resultToMsg,
} from "./lwt_messages.ts";

export { hasCondition } from "./lwt_messages.ts";

/** Copies a conditional write is committed at before it is answered: a majority of the key's replicas. */
function committedCopies(node: KvNode): number {
  return Math.floor(node.config.replication.replicationFactor / 2) + 1;
}

/**
 * Put with a condition (the cluster versions it: a client timestamp is
 * refused), and the expiry it names, if any (ttl_ms or expires_at_ms).
 */
export async function conditionalPut(
  node: KvNode,
  req: {
    key: string;
    value: Uint8Array;
    timestamp: number;
    condition: ConditionMsg | null;
    ttl_ms?: number;
    expires_at_ms?: number;
  },
): Promise<ConditionalAnswerMsg> {
  checkKey(req.key, node.config.limits);
  checkValue(req.value, node.config.limits);
  if (req.timestamp !== 0) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      "a conditional write is versioned by the cluster: leave timestamp 0",
    );
  }
  const expiry = expiryFromMsg(req);
  const r = await node.lwt.putIf(req.key, req.value, conditionFromMsg(req.condition), expiry);
  return resultToAnswer(r, node.id, committedCopies(node));
}

/** Delete with a condition. */
export async function conditionalDelete(
  node: KvNode,
  req: { key: string; condition: ConditionMsg | null },
): Promise<ConditionalAnswerMsg> {
  checkKey(req.key, node.config.limits);
  const r = await node.lwt.deleteIf(req.key, conditionFromMsg(req.condition));
  return resultToAnswer(r, node.id, committedCopies(node));
}

/** Increment: INCRBY or INCRBYFLOAT. */
export async function increment(node: KvNode, req: IncrementRequestMsg) {
  const op = incrementFromMsg(req, node.config.limits);
  const r = op.kind === "incr"
    ? await node.lwt.increment(op.key, op.delta)
    : await node.lwt.incrementFloat(op.key, (op as { delta: number }).delta);
  return {
    value: r.value,
    timestamp: r.record.timestamp,
    version_node: r.record.versionNode,
    node_id: node.id,
  };
}

/**
 * NodeService handlers of the Paxos phases and of forwarded operations. A
 * ballot or record version too far ahead of this node's clock is refused
 * (versions.ts): accepted, it would freeze the key for every later ballot.
 */
export function paxosHandlers(node: KvNode) {
  const limits = node.config.limits;
  const acc = node.lwtAcceptor;
  const bounded = (round: number, what: string) => {
    if (!node.versions.accepts(round)) {
      throw new KvError(Code.INVALID_ARGUMENT, `the ${what} is too far ahead of this node's clock`);
    }
  };
  const ballotOf = (m: BallotMsg | null) => {
    const b = ballotFromMsg(m);
    bounded(b.round, "ballot");
    if (b.node === "" || b.node.length > limits.maxKeyBytes) {
      throw new KvError(Code.INVALID_ARGUMENT, "a ballot names its node (at most max_key_bytes)");
    }
    return b;
  };
  return {
    prepare: async (req: { key: string; ballot: BallotMsg | null }) => {
      checkKey(req.key, limits);
      return paxosVoteToMsg(await acc.prepare(req.key, ballotOf(req.ballot)));
    },
    accept: async (req: { key: string; ballot: BallotMsg | null; record: KeyValuePairMsg | null }) => {
      checkKey(req.key, limits);
      const record = checkedRecord(req.record, req.key, limits);
      bounded(record.timestamp, "record's version");
      return paxosVoteToMsg(await acc.accept(req.key, ballotOf(req.ballot), record));
    },
    commit: async (req: { record: KeyValuePairMsg | null }) => {
      const record = checkedRecord(req.record, undefined, limits);
      bounded(record.timestamp, "record's version");
      await acc.commit(record);
      return {};
    },
    forward: async (req: ConditionalOpMsg) => {
      const op = opFromMsg(req, limits);
      try {
        return resultToMsg(await node.lwt.run(op, true));
      } catch (err) {
        // This node answered: the forwarding node must not take it for unreachable.
        if (err instanceof KvError) return refusalToMsg(err);
        throw err;
      }
    },
  };
}
