/**
 * Conditional writes and counters on a node: the typed in-process API the
 * gRPC edge and the Redis gateway call (`node.lwt.putIf`, `increment`...).
 *
 * Every operation on a key is run by one proposer at a time where possible:
 * the key's first replica that can serve (its leader, as for reads), to
 * which other nodes forward it, and where operations on one key queue.
 * Paxos stays safe with rival proposers (a node that cannot reach the
 * leader runs the operation itself), but rivals outbid each other, and an
 * outbid proposal some replica accepted makes the outcome unknown; one
 * proposer per key avoids both while nothing fails. A forward that timed
 * out is never resent (it may still run), as for plain writes.
 *
 * The voters are the key's `replication_factor` own replicas on the
 * current ring, never stand-ins. While a membership change moves the key's
 * range the operation answers UNAVAILABLE rather than carry votes across.
 *
 * A conditional put may carry an expiry. The leader fixes its absolute
 * expiry once, from its own wall clock, before the first round (a forward
 * carries the client's ttl, not an instant), so every replica commits the
 * same `expiresAtMs`; the leader's clock also says whether the key's current
 * record has expired (then it counts as absent, ops.ts).
 */
import { ringHash } from "../ring.ts";
import type { RingLike } from "../membership/live_ring.ts";
import type { HybridClock, WallClock } from "../hlc.ts";
import type { Logger } from "../log.ts";
import type { HintStore } from "../hints.ts";
import { Code, KvError, PeerUnavailableError } from "../errors.ts";
import type { KvRecord } from "../record.ts";
import { shortKey } from "../validate.ts";
import type { KeyAcceptor } from "./acceptor.ts";
import { type LwtResult, type PaxosTransport, runPaxos } from "./proposer.ts";
import { type Condition, decide, type ExpiryRequest, fixExpiry, type LwtOp } from "./ops.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import type { BallotMark } from "./vote_floor.ts";

export type { Condition, ExpiryRequest, LwtResult };

/** Peer calls of per-key consensus: the three phases, and forwarding an operation to the key's leader. */
export interface LwtTransport extends PaxosTransport {
  forward(peer: string, op: LwtOp): Promise<LwtResult>;
}

/** Options of {@link Lwt}. */
export interface LwtOptions {
  self: string;
  ring: RingLike;
  replicationFactor: number;
  clock: HybridClock;
  /** The wall clock expiries are fixed and checked with (default: the system clock). */
  wall?: WallClock;
  acceptor: KeyAcceptor;
  transport: LwtTransport;
  log: Logger;
  canServe: (id: string) => boolean;
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
  /** How long one operation may take before it gives up. */
  timeoutMs: number;
  /** Where a commit that missed a voter is kept for it (handed off when it is back). */
  hints?: HintStore;
  /** Where the proposer notes each ballot it issues (vote_floor.ts). */
  mark?: BallotMark;
}

/** The result of an increment: the new value as Redis prints it, and the record written. */
export interface IncrementResult {
  value: string;
  record: KvRecord;
}

const decoder = new TextDecoder();

/** Conditional operations of one node. */
export class Lwt {
  readonly #queue = new KeyedQueue();
  readonly #transport: PaxosTransport;

