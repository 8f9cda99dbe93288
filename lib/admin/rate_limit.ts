/**
 * A per-source rate limit: a token bucket for each source address, so one
 * browser tab hammering the key inspector (or a script probing for keys)
 * gets refused without slowing anyone else. The sources remembered are
 * bounded, oldest forgotten first, so a flood of addresses cannot grow
 * memory. The clock is a parameter so tests need no sleeping.
 */

/** Options of {@link RateLimit}. */
export interface RateLimitOptions {
  /** Calls a source may make per second, on average. */
  perSecond: number;
  /** Calls a source may make at once after a pause. */
  burst: number;
  /** Sources remembered at most. */
  maxSources?: number;
  now?: () => number;
}

/** Token buckets by source. */
export class RateLimit {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;
  readonly #maxSources: number;

  constructor(private readonly o: RateLimitOptions) {
    this.#now = o.now ?? Date.now;
    this.#maxSources = o.maxSources ?? 1000;
  }

  /** Whether `source` may make a call now (taking one token if so). */
  take(source: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(source);
    if (b) {
      b.tokens = Math.min(this.o.burst, b.tokens + (now - b.at) * this.o.perSecond / 1000);
      b.at = now;
      this.#buckets.delete(source); // re-inserted last: the map stays least recently used first
    } else {
      if (this.#buckets.size >= this.#maxSources) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.o.burst, at: now };
    }
    this.#buckets.set(source, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
