/**
 * Proof that a member list was chosen, asked of the members a node already
 * trusts, before the node adopts the list.
 *
 * A node never adopts a list because someone sent it. It holds a list H of
 * epoch h; a newer list L (pushed, fetched, or heard of in a heartbeat) is
 * adopted only once a majority of H's members vouch for L, each asked at the
 * address H gives for it (never an address the push or heartbeat named):
 *
 * - L of epoch h+1: H's members are L's voters. A member vouches when it
 *   accepted L (its acceptor's value, under one ballot) or adopted it. A
 *   majority that accepted L under one ballot is what Paxos calls chosen;
 *   one honest adopter already proves L chosen, so with any adopter among
 *   them every vouch for L counts.
 * - L of epoch h+2 or later (catching up): only members of H that adopted L
 *   vouch (their current list, or one of the last `HISTORY` they adopted).
 *   Each honest member adopted L only after this same proof (or deciding L
 *   itself), so L descends from H through chosen lists. Walking the chain
 *   step by step would need the members of every list between, and those
 *   that decided an epoch and left since are gone for good; H's members are
 *   the ones the node knew and can still reach. That is trust anchor (a).
 *
 * The anchors, where there is no held list to ask through: (b) a node
 * started from the cluster file holds its epoch-0 list, so the file's
 * members are asked; a Redis node starts from the list it saved. (c) a
 * joiner holds the list of the seed the operator named, and trusts that
 * seed's JoinCluster answer. A claimant's own decision (a majority accepted
 * its ballot) is its proof. When a majority of H has left or is down for
 * good, nothing proves a newer list: the node keeps H, says why, and is
 * restarted with `--join` (the operator names the anchor again).
 *
 * This works with no secret and no TLS: an outsider can send anything, but
 * can only make a node ask the members it already holds.
 */
import type { Ballot } from "./acceptor.ts";
import { type MemberList, sameList } from "./member_list.ts";

/** A member's word on the list of one epoch: one it adopted, or one it accepted under a ballot. */
export interface Vouch {
  list: MemberList;
  adopted: boolean;
  /** For an accepted (not adopted) list: the ballot it was accepted under. */
  ballot?: Ballot;
}

/** Options of {@link proveList}. */
export interface ProofOptions {
  self: string;
  /** The list this node holds: its members are asked. */
  held: MemberList;
  /** The newer list to prove. */
  candidate: MemberList;
  /** This node's own word on the candidate's epoch (its acceptor's vote), if any. */
  own?: Vouch;
  /** Asks a member of the held list (at the held list's address) for its word on an epoch; may throw. */
  ask: (peer: string, epoch: number) => Promise<Vouch | undefined>;
}

/** Whether the candidate is proven, who vouched for it, and why not. */
export interface Verdict {
  proven: boolean;
  vouchers: string[];
  need: number;
  message: string;
}

/** How many adopted lists a node keeps to vouch for (a node catching up asks for older epochs). */
export const HISTORY = 32;

/**
 * Asks the held list's members about the candidate and counts their
 * vouches; resolves as soon as enough have vouched (a frozen member does
 * not hold the answer up), or once every member has answered or failed.
 */
export function proveList(o: ProofOptions): Promise<Verdict> {
  const { held, candidate } = o;
  const voters = held.members.map((m) => m.id);
  const need = Math.floor(voters.length / 2) + 1;
  if (candidate.epoch <= held.epoch) {
    const message = `epoch ${candidate.epoch} is not newer than ${held.epoch}`;
    return Promise.resolve({ proven: false, vouchers: [], need, message });
  }
  const votesCount = candidate.epoch === held.epoch + 1;
  const words = new Map<string, Vouch>();
  const failed: string[] = [];
  let pending = voters.length;
  return new Promise((resolve) => {
    const settle = () => {
      const vouchers = countVouchers(words, candidate, votesCount);
      if (vouchers.length >= need) return resolve({ proven: true, vouchers, need, message: "" });
      if (pending > 0) return;
      const message =
        `epoch ${candidate.epoch} is vouched for by ${
          vouchers.length ? vouchers.join(", ") : "nobody"
        } of the ${voters.length} members of epoch ${held.epoch}, ${need} needed` +
        (failed.length ? ` (${failed.sort().join(", ")} did not answer)` : "");
      resolve({ proven: false, vouchers, need, message });
    };
    for (const id of voters) {
      const word = id === o.self ? Promise.resolve(o.own) : o.ask(id, candidate.epoch);
      word.then((v) => {
        if (v) words.set(id, v);
      }, () => failed.push(id)).finally(() => {
        pending--;
        settle();
      });
    }
  });
}

/**
 * The members whose word proves `candidate`: its adopters, and (for the
 * epoch right after the held one) those that accepted it: all of them when
 * one adopted it, else the largest group that accepted it under one ballot.
 */
function countVouchers(words: Map<string, Vouch>, candidate: MemberList, votesCount: boolean): string[] {
  const same = [...words].filter(([, v]) => sameList(v.list, candidate));
  const adopters = same.filter(([, v]) => v.adopted).map(([id]) => id);
  if (!votesCount) return adopters.sort();
  if (adopters.length > 0) return same.map(([id]) => id).sort();
  const byBallot = new Map<string, string[]>();
  for (const [id, v] of same) {
    const key = v.ballot ? `${v.ballot.round}.${v.ballot.node}` : "";
    byBallot.set(key, [...byBallot.get(key) ?? [], id]);
  }
  return [...byBallot.values()].reduce((a, b) => b.length > a.length ? b : a, []).sort();
}