  constructor(private readonly o: LwtOptions) {
    const local = o.acceptor;
    this.#transport = {
      prepare: (v, key, b) => v === o.self ? local.prepare(key, b) : o.transport.prepare(v, key, b),
      accept: (v, key, b, r) => v === o.self ? local.accept(key, b, r) : o.transport.accept(v, key, b, r),
      commit: (v, r) => v === o.self ? local.commit(r) : o.transport.commit(v, r),
    };
  }

  /**
   * Writes `value` if `condition` holds now (an expired key counts as
   * absent), with the expiry given (a ttl or an absolute one; none: the
   * value does not expire). The caller checks the expiry (checkExpiry).
   */
  putIf(
    key: string,
    value: Uint8Array,
    condition: Condition,
    expiry: ExpiryRequest = {},
  ): Promise<LwtResult> {
    const put: LwtOp = { kind: "put", key, value, tombstone: false, condition };
    if (expiry.ttlMs || expiry.expiresAtMs) put.expiry = expiry;
    return this.run(put, false);
  }

  /** Deletes `key` if `condition` holds now. */
  deleteIf(key: string, condition: Condition): Promise<LwtResult> {
    return this.run({ kind: "put", key, value: new Uint8Array(0), tombstone: true, condition }, false);
  }

  /** INCRBY: the new value (an absent or expired key counts as 0); keeps the key's expiry. */
  async increment(key: string, delta: bigint): Promise<IncrementResult> {
    return incremented(await this.run({ kind: "incr", key, delta }, false));
  }

  /** INCRBYFLOAT, through the same path. */
  async incrementFloat(key: string, delta: number): Promise<IncrementResult> {
    return incremented(await this.run({ kind: "incrFloat", key, delta }, false));
  }

  /** Runs an operation here (`forwarded`: a node chose this one as leader) or on the key's leader. */
  async run(op: LwtOp, forwarded: boolean): Promise<LwtResult> {
    const leader = this.#leader(op.key);
    if (forwarded || leader === this.o.self) return await this.#local(op);
    try {
      return await this.o.transport.forward(leader, op);
    } catch (err) {
      if (!(err instanceof PeerUnavailableError)) throw err;
      this.o.onUnreachable(leader, err);
      if (err.code === Code.DEADLINE_EXCEEDED) {
        throw new KvError(
          Code.DEADLINE_EXCEEDED,
          `${err.message}; the operation may still be applied by ${leader}`,
        );
      }
      return await this.#local(op);
    }
  }

  /**
   * The key's first replica that can serve; this node itself when none
   * looks able (the detector may be wrong under load; the voters' answers
   * decide whether the operation can run).
   */
  #leader(key: string): string {
    const rf = this.o.replicationFactor;
    return this.o.ring.preferenceList(key, rf).find((id) => id === this.o.self || this.o.canServe(id)) ??
      this.o.self;
  }

  /** Why conditional operations on `key` are refused now (its range is moving), if they are. */
  blocked(key: string): string | undefined {
    return rangeMoving(this.o.ring, this.o.replicationFactor, key);
  }

  #local(asked: LwtOp): Promise<LwtResult> {
    const blocked = this.blocked(asked.key);
    if (blocked) {
      throw new KvError(Code.UNAVAILABLE, `${blocked}; conditional operations wait; nothing was changed`);
    }
    const wall = this.o.wall ?? Date.now;
    const op = fixExpiry(asked, wall());
    const voters = this.o.ring.preferenceList(op.key, this.o.replicationFactor);
    return this.#queue.run(op.key, () =>
      runPaxos({
        self: this.o.self,
        key: op.key,
        voters,
        transport: this.#transport,
        clock: this.o.clock,
        decide: (current) => decide(op, current, wall()),
        timeoutMs: this.o.timeoutMs,
        mark: this.o.mark,
        // A replica that missed the commit gets it as a hint, as for a plain write (this node holds the record).
        onCommitMissed: (voter, record) => {
          if (voters.includes(this.o.self)) this.o.hints?.add(voter, record.key, record);
        },
      }));
  }
}

/** Why a key's range is moving in a membership change (so its votes would not follow it), if it is. */
export function rangeMoving(ring: RingLike, replicationFactor: number, key: string): string | undefined {
  const moving = ring.pendingWalk?.(ringHash(key), replicationFactor) ?? [];
  return moving.length > 0
    ? `the range of "${shortKey(key)}" is moving to ${moving.join(", ")} in a membership change`
    : undefined;
}

function incremented(r: LwtResult): IncrementResult {
  if (!r.applied) throw new KvError(Code.INTERNAL, "an increment has no condition");
  return { value: decoder.decode(r.record.value), record: r.record };
}
