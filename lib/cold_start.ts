/**
 * The cold-start window: the first `failure_timeout_ms` after a node starts.
 *
 * Nodes of a cluster start a little apart, so in that window a peer that does
 * not answer yet is expected, not a failure. This module decides what the
 * node says about such peers: "waiting for node2" once, at info, instead of
 * warnings and SUSPECTED/ACTIVE flapping while channels connect. After the
 * window every transition is reported as usual. It takes its clock as a
 * parameter so its tests need no sleeping.
 */
import type { Logger } from "./log.ts";

/** How long a peer stays silent before "waiting for" it is said. */
const WAIT_NOTICE_MS = 1000;

/** Options of {@link ColdStart}. */
export interface ColdStartOptions {
  windowMs: number;
  log: Logger;
  /** Milliseconds; injected by tests. */
  clock?: () => number;
}

/** Tracks which peers have been heard from since the start, and whether the window is open. */
export class ColdStart {
  readonly #heard = new Set<string>();
  readonly #waitedFor = new Set<string>();
  readonly #pending = new Set<string>();
  readonly #clock: () => number;
  readonly #until: number;

  constructor(private readonly options: ColdStartOptions) {
    this.#clock = options.clock ?? Date.now;
    this.#until = this.#clock() + options.windowMs;
  }

  /** Whether the node is still in its first failure_timeout after start. */
  open(): boolean {
    return this.#clock() < this.#until;
  }

  /** Absolute time (the clock's milliseconds) at which the window closes. */
  closesAt(): number {
    return this.#until;
  }

  /** Notes that a peer answered or called: it is up. */
  heard(peer: string): void {
    if (this.#heard.has(peer)) return;
    this.#heard.add(peer);
    if (this.#waitedFor.has(peer)) this.options.log.info(`${peer} is up`);
  }

  /**
   * Whether a failure to reach `peer` is part of the cold start (the window is
   * open), so the caller stays quiet. A peer never heard from is reported as
   * "waiting for <peer>", once, if it is still silent a moment later (its
   * first calls often fail while the channel connects to a peer that is up).
   */
  expected(peer: string): boolean {
    if (!this.open()) return false;
    if (!this.#heard.has(peer) && !this.#pending.has(peer) && !this.#waitedFor.has(peer)) {
      this.#pending.add(peer);
      const timer = setTimeout(() => {
        this.#pending.delete(peer);
        if (this.#heard.has(peer)) return;
        this.#waitedFor.add(peer);
        this.options.log.info(`waiting for ${peer}`);
      }, Math.min(WAIT_NOTICE_MS, this.options.windowMs));
      Deno.unrefTimer(timer);
    }
    return true;
  }
}
