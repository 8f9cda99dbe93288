/**
 * The vote floor of a node's per-key acceptor: the ballot rounds it must
 * refuse because it may have promised or accepted them before it restarted
 * (memory engine: its votes are gone), and the high-water it tells its
 * peers so that they can set theirs.
 *
 * Every ballot is issued by a member's proposer and noted there
 * (`BallotMark`) before it is sent, and noted again by every acceptor that
 * promises or accepts it. So a member's high-water, max(its hybrid clock,
 * its mark), read after this node started, is at least every ballot that
 * member issued, promised or accepted since its own start: every ballot a
 * live proposer may still send with this node's forgotten promise, and every
 * one a live acceptor still holds accepted. (A mark, not the hybrid clock
 * alone: the clock follows an observed timestamp only up to the skew ahead
 * of the wall clock, and an acceptor takes ballots up to twice that.) A
 * member that restarted lost its proposals (never saved) and, on the memory
 * engine, its votes; a Redis member kept its votes, so it answers at least
 * its own time floor (below), which its clock passes 2 skews after its start
 * (no scan of its saved votes needed). Once EVERY other member of the
 * current list has answered (any of them may be a proposer holding a
 * forgotten promise), the maximum of their answers is the peer floor; until
 * then the time floor holds: (start wall ms + 2 × max_clock_skew_ms) × 1000,
 * as a ballot promised before the restart is at most that far ahead of it.
 */
import type { Logger } from "../log.ts";

/** Highest ballot round this node issued, promised or accepted since it started. */
export class BallotMark {
  #highest = 0;

  note(round: number): void {
    if (round > this.#highest) this.#highest = round;
  }

  get highest(): number {
    return this.#highest;
  }
}

/** The ballots an acceptor refuses now. */
export interface VoteFloor {
  /** Ballot rounds at or below this are refused. */
  round: number;
  /**
   * Whether a proposer may bid above it (it came from the peers and is within
   * this node's clock bound): refused as "outbid" at `round`, else "not_voting".
   */
  outbid: boolean;
  /** Why the floor is where it is, for the refusal's message. */
  why: string;
}

/** Inputs of {@link voteFloor}, all ballot rounds (µs). */
export interface FloorInputs {
  /** The start-time floor; 0 when the votes are durable. */
  timeFloor: number;
  /** The peers' floor, once every member answered. */
  peerFloor?: number;
  /** The highest round this node's own clock may stamp now ((wall + skew) × 1000). */
  ceiling: number;
  /** Members not yet heard from, for the message. */
  missing?: readonly string[];
}

/** The floor an acceptor votes above: the lower of the time floor and, once known, the peers' floor. */
export function voteFloor(i: FloorInputs): VoteFloor {
  if (i.peerFloor === undefined) {
    const waiting = i.missing?.length
      ? ` (waiting for ${i.missing.join(", ")} to tell it their ballots)`
      : "";
    return { round: i.timeFloor, outbid: false, why: `its start-time floor${waiting}` };
  }
  if (i.peerFloor >= i.timeFloor) return { round: i.timeFloor, outbid: false, why: "its start-time floor" };
  // A bid above a floor beyond this node's clock bound would be a version from the future.
  return {
    round: i.peerFloor,
    outbid: i.peerFloor < i.ceiling,
    why: "the highest ballot its peers reported",
  };
}

/** A member's answer: its high-water, and the epoch of its member list then. */
export interface HighWater {
  round: number;
  epoch: number;
}

/** The other members of this node's member list, and the list's epoch. */
export interface MemberView {
  others: readonly string[];
  epoch: number;
}

/**
 * The peers' floor: the highest answer, once every other member of the list
 * has answered and none knows a newer list (whose new members would have to
 * answer too); undefined until then.
 */
export function peerFloor(members: MemberView, answers: ReadonlyMap<string, HighWater>): number | undefined {
  const { others, epoch } = members;
  let floor = 0;
  for (const id of others) {
    const a = answers.get(id);
    if (!a || a.epoch > epoch) return undefined;
    floor = Math.max(floor, a.round);
  }
  return floor;
}

/** What a member answers as its high-water: see the module comment. */
export function highWater(o: { clockNow: number; mark: number; durableFloor: number }): number {
  return Math.max(o.clockNow, o.mark, o.durableFloor);
}

/** Options of {@link FloorKeeper}. */
export interface FloorKeeperOptions {
  self: string;
  /** Whether votes outlive the process (Redis): then this node needs no floor of its own. */
  durable: boolean;
  /** Wall-clock ms when the node started (its acceptor was made). */
  startMs: number;
  maxClockSkewMs: number;
  wall: () => number;
  /** This node's hybrid-clock reading. */
  clockNow: () => number;
  /** Lifts this node's clock (so its own next ballot is above the floor). */
  observe: (round: number) => void;
  /** The other members of the current list and its epoch; absent: never known, the time floor holds. */
  members?: () => MemberView;
  log?: Logger;
}

/** A node's floor and high-water, fed by its peers' heartbeat answers. */
export class FloorKeeper {
  readonly mark = new BallotMark();
  readonly #answers = new Map<string, HighWater>();
  readonly #timeFloor: number;
  #peerFloor?: number;

