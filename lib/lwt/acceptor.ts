/**
 * The acceptor side of per-key Paxos: one small vote record per key that
 * has a conditional operation in flight.
 *
 * Per key it keeps the highest ballot promised and the last record accepted
 * (with its ballot), and saves them before it answers (Redis engine: a meta
 * entry `lwt:<key>` beside the records, like the membership votes), so a
 * restart never makes it vote twice. The key's stored record takes part in
 * every vote: a prepare answers it (the read of Cassandra's LWT merged into
 * the prepare), and a ballot not above its version is refused, since a
 * committed record's version is its ballot. That is what lets the vote
 * record be dropped once its accepted record is committed and nothing
 * higher was promised: the stored version then refuses every lower ballot
 * by itself, so the state is bounded by the keys in flight.
 *
 * An acceptor that forgot its votes (memory engine, after any start) does
 * not vote until it has recovered its data and only for ballots above its
 * floor (vote_floor.ts): the highest ballot its peers report once every
 * member has answered, else 2 × max_clock_skew_ms past its start. Every
 * ballot it promises or accepts is noted in its `BallotMark`, which its
 * peers' floors are made of.
 */
import { type Ballot, compareBallots } from "../membership/acceptor.ts";
import { isNewer, type KvRecord } from "../record.ts";
import type { Storage } from "../storage/mod.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import type { BallotMark, VoteFloor } from "./vote_floor.ts";
import { Buffer } from "node:buffer";

export type { Ballot };

/** A record accepted under a ballot (the record's version may be an earlier ballot's, when completed). */
export interface AcceptedRecord {
  ballot: Ballot;
  record: KvRecord;
}

/** One key's votes. */
export interface KeyVotes {
  promised?: Ballot;
  accepted?: AcceptedRecord;
}

/** An acceptor's answer to a prepare or an accept. */
export type PaxosVote =
  | { ok: true; accepted?: AcceptedRecord; current?: KvRecord }
  | { ok: false; refusal: "outbid"; promised: Ballot; message: string }
  | { ok: false; refusal: "not_voting"; message: string };

/** Where per-key votes outlive the process, if anywhere. */
export interface VoteBook {
  readonly durable: boolean;
  load(key: string): Promise<KeyVotes | undefined>;
  save(key: string, votes: KeyVotes): Promise<void>;
  drop(key: string): Promise<void>;
}

/** Options of {@link KeyAcceptor}. */
export interface KeyAcceptorOptions {
  self: string;
  storage: Storage;
  book: VoteBook;
  /** Ballot rounds refused now (a forgetful acceptor's floor; round 0 when durable). */
  floor: () => VoteFloor;
  /** Where each ballot promised or accepted is noted (what this node tells its peers). */
  mark?: BallotMark;
  /** Whether this node may vote at all now (recovered, storage up). */
  ready: () => boolean;
  /** Why this node does not vote on `key` now (its range is moving), if so. */
  blocked: (key: string) => string | undefined;
}

/** The version of a record as a ballot, to compare the two. */
export function versionBallot(r: KvRecord): Ballot {
  return { round: r.timestamp, node: r.versionNode };
}

/** This node's votes on every key. */
export class KeyAcceptor {
  readonly #queue = new KeyedQueue();

  constructor(private readonly o: KeyAcceptorOptions) {}

