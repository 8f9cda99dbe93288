/**
 * Coalesces concurrent calls to the same peer into one batched call.
 *
 * A node that forwards client requests makes one gRPC call per request, and
 * on this runtime the cost of a call (HTTP/2 frames, headers, a socket write,
 * the objects grpc-js allocates) dwarfs the work of the request itself. The
 * requests that arrive together, from many clients in one turn of the event
 * loop, are queued per peer here and sent as one batch once that turn's I/O
 * has been handled (`setImmediate`): a lone request waits for no timer, it
 * leaves as soon as the current callbacks are done.
 *
 * Each caller gets back exactly its own items' results, in its order; when
 * the batched call fails as a whole (the peer is unreachable, say), every
 * caller in it sees that same error, as it would have seen for its own call,
 * so failover works per caller as before. Batches are bounded by items and
 * by bytes; a caller's items are never split across batches.
 */

/** Sends one batch of items to a peer; resolves to one result per item, in order. */
export type SendBatch<I, R> = (peer: string, items: I[]) => Promise<R[]>;

/** Options of {@link Coalescer}. */
export interface CoalescerOptions<I> {
  /** Items per batch at most (a single larger caller still goes alone). */
  maxItems: number;
  /** Bytes per batch at most, by `sizeOf` (a single larger caller still goes alone). */
  maxBytes: number;
  sizeOf: (item: I) => number;
  /**
   * The key an item names, when a batch must name each key once (a peer
   * refuses a batch with a repeated key): a caller whose items repeat a key
   * of the queued batch starts the next batch.
   */
  keyOf?: (item: I) => string;
  /** When queued batches are sent; the end of the current turn of the event loop by default. */
  schedule?: (flush: () => void) => void;
}

interface Waiter<R> {
  count: number;
  resolve: (results: R[]) => void;
  reject: (err: unknown) => void;
}

interface Pending<I, R> {
  items: I[];
  /** The keys of `items`, when the options name them. */
  keys: Set<string>;
  bytes: number;
  waiters: Waiter<R>[];
}

/** Per-peer queues of items that leave together. */
export class Coalescer<I, R> {
  readonly #pending = new Map<string, Pending<I, R>>();
  readonly #schedule: (flush: () => void) => void;
  #scheduled = false;

  constructor(private readonly send: SendBatch<I, R>, private readonly o: CoalescerOptions<I>) {
    this.#schedule = o.schedule ?? ((flush) => setImmediate(flush));
  }

  /** Queues a caller's items for `peer`; resolves to their results when the batch is answered. */
  call(peer: string, items: readonly I[]): Promise<R[]> {
    const bytes = items.reduce((sum, item) => sum + this.o.sizeOf(item), 0);
    let p = this.#pending.get(peer);
    if (
      p && (p.items.length + items.length > this.o.maxItems || p.bytes + bytes > this.o.maxBytes ||
        this.#repeats(p, items))
    ) {
      this.#flush(peer, p);
      p = undefined;
    }
    if (!p) this.#pending.set(peer, p = { items: [], keys: new Set(), bytes: 0, waiters: [] });
    for (const item of items) p.items.push(item);
    if (this.o.keyOf) { for (const item of items) p.keys.add(this.o.keyOf(item)); }
    p.bytes += bytes;
    const done = new Promise<R[]>((resolve, reject) =>
      p.waiters.push({ count: items.length, resolve, reject })
    );
    if (p.items.length >= this.o.maxItems || p.bytes >= this.o.maxBytes) this.#flush(peer, p);
    else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(() => this.#flushAll());
    }
    return done;
  }

  /** Whether `items` name a key the queued batch already names. */
  #repeats(p: Pending<I, R>, items: readonly I[]): boolean {
    const keyOf = this.o.keyOf;
    return keyOf !== undefined && items.some((item) => p.keys.has(keyOf(item)));
  }

  #flushAll(): void {
    this.#scheduled = false;
    for (const [peer, p] of this.#pending) this.#flush(peer, p);
  }

  #flush(peer: string, p: Pending<I, R>): void {
    this.#pending.delete(peer);
    let sent: Promise<R[]>;
    try {
      sent = this.send(peer, p.items);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (results) => {
        if (results.length !== p.items.length) {
          const err = new Error(
            `peer ${peer} answered ${results.length} results for ${p.items.length} items`,
          );
          for (const w of p.waiters) w.reject(err);
          return;
        }
        if (p.waiters.length === 1) return p.waiters[0].resolve(results);
        let at = 0;
        for (const w of p.waiters) {
          w.resolve(results.slice(at, at + w.count));
          at += w.count;
        }
      },
      (err) => {
        for (const w of p.waiters) w.reject(err);
      },
    );
  }
}
