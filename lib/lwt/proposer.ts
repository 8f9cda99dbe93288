/**
 * The proposer side of per-key Paxos: one conditional operation on one key,
 * run among the key's own replicas (never stand-ins), as Cassandra's
 * lightweight transactions do.
 *
 * 1. Prepare with a ballot above any seen; a majority promises and each
 *    voter answers its accepted record and its stored one (the read).
 * 2. An accepted record newer than every stored one may have been chosen by
 *    a proposer that stopped before its commit: it is completed first
 *    (accepted under this ballot, committed), then the round starts over.
 * 3. The operation is decided against the newest stored record (the
 *    condition, or the counter's new value) and proposed as a record whose
 *    version is the ballot, so committed records order like their ballots
 *    and a stale accepted record is recognised as older than a later commit.
 * 4. Once a majority accepted it, it is chosen: it is committed (stored as
 *    an ordinary write) at the voters, and the answer leaves.
 *
 * A proposal some voter accepted but that was then outbid may still be
 * chosen by whoever completes it. So before retrying, the next prepare
 * looks for it: found accepted or stored, the operation took effect and its
 * result is answered; not found, the outcome is unknown and the proposer
 * says so (DEADLINE_EXCEEDED) rather than apply the operation a second time.
 * A proposal no voter accepted is simply retried. The network comes in
 * through `PaxosTransport`, so this runs in tests without it.
 */
import { type Poll as VotePoll, pollVoters } from "../vote_poll.ts";
import { KvError } from "../errors.ts";
import { Code } from "../errors.ts";
import { isNewer, type KvRecord, newestOf } from "../record.ts";
import type { HybridClock } from "../hlc.ts";
import { type AcceptedRecord, type Ballot, type PaxosVote } from "./acceptor.ts";
import { compareBallots } from "../membership/acceptor.ts";
import type { Decision } from "./ops.ts";
import type { BallotMark } from "./vote_floor.ts";

/** The calls a proposer makes to each voter (itself included). An unreachable voter throws. */
export interface PaxosTransport {
  prepare(voter: string, key: string, ballot: Ballot): Promise<PaxosVote>;
  accept(voter: string, key: string, ballot: Ballot, record: KvRecord): Promise<PaxosVote>;
  commit(voter: string, record: KvRecord): Promise<void>;
}

/** How an operation ended (failures are thrown as KvError). */
export type LwtResult =
  /** Applied: the record written, with its version. */
  | { applied: true; record: KvRecord }
  /** The condition did not hold: the key's current live record (undefined: absent). */
  | { applied: false; current?: KvRecord };

/** Options of {@link runPaxos}. */
export interface RunOptions {
  self: string;
  key: string;
  /** The key's own replicas. */
  voters: readonly string[];
  transport: PaxosTransport;
  clock: HybridClock;
  /** The operation, decided against the key's current record (may throw a KvError). */
  decide: (current: KvRecord | undefined) => Decision;
  /** Gives up after this many milliseconds (wall clock of `now`). */
  timeoutMs: number;
  now?: () => number;
  /** Waits before attempt `n` after being outbid: random, so rivals stop colliding. */
  pause?: (attempt: number) => Promise<void>;
  /** Told of each voter a chosen record's commit did not reach (to hint it). */
  onCommitMissed?: (voter: string, record: KvRecord) => void;
  /** Where each ballot is noted before it is sent (what this node tells its peers, vote_floor.ts). */
  mark?: BallotMark;
}

type Poll = VotePoll<PaxosVote>;