  constructor(private readonly o: FloorKeeperOptions) {
    this.#timeFloor = this.#startFloor();
  }

  /** The high-water this node answers its peers with now. */
  highWater(): number {
    const durableFloor = this.o.durable ? this.#startFloor() : 0;
    return highWater({ clockNow: this.o.clockNow(), mark: this.mark.highest, durableFloor });
  }

  /** Notes a peer's answer to a call this node made after it started (0: the peer sends none). */
  heard(peer: string, round: number | undefined, epoch: number | undefined): void {
    if (this.o.durable || this.#peerFloor !== undefined || !round) return;
    this.#answers.set(peer, { round, epoch: epoch ?? 0 });
    this.#settle();
  }

  /** Whether this node still waits for `peer`'s answer (so it asks at once). */
  waitingFor(peer: string): boolean {
    return !this.o.durable && this.#peerFloor === undefined && !this.#answers.has(peer);
  }

  /**
   * The members whose answer this node still waits for: none once its floor
   * is set, when durable, or once the start-time floor has passed anyway.
   */
  waiting(): string[] {
    const passed = Math.floor(this.o.wall()) * 1000 > this.#timeFloor;
    return this.o.durable || passed || this.#peerFloor !== undefined ? [] : this.#missing();
  }

  /** The floor the acceptor votes above now. */
  floor(): VoteFloor {
    if (this.o.durable) return { round: 0, outbid: false, why: "durable votes" };
    if (this.#peerFloor === undefined) this.#settle();
    const ceiling = (Math.floor(this.o.wall()) + this.o.maxClockSkewMs) * 1000;
    const missing = this.#peerFloor === undefined ? this.#missing() : undefined;
    return voteFloor({ timeFloor: this.#timeFloor, peerFloor: this.#peerFloor, ceiling, missing });
  }

  #startFloor(): number {
    return (Math.floor(this.o.startMs) + 2 * this.o.maxClockSkewMs) * 1000;
  }

  #missing(): string[] {
    const answered = this.#answers;
    return (this.o.members?.().others ?? []).filter((id) => !answered.has(id));
  }

  #settle(): void {
    if (!this.o.members) return;
    const members = this.o.members();
    const floor = peerFloor(members, this.#answers);
    if (floor === undefined) return;
    this.#peerFloor = floor;
    this.#answers.clear();
    this.o.observe(floor);
    this.o.log?.info(
      `${this.o.self} votes on conditional operations above round ${floor}, ` +
        `the highest ballot of its ${members.others.length} peers, ${
          Math.round(this.o.wall() - this.o.startMs)
        } ms after its start`,
    );
  }
}
