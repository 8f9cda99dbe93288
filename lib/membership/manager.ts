/**
 * Membership at run time: adopting newer member lists, spreading them, and
 * (on the claimant) deciding changes one at a time.
 *
 * A node holds one member list (see `member_list.ts`) and the rings built
 * from it (`live_ring.ts`). It hears of newer lists pushed by the claimant,
 * in a GetMembership answer, or from a member's heartbeat carrying a higher
 * epoch (so a node that was down learns the change when it returns), and
 * adopts one only once a majority of its held list's members vouch for it
 * (`proof.ts`): a list someone merely sends is never proof. The claimant's
 * own decision and a joiner's seed are the exceptions (`adoptTrusted`).
 * Each adopted list is saved (Redis keeps it across restarts) and
 * handed to `onAdopted`, which rewires the node. A change proposed to a node
 * that is not the claimant is forwarded to the claimant; the claimant runs
 * one decision at a time, answers "retry" while a change is under way, and
 * pushes each new list to every member before it answers.
 *
 * A new list takes effect only once a majority of the members of the list it
 * replaces has accepted it (`proposer.ts`, `acceptor.ts`): two claimants (a
 * split, or two nodes that disagree on who is alive) can never make two
 * different lists of one epoch, and a list one left half-agreed is completed
 * by the next. A change without a majority fails UNAVAILABLE, naming who did
 * not answer.
 */
import type { Logger } from "../log.ts";
import { Code, errorMessage, KvError, PeerUnavailableError } from "../errors.ts";
import { sleep } from "../async.ts";
import { Throttle } from "../throttle.ts";
import { HISTORY, proveList, type Verdict, type Vouch } from "./proof.ts";
import { Acceptor, type VoteStore, votingFloor } from "./acceptor.ts";
import { type Outcome, probeMajority, propose, type VoteTransport } from "./proposer.ts";
import { LiveRing } from "./live_ring.ts";
import {
  changeUnderWay,
  claimantOf,
  completeChange,
  isNewer,
  type MemberList,
  MemberView,
  type Proposal,
  proposeJoin,
  proposeRemove,
} from "./member_list.ts";
import type { ChangeRequest, ChangeResponse, MembershipTransport } from "./transport.ts";

/** How a claimant's UNAVAILABLE for want of a majority begins (a forwarding node passes it on as it is). */
const NO_MAJORITY = "no majority";

/** How often a node without its votes asks its peers again (they may still be starting). */
const VOTES_RETRY_MS = 250;

/** Proofs asked at once; beyond, a list is refused unasked (a flood of forged pushes stays bounded). */
const PROOFS_IN_FLIGHT = 8;

/** A refused list is logged once per source and this interval. */
const REFUSAL_LOG_MS = 60_000;

/** Options of {@link Membership}. */
export interface MembershipOptions {
  self: string;
  initial: MemberList;
  virtualNodes: number;
  replicationFactor: number;
  transport: MembershipTransport;
  log: Logger;
  /** Whether this node sees a peer ACTIVE (claimant choice, and readiness for a change). */
  active: (id: string) => boolean;
  /** Saves an adopted list (Redis); memory nodes ask their peers instead. */
  persist?: (list: MemberList) => Promise<void>;
  /** Keeps this node's votes on new lists across restarts (Redis); see `acceptor.ts` without. */
  votes?: VoteStore;
  /** Told after each adopted list, with the one it replaced. */
  onAdopted: (list: MemberList, previous: MemberList) => void;
}

/** This node's member list, its rings, and the claimant's decisions. */
export class Membership {
  readonly view: MemberView;
  readonly ring: LiveRing;
  /** This node's votes on the next list. */
  readonly acceptor: Acceptor;
  /** Members that reported their new ranges streamed, per epoch of a change. */
  readonly #streamed = new Map<number, Set<string>>();
  readonly #fetching = new Set<string>();
  /** The list before the current one: a node that just left may still have calls in flight. */
  #previous?: MemberList;
  #decisions: Promise<unknown> = Promise.resolve();
  /** The highest ballot round this node has seen per epoch, so its next try starts above it. */
  readonly #rounds = new Map<number, number>();
  /** Lists adopted before the current one, newest last: this node vouches for them. */
  readonly #history: MemberList[] = [];
  /** Proofs under way, by list, so one list offered twice at once is proven once. */
  readonly #proving = new Map<string, Promise<Verdict>>();
  readonly #refusals = new Throttle(REFUSAL_LOG_MS);