  /** Phase 1: promise `ballot`; answers the accepted record and the stored one. */
  prepare(key: string, ballot: Ballot): Promise<PaxosVote> {
    return this.#queue.run(key, async () => {
      const refused = this.#refusal(key, ballot);
      if (refused) return refused;
      const [current] = await this.o.storage.get([key]);
      const votes = (await this.o.book.load(key)) ?? {};
      const floor = highest(votes.promised, current && versionBallot(current));
      if (floor && compareBallots(ballot, floor) <= 0) return outbid(key, floor);
      this.o.mark?.note(ballot.round);
      await this.o.book.save(key, { promised: ballot, accepted: votes.accepted });
      return { ok: true, accepted: votes.accepted, current };
    });
  }

  /** Phase 2: accept `record` under `ballot` unless a higher ballot was promised. */
  accept(key: string, ballot: Ballot, record: KvRecord): Promise<PaxosVote> {
    return this.#queue.run(key, async () => {
      const refused = this.#refusal(key, ballot);
      if (refused) return refused;
      const [current] = await this.o.storage.get([key]);
      const votes = (await this.o.book.load(key)) ?? {};
      if (votes.promised && compareBallots(ballot, votes.promised) < 0) return outbid(key, votes.promised);
      if (current && compareBallots(ballot, versionBallot(current)) <= 0) {
        return outbid(key, versionBallot(current));
      }
      this.o.mark?.note(ballot.round);
      await this.o.book.save(key, { promised: ballot, accepted: { ballot, record } });
      return { ok: true };
    });
  }

  /** Commit: stores the chosen record as an ordinary write, then drops the votes it settles. */
  commit(record: KvRecord): Promise<void> {
    return this.#queue.run(record.key, async () => {
      await this.o.storage.apply([record]);
      const votes = await this.o.book.load(record.key);
      if (!votes) return;
      const [current] = await this.o.storage.get([record.key]);
      const stored = current ?? record;
      const settled = !votes.accepted || !isNewer(votes.accepted.record, stored);
      const covered = !votes.promised || compareBallots(votes.promised, versionBallot(stored)) <= 0;
      if (settled && covered) await this.o.book.drop(record.key);
      else if (settled && votes.accepted) await this.o.book.save(record.key, { promised: votes.promised });
    });
  }

  #refusal(key: string, ballot: Ballot): PaxosVote | undefined {
    if (!this.o.ready()) {
      return { ok: false, refusal: "not_voting", message: `${this.o.self} is not voting yet (recovering)` };
    }
    const blocked = this.o.blocked(key);
    if (blocked) return { ok: false, refusal: "not_voting", message: `${this.o.self}: ${blocked}` };
    const floor = this.o.floor();
    if (ballot.round <= floor.round) {
      const message =
        `${this.o.self} restarted without its votes and votes only for ballots after ${floor.round}, ${floor.why}`;
      // A proposer bids above a floor its peers set, as above any promise.
      if (floor.outbid) {
        return { ok: false, refusal: "outbid", promised: { round: floor.round, node: this.o.self }, message };
      }
      return { ok: false, refusal: "not_voting", message };
    }
    return undefined;
  }
}

function highest(a: Ballot | undefined, b: Ballot | undefined): Ballot | undefined {
  if (!a) return b;
  if (!b) return a;
  return compareBallots(a, b) >= 0 ? a : b;
}

function outbid(key: string, promised: Ballot): PaxosVote {
  return {
    ok: false,
    refusal: "outbid",
    promised,
    message: `key ${key.slice(0, 64)}: ballot ${promised.round}.${promised.node} is promised or stored`,
  };
}

/** Votes kept in this process only (memory engine): forgotten on restart, hence the floor. */
export class MemoryVoteBook implements VoteBook {
  readonly durable = false;
  readonly #votes = new Map<string, KeyVotes>();

  load(key: string): Promise<KeyVotes | undefined> {
    return Promise.resolve(this.#votes.get(key));
  }
  save(key: string, votes: KeyVotes): Promise<void> {
    this.#votes.set(key, votes);
    return Promise.resolve();
  }
  drop(key: string): Promise<void> {
    this.#votes.delete(key);
    return Promise.resolve();
  }
  get size(): number {
    return this.#votes.size;
  }
}

/** Votes saved in the storage engine's metadata (Redis) before the acceptor answers. */
export class StorageVoteBook implements VoteBook {
  readonly durable = true;
  constructor(private readonly storage: Required<Pick<Storage, "loadMeta" | "saveMeta" | "deleteMeta">>) {}

  async load(key: string): Promise<KeyVotes | undefined> {
    const text = await this.storage.loadMeta(metaName(key));
    return text ? decodeVotes(text) : undefined;
  }
  save(key: string, votes: KeyVotes): Promise<void> {
    return this.storage.saveMeta(metaName(key), encodeVotes(votes));
  }
  drop(key: string): Promise<void> {
    return this.storage.deleteMeta(metaName(key));
  }
}

function metaName(key: string): string {
  return `lwt:${key}`;
}

interface SavedRecord extends Omit<KvRecord, "value"> {
  value: string;
}

function encodeVotes(v: KeyVotes): string {
  const accepted = v.accepted && {
    ballot: v.accepted.ballot,
    record: { ...v.accepted.record, value: Buffer.from(v.accepted.record.value).toString("base64") },
  };
  return JSON.stringify({ promised: v.promised, accepted });
}

function decodeVotes(text: string): KeyVotes {
  const v = JSON.parse(text) as { promised?: Ballot; accepted?: { ballot: Ballot; record: SavedRecord } };
  if (!v.accepted) return { promised: v.promised };
  const bytes = new Uint8Array(Buffer.from(v.accepted.record.value, "base64"));
  return {
    promised: v.promised,
    accepted: { ballot: v.accepted.ballot, record: { ...v.accepted.record, value: bytes } },
  };
}
