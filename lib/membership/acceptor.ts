/**
 * The acceptor side of the agreement on each new member list.
 *
 * The list of epoch e+1 is chosen by single-decree Paxos among the members of
 * the list of epoch e (see `proposer.ts`). Per epoch not yet decided here, an
 * acceptor keeps the highest ballot it promised and the last value it
 * accepted, and saves them (Redis) before it answers, so a restart never
 * makes it vote twice. Once this node adopts a list of an epoch, every vote
 * up to that epoch is dropped: the epoch is decided, and a proposer asking
 * about it is answered "decided" with the list held.
 *
 * An acceptor that may have forgotten votes (the memory engine after any
 * start) votes for nothing until it has been given a floor from its peers'
 * answers (`votingFloor`), and then only for epochs above the floor.
 */
import type { MemberList } from "./member_list.ts";

/** A proposal number: higher round wins, then higher node id (so two proposers never share one). */
export interface Ballot {
  round: number;
  node: string;
}

/** A value accepted under a ballot. */
export interface Accepted {
  ballot: Ballot;
  list: MemberList;
}

/** An acceptor's answer to a prepare or an accept. */
export type Vote =
  | { ok: true; accepted?: Accepted }
  | { ok: false; refusal: "outbid"; promised: Ballot; message: string }
  | { ok: false; refusal: "decided"; list: MemberList; message: string }
  | { ok: false; refusal: "not_voting"; message: string };

/** Where an acceptor's votes outlive the process (Redis); text in, text out. */
export interface VoteStore {
  load(): Promise<string | undefined>;
  save(text: string): Promise<void>;
}

/** Options of {@link Acceptor}. */
export interface AcceptorOptions {
  self: string;
  /** The list this node holds: epochs up to its epoch are decided. */
  current: () => MemberList;
  /** Durable votes; without one the acceptor waits for a floor before it votes. */
  store?: VoteStore;
}

interface EpochVotes {
  promised: Ballot;
  accepted?: Accepted;
}

/** Orders ballots: negative when `a` is lower. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round - b.round;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** What a peer tells an acceptor that may have forgotten its votes. */
export interface PeerVotes {
  /** The epoch of the list the peer holds. */
  epoch: number;
  /** The highest epoch the peer holds a promise or an accepted value for (0: none). */
  voteEpoch: number;
}

/**
 * The floor of an acceptor that may have forgotten its votes, from the
 * answers of other members, or undefined while too few have answered.
 *
 * It may have voted in an epoch some peer still holds votes for, or in the
 * epoch after the newest one decided: it must not vote there again. Any
 * majority that accepted a value before its restart, less itself, meets
 * every set of `members - majority + 1` other members, so that many answers
 * show every such epoch. (Safe while fewer than a majority forget at once.)
 */
export function votingFloor(members: number, answers: readonly PeerVotes[]): number | undefined {
  const majority = Math.floor(members / 2) + 1;
  if (answers.length < Math.min(members - 1, members - majority + 1)) return undefined;
  return Math.max(0, ...answers.map((a) => Math.max(a.epoch, a.voteEpoch)));
}

/** One node's votes on new member lists. */
export class Acceptor {
  readonly #votes = new Map<number, EpochVotes>();
  /** Votes only for epochs above this; Infinity until known. */
  #floor = Number.POSITIVE_INFINITY;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: AcceptorOptions) {}

  /** Whether votes survive a restart (then `open` sets the floor; otherwise `setFloor` must). */
  get durable(): boolean {
    return this.o.store !== undefined;
  }

  /** Whether it votes at all yet. */
  get voting(): boolean {
    return this.#floor !== Number.POSITIVE_INFINITY;
  }

  get floor(): number {
    return this.#floor;
  }

  /** Loads saved votes; a durable acceptor then votes for every undecided epoch. */
  async open(): Promise<void> {
    if (!this.o.store) return;
    const text = await this.o.store.load();
    if (text) {
      for (const [epoch, v] of JSON.parse(text) as [number, EpochVotes][]) this.#votes.set(epoch, v);
    }
    this.#floor = -1;
  }

  /** Lets an acceptor that may have forgotten votes vote again, above `epoch`. */
  setFloor(epoch: number): void {
    this.#floor = epoch;
  }

  /** The highest epoch this acceptor holds a vote for (0: none). */
  voteEpoch(): number {
    return Math.max(0, ...this.#votes.keys());
  }

  /** The list accepted for `epoch` (undecided epochs only), and under which ballot. */
  acceptedFor(epoch: number): Accepted | undefined {
    return this.#votes.get(epoch)?.accepted;
  }

  /** Phase 1: promise not to accept lower ballots in `epoch`; tells the value accepted there, if any. */
  prepare(epoch: number, ballot: Ballot): Promise<Vote> {
    return this.#serial(async () => {
      const refused = this.#refusal(epoch);
      if (refused) return refused;
      const v = this.#votes.get(epoch);
      if (v && compareBallots(ballot, v.promised) <= 0) return outbid(epoch, v.promised);
      this.#votes.set(epoch, { promised: ballot, accepted: v?.accepted });
      await this.#save();
      return { ok: true, accepted: v?.accepted };
    });
  }

  /** Phase 2: accepts `list` for `epoch` unless a higher ballot was promised. */
  accept(epoch: number, ballot: Ballot, list: MemberList): Promise<Vote> {
    return this.#serial(async () => {
      const refused = this.#refusal(epoch);
      if (refused) return refused;
      const v = this.#votes.get(epoch);
      if (v && compareBallots(ballot, v.promised) < 0) return outbid(epoch, v.promised);
      this.#votes.set(epoch, { promised: ballot, accepted: { ballot, list } });
      await this.#save();
      return { ok: true };
    });
  }

  /** Drops the votes of decided epochs (called once a list of `epoch` is adopted). */
  decided(epoch: number): void {
    let dropped = false;
    for (const e of this.#votes.keys()) {
      if (e <= epoch && this.#votes.delete(e)) dropped = true;
    }
    if (dropped) this.#serial(() => this.#save()).catch(() => {});
  }

  #refusal(epoch: number): Vote | undefined {
    const current = this.o.current();
    if (epoch <= current.epoch) {
      return {
        ok: false,
        refusal: "decided",
        list: current,
        message: `${this.o.self} holds epoch ${current.epoch}: epoch ${epoch} is decided`,
      };
    }
    if (epoch <= this.#floor) {
      return {
        ok: false,
        refusal: "not_voting",
        message: this.voting
          ? `${this.o.self} restarted without its votes and votes only after epoch ${this.#floor}`
          : `${this.o.self} has not yet learned from its peers which votes it may have forgotten`,
      };
    }
    return undefined;
  }

  async #save(): Promise<void> {
    await this.o.store?.save(JSON.stringify([...this.#votes]));
  }

  /** One vote at a time: a promise and its save are never interleaved with another. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}

function outbid(epoch: number, promised: Ballot): Vote {
  return {
    ok: false,
    refusal: "outbid",
    promised,
    message: `epoch ${epoch}: promised ballot ${promised.round}.${promised.node}`,
  };
}
