/**
 * The proposer side of the agreement on each new member list: one run of
 * single-decree Paxos for one epoch.
 *
 * The voters are the members of the list the new one replaces. Phase 1 asks
 * them to promise a ballot higher than any they have seen; if any of a
 * majority already accepted a value for the epoch, the proposer must carry
 * the one with the highest ballot instead of its own (so a change a claimant
 * left half-done is completed, never replaced). Phase 2 asks them to accept
 * it; once a majority has, the value is chosen and nothing else can be for
 * that epoch. A proposer outbid by a higher ballot tries again with a higher
 * round, so neither a split vote nor a dead proposer holds an epoch forever.
 * The network comes in through `VoteTransport`, so this is tested without it.
 */
import { type Poll as VotePoll, pollVoters } from "../vote_poll.ts";
import type { MemberList } from "./member_list.ts";
import { type Accepted, type Ballot, compareBallots, type Vote } from "./acceptor.ts";

/** The two calls a proposer makes (to itself too). A voter that cannot be reached throws. */
export interface VoteTransport {
  prepare(voter: string, epoch: number, ballot: Ballot): Promise<Vote>;
  accept(voter: string, epoch: number, ballot: Ballot, list: MemberList): Promise<Vote>;
}

/** How a run ended. */
export type Outcome =
  /** A list was chosen for the epoch: this proposer's own, or one a voter had accepted. */
  | { kind: "chosen"; list: MemberList; own: boolean; ballot: Ballot }
  /** A voter already holds a list of this epoch or later: it is decided, here is the newest. */
  | { kind: "decided"; list: MemberList }
  /** No majority answered; `silent` names who did not, with why. */
  | { kind: "unavailable"; phase: 1 | 2; silent: string[]; accepted: string[]; message: string }
  /** Outbid on every attempt: another proposer is deciding this epoch. */
  | { kind: "contended"; message: string }
  /** A majority answered, but some do not vote yet (restarted without their votes): later. */
  | { kind: "not_ready"; message: string };

/** Options of {@link propose}. */
export interface ProposeOptions {
  self: string;
  /** The epoch being decided (one above the voters' list). */
  epoch: number;
  voters: readonly string[];
  value: MemberList;
  transport: VoteTransport;
  /** Rounds at or below this are known taken (a previous run's). */
  lastRound?: number;
  /** Told each ballot this run uses (the caller starts its next run above it). */
  onBallot?: (ballot: Ballot) => void;
  /** Attempts before giving up to a rival proposer (default 4). */
  attempts?: number;
  /** Waits before attempt `n` (2, 3...) after being outbid: random, so two rivals stop colliding. */
  pause?: (attempt: number) => Promise<void>;
}

type Poll = VotePoll<Vote>;

/** Runs Paxos for one epoch until a list is chosen, the epoch is found decided, or no majority answers. */
export async function propose(o: ProposeOptions): Promise<Outcome> {
  const need = Math.floor(o.voters.length / 2) + 1;
  const attempts = o.attempts ?? 4;
  let round = o.lastRound ?? 0;
  let lastOutbid = "";
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await (o.pause ?? defaultPause)(attempt);
    const ballot = { round: ++round, node: o.self };
    o.onBallot?.(ballot);
    const promises = await poll(o.voters, need, (v) => o.transport.prepare(v, o.epoch, ballot));
    const settled = settle(promises, need, 1, o, []);
    if (settled) return settled;
    if (promises.ok.length < need) {
      round = Math.max(round, highestPromised(promises));
      lastOutbid = outbidBy(promises);
      continue;
    }
    const carried = highestAccepted(promises.ok.map((p) => p.vote.accepted));
    const list = carried?.list ?? o.value;
    const accepts = await poll(o.voters, need, (v) => o.transport.accept(v, o.epoch, ballot, list));
    if (accepts.ok.length >= need) return { kind: "chosen", list, own: carried === undefined, ballot };
    const failed = settle(accepts, need, 2, o, accepts.ok.map((a) => a.voter));
    if (failed) return failed;
    round = Math.max(round, highestPromised(accepts));
    lastOutbid = outbidBy(accepts);
  }
  return {
    kind: "contended",
    message: `epoch ${o.epoch} is being decided by another node (${lastOutbid}); outbid ${attempts} times`,
  };
}

/**
 * One prepare round, to tell members that only look down (to a failure
 * detector) from members that do not answer: undefined when a majority
 * answered (even without a vote), else who did not, as `propose` says it.
 */
export async function probeMajority(
  o: Omit<ProposeOptions, "value" | "attempts" | "pause">,
): Promise<Extract<Outcome, { kind: "unavailable" }> | undefined> {
  const need = Math.floor(o.voters.length / 2) + 1;
  const ballot = { round: (o.lastRound ?? 0) + 1, node: o.self };
  o.onBallot?.(ballot);
  const p = await poll(o.voters, need, (v) => o.transport.prepare(v, o.epoch, ballot));
  if (p.ok.length + p.refused.length >= need) return undefined;
  const out = settle(p, need, 1, o, []);
  return out?.kind === "unavailable" ? out : undefined;
}

/** The end of a run a poll shows, if any: decided elsewhere, or too few answers to go on. */
function settle(
  p: Poll,
  need: number,
  phase: 1 | 2,
  o: Pick<ProposeOptions, "epoch" | "voters">,
  accepted: string[],
): Outcome | undefined {
  const decided = p.refused.flatMap((r) => r.vote.refusal === "decided" ? [r.vote.list] : []);
  if (decided.length > 0) return { kind: "decided", list: decided.sort((a, b) => b.epoch - a.epoch)[0] };
  if (p.ok.length >= need || p.refused.some((r) => r.vote.refusal === "outbid")) return undefined;
  const waiting = p.refused.filter((r) => r.vote.refusal === "not_voting");
  if (phase === 1 && p.ok.length + waiting.length >= need) {
    return {
      kind: "not_ready",
      message: `epoch ${o.epoch}: ${waiting.map((r) => r.vote.message).join("; ")}`,
    };
  }
  const silent = [
    ...p.silent,
    ...p.refused.map((r) => `${r.voter} (${r.vote.message})`),
  ];
  const after = phase === 1
    ? "nothing was changed"
    : `accepted by ${accepted.join(", ") || "none"}: the change completes once a majority is back`;
  return {
    kind: "unavailable",
    phase,
    silent,
    accepted,
    message: `epoch ${o.epoch} needs ${need} of the ${o.voters.length} members (${o.voters.join(", ")}), ` +
      `${p.ok.length} voted; no vote from ${silent.join(", ")}; ${after}`,
  };
}

function poll(voters: readonly string[], need: number, ask: (voter: string) => Promise<Vote>): Promise<Poll> {
  return pollVoters(voters, need, ask);
}

function highestAccepted(values: (Accepted | undefined)[]): Accepted | undefined {
  let best: Accepted | undefined;
  for (const a of values) if (a && (!best || compareBallots(a.ballot, best.ballot) > 0)) best = a;
  return best;
}

function highestPromised(p: Poll): number {
  return Math.max(0, ...p.refused.map((r) => r.vote.refusal === "outbid" ? r.vote.promised.round : 0));
}

function outbidBy(p: Poll): string {
  return p.refused.flatMap((r) =>
    r.vote.refusal === "outbid"
      ? [`${r.voter} promised ${r.vote.promised.round}.${r.vote.promised.node}`]
      : []
  ).join(", ");
}

function defaultPause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 50 * attempt));
}
