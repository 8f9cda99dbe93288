/**
 * Moving ranges for a membership change, and dropping copies afterwards.
 *
 * When a node adopts a list with a change under way and it is one of the
 * nodes that will hold data afterwards, it pulls from every live peer the
 * records it gains (the recovery streams, tombstones included), then tells
 * the claimant, again and again until the change completes: the claimant
 * completes it once every such node has. Writes meanwhile reach it through
 * the pending copies of the coordinators (see `live_ring.ts`).
 *
 * A peer the failure detector holds FAILED is given up (a frozen one would
 * hold the pull for the stream's deadline, minutes): the change completes
 * with the other copies. What only that peer had would be lost once it
 * answers again and drops the ranges it no longer holds, after the grace
 * period counted from its own adoption of the new list; so this node pulls
 * again from it, everything it holds, as soon as it is reachable, and again
 * until one pull completes.
 *
 * Once a change has completed and the grace period has passed (every node
 * routes by the new ring), each node erases the copies it no longer holds on
 * that ring, except those it keeps as a stand-in with hints.
 */
import type { Logger } from "../log.ts";
import { errorMessage } from "../errors.ts";
import { sleep } from "../async.ts";
import { scanAll, type Storage } from "../storage/mod.ts";
import { changeUnderWay, type MemberList } from "./member_list.ts";
import type { Membership } from "./manager.ts";

/** How often a node that streamed its ranges tells the claimant, until the change completes. */
const REPORT_EVERY_MS = 500;

/** What one pull achieved. */
export interface PullOutcome {
  records: number;
  /** Live peers whose stream never completed. */
  failed: string[];
}

/** Options of {@link Mover}. */
export interface MoverOptions {
  self: string;
  membership: Membership;
  storage: Storage;
  log: Logger;
  replicationFactor: number;
  /**
   * Pulls the records this node gains in the change of `epoch` from `peers`
   * (with no epoch, all the records it holds); gives up a peer held FAILED.
   */
  pull: (epoch: number | undefined, peers: string[]) => Promise<PullOutcome>;
  /** Says what a move could not pull: the ranges whose every other copy is on `peers`. */
  gaveUp?: (epoch: number, peers: string[]) => void;
  /** Whether a peer can be pulled from now. */
  reachable: (id: string) => boolean;
  /** Whether a key is held here as a stand-in for a down node (kept by cleanup). */
  isHinted: (key: string) => boolean;
  /** Called before each cleanup (drops hints owed to nodes that left). */
  beforeCleanup?: () => void;
  cleanupGraceMs: number;
}

/** Range moves of this node, and the cleanup after them. */
export class Mover {
  #pulling?: number;
  #pulled = -1;
  #cleaned = -1;
  #cleaning = false;
  #records = 0;
  /** Peers a move gave up, to pull from once they answer. */
  #owed = new Set<string>();
  #repaying = false;
  #timer?: ReturnType<typeof setInterval>;

  constructor(private readonly o: MoverOptions) {}

  /** Records pulled by the move under way (or the last one). */
  get movedRecords(): number {
    return this.#records;
  }

  /** Whether this node is still pulling ranges for the change of the list it holds. */
  pulling(): boolean {
    return this.#pulling !== undefined && this.#pulling === this.o.membership.epoch;
  }

