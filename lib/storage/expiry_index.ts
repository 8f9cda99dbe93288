/**
 * The memory engine's expiries: which slots hold a live record with an
 * expiry, and how many of those have expired by now, without walking them.
 *
 * Only records that have an expiry are here, so the others cost nothing. A
 * min-heap orders expiries; counting the expired pops those now past into a
 * set, so `countLive` (every heartbeat) costs the records that expired since
 * the last count, not every expiring record. Overwritten entries stay in the
 * heap until they come up (and are skipped, since the slot no longer holds
 * that expiry); the heap is rebuilt when they outnumber the live ones, so a
 * key rewritten often with a long ttl cannot grow it without bound.
 */

/** Expiries (ms since the epoch) by slot. */
export class ExpiryIndex {
  readonly #at = new Map<number, number>();
  /** Slots whose expiry has been seen past by {@link expiredCount}. */
  readonly #expired = new Set<number>();
  #heapAt: number[] = [];
  #heapSlot: number[] = [];

  /** The slot's expiry, if it has one. */
  get(slot: number): number | undefined {
    return this.#at.get(slot);
  }

  /** Gives a slot an expiry, replacing any it had. */
  set(slot: number, at: number): void {
    this.delete(slot);
    this.#at.set(slot, at);
    this.#push(at, slot);
    if (this.#heapAt.length > 2 * this.#at.size + 1024) this.#rebuild();
  }

  /** Forgets a slot's expiry (its record was overwritten, deleted or erased). */
  delete(slot: number): void {
    if (this.#at.delete(slot)) this.#expired.delete(slot);
  }

  /** Slots with an expiry. */
  get size(): number {
    return this.#at.size;
  }

  /** Heap entries, overwritten ones included (what the rebuild bounds). */
  get heapLength(): number {
    return this.#heapAt.length;
  }

  /** How many slots' expiries are at or before `nowMs`. */
  expiredCount(nowMs: number): number {
    while (this.#heapAt.length > 0 && this.#heapAt[0] <= nowMs) {
      const [at, slot] = this.#pop();
      if (this.#at.get(slot) === at) this.#expired.add(slot);
    }
    return this.#expired.size;
  }

  #rebuild(): void {
    this.#heapAt = [];
    this.#heapSlot = [];
    for (const [slot, at] of this.#at) if (!this.#expired.has(slot)) this.#push(at, slot);
  }

  #push(at: number, slot: number): void {
    const a = this.#heapAt, s = this.#heapSlot;
    let i = a.length;
    a.push(at), s.push(slot);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= at) break;
      a[i] = a[parent], s[i] = s[parent];
      i = parent;
    }
    a[i] = at, s[i] = slot;
  }

  #pop(): [number, number] {
    const a = this.#heapAt, s = this.#heapSlot;
    const top: [number, number] = [a[0], s[0]];
    const at = a.pop()!, slot = s.pop()!;
    const n = a.length;
    if (n === 0) return top;
    let i = 0;
    while (true) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && a[child + 1] < a[child]) child++;
      if (a[child] >= at) break;
      a[i] = a[child], s[i] = s[child];
      i = child;
    }
    a[i] = at, s[i] = slot;
    return top;
  }
}
