/**
 * Hint delivery: handing a returned node the writes it missed.
 *
 * Runs every few hundred milliseconds; for each node that holds hints here
 * and is reachable again (ACTIVE, or JOINING while it catches up), it sends
 * the current version of each hinted key in batches, forgets the delivered
 * hints, and erases the local copies this node held only as a stand-in once
 * no target waits for them.
 *
 * Hints live in memory, but a stand-in's copy is in its storage: when the
 * node starts, `rebuild` finds the copies it holds for keys that are not its
 * own and hints them again to the key's replicas, so a write acknowledged
 * with a stand-in's copy (sloppy quorum) still reaches its replicas after
 * the stand-in restarted, and the copy is then erased as after any handoff.
 */
import type { HintStore } from "./hints.ts";
import type { Logger } from "./log.ts";
import { scanAllVersions, type Storage } from "./storage/mod.ts";
import type { PeerTransport } from "./transport.ts";
import { errorMessage, PeerUnavailableError } from "./errors.ts";
import type { KvRecord } from "./record.ts";

/** Options of {@link HandoffLoop}. */
export interface HandoffOptions {
  hints: HintStore;
  storage: Storage;
  transport: PeerTransport;
  log: Logger;
  /** Whether a node can take writes now. */
  canStore: (peer: string) => boolean;
  /** Whether this node keeps a copy of the key when every node is up. */
  holdsNaturally: (key: string) => boolean;
  /** The nodes that keep a copy of the key when every node is up. */
  replicasOf: (key: string) => string[];
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
  /** Told when every hint for a target was delivered (so it can learn it at once). */
  onDrained?: (target: string) => void;
  /** Told each batch of hints handed off (records sent): the events list. */
  onDelivered?: (target: string, records: number) => void;
  batchSize: number;
  intervalMs: number;
}

/** Delivers hints to the nodes they are for once those nodes are back. */
export class HandoffLoop {
  #timer?: ReturnType<typeof setInterval>;
  readonly #busy = new Set<string>();

  constructor(private readonly o: HandoffOptions) {}

  start(): void {
    this.#timer = setInterval(() => void this.deliverAll(), this.o.intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /**
   * Starts a delivery to every reachable target not already being served;
   * resolves when the deliveries it started have ended (they never reject).
   */
  deliverAll(): Promise<void> {
    const started: Promise<void>[] = [];
    for (const target of this.o.hints.targets()) {
      if (this.#busy.has(target) || !this.o.canStore(target)) continue;
      this.#busy.add(target);
      started.push(
        this.#deliver(target)
          .catch((err) => {
            if (err instanceof PeerUnavailableError) this.o.onUnreachable(target, err);
            this.o.log.warn("hint delivery interrupted", { target, error: errorMessage(err) });
          })
          .finally(() => this.#busy.delete(target)),
      );
    }
    return Promise.all(started).then(() => {});
  }

  /**
   * Hints every copy in storage of a key this node does not hold naturally
   * to each of the key's replicas: which of them missed the write is not
   * known after a restart, and a copy they already hold is harmless
   * (last-write-wins). Resolves with the hints made.
   */
  async rebuild(pageSize = 1000): Promise<number> {
    let made = 0;
    for await (const page of scanAllVersions(this.o.storage, pageSize)) {
      for (const v of page) {
        if (this.o.holdsNaturally(v.key)) continue;
        for (const target of this.o.replicasOf(v.key)) if (this.o.hints.add(target, v.key, v)) made++;
      }
    }
    if (made > 0) this.o.log.info("hints rebuilt from stand-in copies held here", { hints: made });
    return made;
  }

  async #deliver(target: string): Promise<void> {
    let sent = 0;
    const started = Date.now();
    while (this.o.canStore(target)) {
      const before = this.o.hints.pendingFor(target);
      const keys = this.o.hints.take(target, this.o.batchSize);
      if (keys.length === 0) break;
      const records = await this.o.storage.get(keys);
      const present = records.filter((r) => r !== undefined);
      if (present.length > 0 && !await this.#send(target, present)) {
        // The target refused these records outright: retrying would only
        // keep it waiting (JOINING) forever, so they are left to anti-entropy.
        this.o.hints.delivered(target, keys.map((key) => ({ key })));
        continue;
      }
      this.o.hints.delivered(target, keys.map((key, i) => ({ key, version: records[i] })));
      for (const r of present) {
        // A stand-in copy goes once no other down node still waits for it.
        if (!this.o.holdsNaturally(r.key) && !this.o.hints.isHinted(r.key)) {
          await this.o.storage.remove(r.key, r);
        }
      }
      sent += present.length;
      // Nothing was forgotten: newer hints keep arriving; the next round goes on.
      if (this.o.hints.pendingFor(target) >= before) break;
    }
    if (sent > 0) {
      this.o.log.info("hints handed off", { target, records: sent, ms: Date.now() - started });
      this.o.onDelivered?.(target, sent);
      if (this.o.hints.pendingFor(target) === 0) this.o.onDrained?.(target);
    }
  }

  /**
   * Sends records to the target: true once delivered, false when the target
   * answered with an error of its own. Unreachability is thrown, so the hints
   * stay for the next attempt.
   */
  async #send(target: string, records: KvRecord[]): Promise<boolean> {
    try {
      await this.o.transport.replicate(target, records.map((record) => ({ record })));
      return true;
    } catch (err) {
      if (err instanceof PeerUnavailableError) throw err;
      this.o.log.warn("target refused hinted records; dropping them for anti-entropy to repair", {
        target,
        records: records.length,
        error: errorMessage(err),
      });
      return false;
    }
  }
}