  /** Whether this node has pulled what it gains in the change under way. */
  pulledFor(epoch: number): boolean {
    return this.#pulled === epoch;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#maybeCleanup();
      this.#repay();
    }, 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Reacts to an adopted list: starts pulling if this node gains ranges in its change. */
  onAdopted(list: MemberList): void {
    // Only a node that gains ranges pulls (and is waited for): in a join, the joiner alone.
    if (
      !changeUnderWay(list) || !this.o.membership.ring.gainers(this.o.replicationFactor).includes(this.o.self)
    ) {
      return;
    }
    if (this.#pulling === list.epoch || this.#pulled === list.epoch) return;
    this.#run(list.epoch).catch((err) => this.o.log.error("range move failed", { error: errorMessage(err) }));
  }

  async #run(epoch: number): Promise<void> {
    this.#pulling = epoch;
    this.#records = 0;
    const started = Date.now();
    const m = this.o.membership;
    try {
      for (let attempt = 1; m.epoch === epoch; attempt++) {
        const peers = m.list.members.map((x) => x.id).filter((id) =>
          id !== this.o.self && this.o.reachable(id)
        );
        this.o.log.info("pulling the ranges this node gains", { epoch, from: peers.join(","), attempt });
        const out = await this.o.pull(epoch, peers);
        this.#records += out.records;
        if (out.failed.every((p) => !this.o.reachable(p))) {
          if (out.failed.length > 0 && m.epoch === epoch) this.#giveUp(epoch, out.failed);
          break;
        }
        this.o.log.warn("some streams did not complete; pulling again", { failed: out.failed.join(",") });
        await sleep(Math.min(200 * attempt, 2000));
      }
    } finally {
      this.#pulling = undefined;
    }
    if (m.epoch !== epoch) return;
    this.#pulled = epoch;
    const s = (Date.now() - started) / 1000;
    this.o.log.info("ranges pulled for the membership change", {
      epoch,
      records: this.#records,
      seconds: s,
      records_per_s: Math.round(this.#records / Math.max(s, 0.001)),
    });
    await this.#report(epoch);
  }

  #giveUp(epoch: number, peers: string[]): void {
    for (const p of peers) this.#owed.add(p);
    this.o.gaveUp?.(epoch, peers);
  }

  /** Pulls from the peers a move gave up that are reachable again, until a pull completes. */
  async #repay(): Promise<void> {
    const members = new Set(this.o.membership.list.members.map((x) => x.id));
    // A peer removed since has nothing left to hand over here.
    for (const p of this.#owed) if (!members.has(p)) this.#owed.delete(p);
    const peers = [...this.#owed].filter((p) => this.o.reachable(p));
    if (this.#repaying || peers.length === 0) return;
    this.#repaying = true;
    try {
      const out = await this.o.pull(undefined, peers);
      for (const p of peers.filter((p) => !out.failed.includes(p))) this.#owed.delete(p);
      this.o.log.info("pulled again from peers a range move had given up", {
        peers: peers.join(","),
        records: out.records,
        failed: out.failed.join(",") || undefined,
      });
    } catch (err) {
      this.o.log.warn("pulling from peers a range move had given up failed", { error: errorMessage(err) });
    } finally {
      this.#repaying = false;
    }
  }

  /** Tells the claimant until the change of `epoch` is over (the list moved on). */
  async #report(epoch: number): Promise<void> {
    const m = this.o.membership;
    while (m.epoch === epoch) {
      try {
        const res = await m.propose({ kind: "streamed", nodeId: this.o.self, epoch });
        if (res.list) await m.offer(res.list, res.claimant || "claimant");
      } catch (err) {
        // No majority to complete the change yet (UNAVAILABLE): it completes once one is back.
        this.o.log.warn("cannot report the ranges streamed yet; will retry", {
          epoch,
          error: errorMessage(err),
        });
      }
      if (m.epoch !== epoch) return;
      await sleep(REPORT_EVERY_MS);
    }
  }

  async #maybeCleanup(): Promise<void> {
    const m = this.o.membership;
    const epoch = m.epoch;
    if (this.#cleaning || this.#cleaned === epoch || !m.view.cleanupDue(this.o.cleanupGraceMs)) return;
    this.#cleaning = true;
    try {
      const dropped = await this.#cleanup(epoch);
      if (m.epoch === epoch) this.#cleaned = epoch;
      if (dropped > 0) {
        this.o.log.info("dropped copies this node no longer holds", { epoch, records: dropped });
      }
    } catch (err) {
      this.o.log.warn("cleanup after a membership change failed", { error: errorMessage(err) });
    } finally {
      this.#cleaning = false;
    }
  }

  /** Erases the records this node does not hold on the ring of `epoch`; stops if the epoch moves. */
  async #cleanup(epoch: number): Promise<number> {
    const { membership: m, storage, replicationFactor: rf, self } = this.o;
    let dropped = 0;
    this.o.beforeCleanup?.();
    for await (const page of scanAll(storage, 1000)) {
      if (m.epoch !== epoch || changeUnderWay(m.list)) break;
      for (const r of page) {
        if (m.ring.holds(r.key, self, rf) || this.o.isHinted(r.key)) continue;
        if (await storage.remove(r.key, r)) dropped++;
      }
    }
    return dropped;
  }
}
