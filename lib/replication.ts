/**
 * Replication: getting a coordinator's writes onto the other copies.
 *
 * Each peer has a bounded queue. Asynchronous writes (write_quorum 1) are
 * queued and the client is answered at once; a sender per peer drains the
 * queue in ReplicateBatch calls of up to `batch_size` records, so a burst of
 * writes costs a few calls. When the queue is full, writers wait for room
 * (backpressure) instead of growing memory. A failed call is retried with
 * exponential backoff while the peer is alive; once the detector calls it
 * down, what is queued becomes hints (see `hints.ts`) and is handed off when
 * the peer returns. Synchronous writes (write_quorum > 1) use `sendNow`.
 */
import type { HintStore } from "./hints.ts";
import type { Logger } from "./log.ts";
import { recordSize } from "./record.ts";
import type { PeerTransport, ReplicaItem } from "./transport.ts";
import { errorMessage, PeerUnavailableError } from "./errors.ts";
import { sleep } from "./async.ts";

/** Options of {@link Replicator}. */
export interface ReplicatorOptions {
  transport: PeerTransport;
  hints: HintStore;
  log: Logger;
  /** Whether a peer can take writes now (alive, maybe still recovering). */
  canStore: (peer: string) => boolean;
  /** Told when a call could not reach the peer (feeds the detector). */
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
  queueLimit: number;
  batchSize: number;
  /** Largest batch in bytes (below the gRPC message limit). */
  batchBytes: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * How long a sender waits for more records before sending a batch that is
   * not full (0: at once). A few milliseconds turn a stream of writes into
   * a few large ReplicateBatch calls instead of one call per write.
   */
  lingerMs?: number;
}

class PeerQueue {
  items: ReplicaItem[] = [];
  head = 0;
  draining = false;
  waiters: (() => void)[] = [];
  /** Items ever pushed and shifted, and when each push happened (for the lag). */
  pushed = 0;
  shifted = 0;
  marks: { end: number; at: number }[] = [];
  markHead = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(items: readonly ReplicaItem[]): void {
    this.items.push(...items);
    this.pushed += items.length;
    this.marks.push({ end: this.pushed, at: Date.now() });
  }

  /** When the oldest item still queued was pushed (undefined: empty). */
  oldestAt(): number | undefined {
    while (this.markHead < this.marks.length && this.marks[this.markHead].end <= this.shifted) {
      this.markHead++;
    }
    if (this.markHead > 1024 && this.markHead * 2 > this.marks.length) {
      this.marks = this.marks.slice(this.markHead);
      this.markHead = 0;
    }
    return this.markHead < this.marks.length ? this.marks[this.markHead].at : undefined;
  }

  /** Removes the first n items. */
  shift(n: number): void {
    this.shifted += n;
    this.oldestAt();
    this.head += n;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** Per-peer replication queues and their senders. */
export class Replicator {
  readonly #queues = new Map<string, PeerQueue>();
  #stopped = false;

  constructor(private readonly options: ReplicatorOptions) {}

  /** Queues records for a peer; waits only while its queue is full. */
  async enqueue(peer: string, items: readonly ReplicaItem[]): Promise<void> {
    const q = this.#queue(peer);
    while (q.length >= this.options.queueLimit && !this.#stopped && this.options.canStore(peer)) {
      await new Promise<void>((resolve) => q.waiters.push(resolve));
    }
    if (!this.options.canStore(peer)) {
      this.#toHints(peer, items);
      return;
    }
    q.push(items);
    if (!q.draining) this.#drain(peer, q);
  }

  /** Sends records now (synchronous replication); on failure queues them for retry. */
  async sendNow(peer: string, items: readonly ReplicaItem[]): Promise<boolean> {
    try {
      await this.options.transport.replicate(peer, items);
      return true;
    } catch (err) {
      if (err instanceof PeerUnavailableError) this.options.onUnreachable(peer, err);
      await this.enqueue(peer, items);
      return false;
    }
  }

  /** Records waiting for a peer. */
  pending(peer: string): number {
    return this.#queues.get(peer)?.length ?? 0;
  }

  /** Milliseconds the oldest record queued for a peer has waited (0: none queued). */
  lagMs(peer: string): number {
    const at = this.#queues.get(peer)?.oldestAt();
    return at === undefined ? 0 : Math.max(0, Date.now() - at);
  }

  /** Records waiting for all peers. */
  pendingTotal(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  stop(): void {
    this.#stopped = true;
    for (const q of this.#queues.values()) this.#release(q);
  }

  #queue(peer: string): PeerQueue {
    let q = this.#queues.get(peer);
    if (!q) this.#queues.set(peer, q = new PeerQueue());
    return q;
  }

  async #drain(peer: string, q: PeerQueue): Promise<void> {
    q.draining = true;
    const base = this.options.retryBaseMs ?? 50;
    let backoff = base;
    let lingered = false;
    try {
      while (q.length > 0 && !this.#stopped) {
        if (!this.options.canStore(peer)) {
          this.#toHints(peer, q.items.slice(q.head));
          q.shift(q.length);
          break;
        }
        if (!lingered && q.length < this.options.batchSize && (this.options.lingerMs ?? 0) > 0) {
          lingered = true;
          await sleep(this.options.lingerMs!);
          continue;
        }
        lingered = false;
        const batch = this.#nextBatch(q);
        try {
          await this.options.transport.replicate(peer, batch);
          q.shift(batch.length);
          this.#release(q);
          backoff = base;
        } catch (err) {
          if (err instanceof PeerUnavailableError) this.options.onUnreachable(peer, err);
          this.options.log.debug("replication batch failed; retrying", {
            peer,
            records: batch.length,
            backoff_ms: backoff,
            error: errorMessage(err),
          });
          await sleep(backoff);
          backoff = Math.min(backoff * 2, this.options.retryMaxMs ?? 2000);
        }
      }
    } finally {
      q.draining = false;
      this.#release(q);
    }
  }

  #nextBatch(q: PeerQueue): ReplicaItem[] {
    const end = Math.min(q.items.length, q.head + this.options.batchSize);
    let bytes = 0;
    let i = q.head;
    while (i < end) {
      bytes += recordSize(q.items[i].record);
      if (bytes > this.options.batchBytes && i > q.head) break;
      i++;
    }
    return q.items.slice(q.head, i);
  }

  #release(q: PeerQueue): void {
    const waiters = q.waiters;
    q.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Keeps what a down peer should have received as hints. A record that
   * was itself meant for another node (a stand-in copy) is hinted for that
   * node, since it is the one that must get it.
   */
  #toHints(peer: string, items: readonly ReplicaItem[]): void {
    let kept = 0;
    for (const { record, hintFor } of items) {
      if (this.options.hints.add(hintFor ?? peer, record.key, record)) kept++;
    }
    if (items.length > 0) {
      this.options.log.info("peer down; replication turned into hints", {
        peer,
        records: items.length,
        hinted: kept,
      });
    }
  }
}