  constructor(private readonly o: MembershipOptions) {
    this.view = new MemberView(o.initial);
    this.ring = new LiveRing(o.initial, o.virtualNodes);
    this.acceptor = new Acceptor({ self: o.self, current: () => this.list, store: o.votes });
  }

  get list(): MemberList {
    return this.view.list;
  }

  get epoch(): number {
    return this.view.list.epoch;
  }

  /** The claimant as this node sees it. */
  claimant(): string | undefined {
    return claimantOf(this.list, (id) => id === this.o.self || this.o.active(id));
  }

  /**
   * Ids that may call this node as a node: the members, and those of the
   * list before (a node that just left finishes the calls it has in flight,
   * forwards included, before it learns it left and stops).
   */
  callerIds(): string[] {
    const ids = new Set(this.list.members.map((m) => m.id));
    for (const m of this.#previous?.members ?? []) ids.add(m.id);
    return [...ids];
  }

  /** Members that reported their ranges streamed in the change under way. */
  streamed(): string[] {
    return [...this.#streamed.get(this.epoch) ?? []];
  }

  /**
   * Adopts a list if it is newer than the one held and a majority of the
   * held list's members vouch for it; says whether it was. A list not
   * proven is logged (once per source a minute) and left.
   */
  async offer(list: MemberList, from: string): Promise<boolean> {
    const c = await this.#check(list);
    if (c.proof !== undefined) return this.#adopt(list, from, c.proof);
    if (c.refusal !== "") this.#logRefusal(from, list.epoch, c.refusal);
    return false;
  }

  /** Like `offer`, for a push: a list not proven is refused with FAILED_PRECONDITION. */
  async push(list: MemberList, from: string): Promise<void> {
    const c = await this.#check(list);
    if (c.proof !== undefined) this.#adopt(list, from, c.proof);
    else if (c.refusal !== "") {
      this.#logRefusal(from, list.epoch, c.refusal);
      throw new KvError(
        Code.FAILED_PRECONDITION,
        `${this.o.self} does not adopt member list epoch ${list.epoch}: ${c.refusal}`,
      );
    }
  }

  /**
   * Adopts a list without asking: one this node's own decision chose, or
   * the JoinCluster answer of the seed the operator named (a joiner's anchor).
   */
  adoptTrusted(list: MemberList, from: string): boolean {
    return this.#adopt(list, from);
  }

  /** This node's word on the list of `epoch`: adopted (now or lately), or accepted by its acceptor. */
  vouchFor(epoch: number): Vouch | undefined {
    if (epoch === this.epoch) return { list: this.list, adopted: true };
    const past = this.#history.find((l) => l.epoch === epoch);
    if (past) return { list: past, adopted: true };
    const accepted = this.acceptor.acceptedFor(epoch);
    return accepted ? { list: accepted.list, adopted: false, ballot: accepted.ballot } : undefined;
  }

  /** Who proved `list` and how fast; else why not ("" when it is simply not newer). */
  async #check(list: MemberList): Promise<{ proof: string } | { proof?: undefined; refusal: string }> {
    if (!isNewer(list, this.list)) return { refusal: "" };
    const key = JSON.stringify(list);
    let proof = this.#proving.get(key);
    if (!proof) {
      if (this.#proving.size >= PROOFS_IN_FLIGHT) {
        return { refusal: "too many member lists are being checked at once" };
      }
      proof = proveList({
        self: this.o.self,
        held: this.list,
        candidate: list,
        own: this.vouchFor(list.epoch),
        ask: (peer, epoch) => this.o.transport.vouch(peer, epoch),
      });
      this.#proving.set(key, proof);
      proof.finally(() => this.#proving.delete(key)).catch(() => {});
    }
    const started = Date.now();
    const verdict = await proof;
    if (!verdict.proven) return { refusal: verdict.message };
    return { proof: `${verdict.vouchers.join(",")} in ${Date.now() - started} ms` };
  }

  #logRefusal(from: string, epoch: number, why: string): void {
    const held = this.#refusals.take(from.slice(0, 100));
    if (held === undefined) return;
    this.o.log.warn("member list refused: not proven by this node's members", {
      from,
      epoch,
      held_epoch: this.epoch,
      reason: why,
      refusals_not_logged: held || undefined,
    });
  }

  /** Adopts a list (already proven, or trusted) if it is newer than the one held. */
  #adopt(list: MemberList, from: string, proof?: string): boolean {
    const previous = this.list;
    if (list.epoch === previous.epoch && list.epoch > 0 && !sameMembers(list, previous)) {
      // Agreement makes this impossible; say so loudly if it ever happens.
      this.o.log.error(`two different member lists of epoch ${list.epoch}`, {
        from,
        held: previous.members.map((m) => `${m.id}(${m.state})`).join(","),
        offered: list.members.map((m) => `${m.id}(${m.state})`).join(","),
      });
    }
    if (!this.view.offer(list)) return false;
    this.#previous = previous;
    this.#history.push(previous);
    if (this.#history.length > HISTORY) this.#history.shift();
    this.acceptor.decided(list.epoch);
    this.ring.adopt(list);
    const change = changeUnderWay(list);
    this.o.log.info(`membership epoch ${list.epoch} adopted`, {
      from,
      proven_by: proof,
      members: list.members.map((m) => m.state === "NORMAL" ? m.id : `${m.id}(${m.state})`).join(","),
      change: change ? `${change.id} ${change.state}` : undefined,
    });
    this.o.persist?.(list).catch((err) =>
      this.o.log.warn("cannot save the member list", { error: errorMessage(err) })
    );
    this.o.onAdopted(list, previous);
    return true;
  }

  /**
   * A member mentioned a newer epoch: fetch its list (at the address this
   * node holds for it) and adopt it if proven. Anyone else is not asked.
   */
  noteEpoch(peer: string, epoch: number | undefined): void {
    if (epoch === undefined || epoch <= this.epoch || this.#fetching.has(peer)) return;
    if (!this.list.members.some((m) => m.id === peer && m.id !== this.o.self)) return;
    this.#fetching.add(peer);
    this.#catchUp(peer, epoch).finally(() => this.#fetching.delete(peer));
  }

  /** Fetches a member's list and offers it; a member that holds less than was claimed in its name is logged. */
  async #catchUp(peer: string, claimed: number): Promise<void> {
    try {
      const snap = await this.o.transport.fetchMembership(peer);
      if (snap.list.epoch >= claimed) await this.offer(snap.list, peer);
      else this.#logRefusal(peer, claimed, `${peer} itself holds epoch ${snap.list.epoch}, not ${claimed}`);
    } catch (err) {
      this.o.log.debug("membership fetch failed", { peer, error: errorMessage(err) });
    }
  }

  /** Asks peers for their lists and adopts the newest; resolves with how many answered. */
  async syncFrom(peers: readonly string[]): Promise<number> {
    let answered = 0;
    await Promise.all(peers.map(async (peer) => {
      try {
        const snap = await this.o.transport.fetchMembership(peer);
        answered++;
        await this.offer(snap.list, peer);
      } catch (err) {
        this.o.log.debug("membership fetch failed", { peer, error: errorMessage(err) });
      }
    }));
    return answered;
  }

  /**
   * Makes this node's acceptor vote: a durable one loads its votes; one
   * that may have forgotten votes asks the other members (again and again,
   * until enough have answered or `stopped` says so) and votes only above
   * the floor their answers give (see `votingFloor`).
   */
  async openVotes(stopped: () => boolean): Promise<void> {
    while (this.acceptor.durable && !stopped()) {
      try {
        return await this.acceptor.open();
      } catch (err) {
        this.o.log.warn("cannot load this node's membership votes; it does not vote yet", {
          error: errorMessage(err),
        });
        await sleep(1000);
      }
    }
    while (!stopped()) {
      const answers: { epoch: number; voteEpoch: number }[] = [];
      const peers = this.list.members.map((m) => m.id).filter((id) => id !== this.o.self);
      await Promise.all(peers.map(async (peer) => {
        try {
          const snap = await this.o.transport.fetchMembership(peer);
          answers.push({ epoch: snap.list.epoch, voteEpoch: snap.voteEpoch });
          await this.offer(snap.list, peer);
        } catch (err) {
          this.o.log.debug("membership fetch failed", { peer, error: errorMessage(err) });
        }
      }));
      const floor = votingFloor(this.list.members.length, answers);
      if (floor !== undefined) {
        this.acceptor.setFloor(floor);
        this.o.log.info("membership votes: voting on epochs after the floor its peers gave", {
          floor,
          answers: answers.length,
        });
        return;
      }
      await sleep(VOTES_RETRY_MS);
    }
  }

  /**
   * Handles a proposed change: decided here on the claimant, forwarded to it
   * elsewhere. A change that can never be made throws a KvError (NOT_FOUND,
   * FAILED_PRECONDITION); one that cannot be made now answers `retry`.
   */
  async propose(change: ChangeRequest): Promise<ChangeResponse> {
    const claimant = this.claimant();
    if (claimant === undefined) return this.#retry("no claimant is reachable", "");
    if (claimant !== this.o.self) {
      if (change.forwarded) return this.#retry(`this node is not the claimant (${claimant} is)`, claimant);
      try {
        const res = await this.o.transport.changeMembership(claimant, { ...change, forwarded: true });
        if (res.list) await this.offer(res.list, claimant);
        return res;
      } catch (err) {
        if (!(err instanceof PeerUnavailableError)) throw err;
        // The claimant answered, but without a majority: that is the answer, not a silent claimant.
        if (err.message.includes(NO_MAJORITY)) {
          throw new KvError(
            Code.UNAVAILABLE,
            err.message.replace(/^node \S+ unreachable: /, `${claimant}: `),
          );
        }
        return this.#retry(`the claimant ${claimant} did not answer: ${errorMessage(err)}`, claimant);
      }
    }
    // One decision at a time: each waits for the previous one's pushes.
    const decided = this.#decisions.then(() => this.#decide(change));
    this.#decisions = decided.catch(() => {});
    return await decided;
  }

  async #decide(change: ChangeRequest): Promise<ChangeResponse> {
    const list = this.list;
    const self = this.o.self;
    const notReady = list.members.filter((m) => m.id !== self && !this.o.active(m.id)).map((m) => m.id);
    let p: Proposal;
    if (change.kind === "join") {
      p = proposeJoin(
        list,
        {
          id: change.nodeId,
          host: change.host ?? "",
          port: change.port ?? 0,
          adminPort: change.adminPort,
          respPort: change.respPort,
        },
        self,
        notReady,
      );
    } else if (change.kind === "remove") {
      p = proposeRemove(list, change.nodeId, this.o.replicationFactor, self, notReady);
    } else {
      p = this.#noteStreamed(list, change.nodeId, change.epoch ?? -1);
    }
    if (p.kind === "retry") {
      await this.#needMajority(list, notReady);
      return this.#retry(p.message, self);
    }
    if (p.kind === "refused") throw new KvError(Code[p.code], p.message);
    if (p.list !== list) {
      const out = await this.#agree(list, p.list);
      if (out.kind === "unavailable") {
        throw new KvError(Code.UNAVAILABLE, `${NO_MAJORITY} agreed (${p.message}): ${out.message}`);
      }
      if (out.kind === "contended" || out.kind === "not_ready") return this.#retry(out.message, self);
      // Chosen by this node's own ballot: that is its proof. A decided list a voter reported is not.
      if (out.kind === "decided") await this.offer(out.list, self);
      else this.adoptTrusted(out.list, self);
      if (out.kind === "decided") {
        return this.#retry(`the member list moved on to epoch ${out.list.epoch} meanwhile`, self);
      }
      await this.#pushAll(out.list, list);
      if (!sameMembers(out.list, p.list)) {
        const other = changeUnderWay(out.list);
        return this.#retry(
          `epoch ${out.list.epoch} was already agreed for another change (${
            other ? `${other.id} ${other.state}` : "a change completing"
          }), now completed here`,
          self,
        );
      }
      if (changeUnderWay(out.list) && this.ring.gainers(this.o.replicationFactor).length === 0) {
        // Nobody gains a range (nothing to stream): the change completes at once.
        return await this.#decide({ kind: "streamed", nodeId: self, epoch: out.list.epoch });
      }
    }
    this.o.log.info(p.message, { epoch: this.list.epoch });
    return { accepted: true, retry: false, message: p.message, list: this.list, claimant: self };
  }

  /** Has a majority of the members of `list` agree on `next` (the list of the next epoch). */
  async #agree(list: MemberList, next: MemberList): Promise<Outcome> {
    const started = Date.now();
    const out = await propose({
      self: this.o.self,
      epoch: next.epoch,
      voters: list.members.map((m) => m.id),
      value: next,
      transport: this.#votes,
      lastRound: this.#rounds.get(next.epoch),
      onBallot: (b) => this.#rounds.set(next.epoch, b.round),
    });
    const fields = { ms: Date.now() - started, round: this.#rounds.get(next.epoch) };
    if (out.kind === "chosen") {
      this.o.log.info(`membership epoch ${next.epoch} agreed by a majority`, {
        ...fields,
        carried: out.own ? undefined : "a list another node had proposed",
      });
    } else {
      this.o.log.warn(`membership epoch ${next.epoch} not agreed: ${out.kind}`, {
        ...fields,
        message: "message" in out ? out.message : `epoch ${out.list.epoch} is held elsewhere`,
      });
    }
    return out;
  }

  /**
   * A change must wait ("retry") while a member is not ACTIVE, but while a
   * majority does not answer, waiting does not help: UNAVAILABLE, naming who.
   * The detector's view only prompts the check; a prepare round decides it,
   * so a member briefly SUSPECTED under load does not fail the change.
   */
  async #needMajority(list: MemberList, notReady: readonly string[]): Promise<void> {
    const need = Math.floor(list.members.length / 2) + 1;
    if (list.members.length - notReady.length >= need) return;
    const epoch = list.epoch + 1;
    const out = await probeMajority({
      self: this.o.self,
      epoch,
      voters: list.members.map((m) => m.id),
      transport: this.#votes,
      lastRound: this.#rounds.get(epoch),
      onBallot: (b) => this.#rounds.set(epoch, b.round),
    });
    if (out) throw new KvError(Code.UNAVAILABLE, `${NO_MAJORITY} of the members answers: ${out.message}`);
  }

  /** Votes go to this node's own acceptor directly, to the others over the network. */
  readonly #votes: VoteTransport = {
    prepare: (voter, epoch, ballot) =>
      voter === this.o.self
        ? this.acceptor.prepare(epoch, ballot)
        : this.o.transport.prepare(voter, epoch, ballot),
    accept: (voter, epoch, ballot, list) =>
      voter === this.o.self
        ? this.acceptor.accept(epoch, ballot, list)
        : this.o.transport.accept(voter, epoch, ballot, list),
  };

  /** Records a member's streamed ranges; completes the change once every gainer has. */
  #noteStreamed(list: MemberList, id: string, epoch: number): Proposal {
    if (epoch !== list.epoch || !changeUnderWay(list)) {
      return { kind: "accepted", list, message: `${id} streamed for epoch ${epoch}; nothing to do now` };
    }
    let done = this.#streamed.get(epoch);
    if (!done) this.#streamed.set(epoch, done = new Set());
    done.add(id);
    const waiting = this.ring.gainers(this.o.replicationFactor).filter((g) => !done.has(g));
    if (waiting.length > 0) {
      return {
        kind: "accepted",
        list,
        message: `${id} streamed its ranges; waiting for ${waiting.join(", ")}`,
      };
    }
    const change = changeUnderWay(list)!;
    return {
      kind: "accepted",
      list: completeChange(list, this.o.self),
      message: `${change.id} ${change.state === "JOINING" ? "joined" : "left"}: every range streamed`,
    };
  }

  /** Hands a new list to every node of it and of the list it replaced (a leaver learns it left). */
  async #pushAll(list: MemberList, previous: MemberList): Promise<void> {
    const targets = new Set([...list.members, ...previous.members].map((m) => m.id));
    targets.delete(this.o.self);
    await Promise.all([...targets].map(async (peer) => {
      try {
        await this.o.transport.pushMembership(peer, list);
      } catch (err) {
        // It learns the epoch from a heartbeat when it is back.
        this.o.log.warn("cannot push the member list", { peer, epoch: list.epoch, error: errorMessage(err) });
      }
    }));
  }

  #retry(message: string, claimant: string): ChangeResponse {
    return {
      accepted: false,
      retry: true,
      message: message.startsWith("retry") ? message : `retry: ${message}`,
      claimant,
    };
  }
}

/** Whether two lists name the same members in the same states (whoever proposed them). */
function sameMembers(a: MemberList, b: MemberList): boolean {
  return a.epoch === b.epoch && JSON.stringify(a.members) === JSON.stringify(b.members);
}