/** Runs one operation on one key to its end. */
export async function runPaxos(o: RunOptions): Promise<LwtResult> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.timeoutMs;
  const need = Math.floor(o.voters.length / 2) + 1;
  /** Proposals of ours some voter may have accepted, by version. */
  const mine = new Map<string, KvRecord>();
  let round = 0;
  for (let attempt = 1;; attempt++) {
    if (attempt > 1) await (o.pause ?? defaultPause)(attempt);
    if (now() > deadline) throw giveUp(o, mine, "timed out while other proposers contended for it");
    const ballot = { round: round = Math.max(o.clock.now(), round + 1), node: o.self };
    o.mark?.note(ballot.round);
    const promises = await poll(o.voters, need, (v) => o.transport.prepare(v, o.key, ballot));
    if (promises.ok.length < need) {
      round = Math.max(round, highestPromised(promises));
      o.clock.observe(round);
      if (!promises.refused.some((r) => r.vote.refusal === "outbid")) {
        throw giveUp(o, mine, describe(promises, need));
      }
      continue;
    }
    const stored = newestOf(promises.ok.map((p) => p.vote.current));
    const pending = highestAccepted(promises.ok.map((p) => p.vote.accepted));
    if (pending && isNewer(pending.record, stored)) {
      const done = await propose(o, ballot, pending.record, need);
      if (done !== "chosen") {
        round = Math.max(round, done);
        continue;
      }
      if (mine.has(versionKey(pending.record))) return { applied: true, record: pending.record };
      attempt = 0;
      continue;
    }
    if (stored && mine.has(versionKey(stored))) return { applied: true, record: stored };
    if (mine.size > 0) {
      throw giveUp(o, mine, "a proposal of it was accepted by some replicas and then outbid");
    }
    const decision = o.decide(stored);
    if (!decision.apply) return { applied: false, current: decision.current };
    const record: KvRecord = {
      key: o.key,
      value: decision.value,
      tombstone: decision.tombstone,
      timestamp: ballot.round,
      versionNode: ballot.node,
    };
    if (decision.expiresAtMs) record.expiresAtMs = decision.expiresAtMs;
    const done = await propose(o, ballot, record, need, mine);
    if (done === "chosen") return { applied: true, record };
    round = Math.max(round, done);
  }
}

/**
 * Phase 2 and commit of one record: "chosen" once a majority accepted it
 * (and the commit went out), else the highest round that outbid it.
 * `mine` learns the record as soon as any voter may have accepted it.
 */
async function propose(
  o: RunOptions,
  ballot: Ballot,
  record: KvRecord,
  need: number,
  mine?: Map<string, KvRecord>,
): Promise<"chosen" | number> {
  const accepts = await poll(o.voters, need, (v) => o.transport.accept(v, o.key, ballot, record));
  if (mine && (accepts.ok.length > 0 || accepts.silent.length > 0)) mine.set(versionKey(record), record);
  if (accepts.ok.length < need) {
    if (!accepts.refused.some((r) => r.vote.refusal === "outbid")) {
      throw giveUp(o, mine ?? new Map(), describe(accepts, need));
    }
    return highestPromised(accepts);
  }
  // Chosen: a later proposer completes it even if this commit reaches too few.
  await pollDone(o.voters, need, (v) =>
    o.transport.commit(v, record).catch((err) => {
      o.onCommitMissed?.(v, record);
      throw err;
    }));
  return "chosen";
}

function giveUp(o: RunOptions, mine: Map<string, KvRecord>, why: string): KvError {
  const key = o.key.slice(0, 64);
  if (mine.size > 0) {
    return new KvError(
      Code.DEADLINE_EXCEEDED,
      `conditional operation on "${key}": outcome unknown, it may have been applied (${why})`,
    );
  }
  return new KvError(Code.UNAVAILABLE, `conditional operation on "${key}" not applied: ${why}`);
}

function describe(p: Poll, need: number): string {
  const no = [...p.silent, ...p.refused.map((r) => `${r.voter} (${r.vote.message})`)];
  return `needs ${need} of the key's replicas, ${p.ok.length} voted; no vote from ${no.join(", ")}`;
}

function poll(
  voters: readonly string[],
  need: number,
  ask: (voter: string) => Promise<PaxosVote>,
): Promise<Poll> {
  return pollVoters(voters, need, ask);
}

/** Resolves once `need` calls succeeded or all ended. */
function pollDone(
  voters: readonly string[],
  need: number,
  call: (voter: string) => Promise<void>,
): Promise<void> {
  return poll(voters, need, (v) => call(v).then(() => ({ ok: true }))).then(() => {});
}

function highestAccepted(values: (AcceptedRecord | undefined)[]): AcceptedRecord | undefined {
  let best: AcceptedRecord | undefined;
  for (const a of values) if (a && (!best || compareBallots(a.ballot, best.ballot) > 0)) best = a;
  return best;
}

function highestPromised(p: Poll): number {
  return Math.max(0, ...p.refused.map((r) => r.vote.refusal === "outbid" ? r.vote.promised.round : 0));
}

function versionKey(r: KvRecord): string {
  return `${r.timestamp}@${r.versionNode}`;
}

function defaultPause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 10 * Math.min(attempt, 10)));
}
