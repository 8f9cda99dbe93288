/**
 * Operations per second and latency quantiles over the last minute.
 *
 * Sixty one-second slots, each a call count and a fixed-bucket latency
 * histogram; a slot is reused (cleared) when its second comes round again.
 * Recording is a few array writes, reading sums the slots of the last 60
 * seconds. Takes its clock as a parameter so tests need no sleeping.
 */

const SLOTS = 60;

/** Calls per second and latency quantiles over a sliding minute. */
export class RecentWindow {
  readonly #seconds = new Float64Array(SLOTS).fill(-1);
  readonly #counts = new Float64Array(SLOTS);
  readonly #buckets: Float64Array[];
  readonly #started: number;

  constructor(readonly bounds: readonly number[], private readonly clock: () => number = Date.now) {
    this.#buckets = Array.from({ length: SLOTS }, () => new Float64Array(bounds.length + 1));
    this.#started = clock();
  }

  /** Records one call of `seconds` latency. */
  record(seconds: number): void {
    const sec = Math.floor(this.clock() / 1000);
    const i = sec % SLOTS;
    const buckets = this.#buckets[i];
    if (this.#seconds[i] !== sec) {
      this.#seconds[i] = sec;
      this.#counts[i] = 0;
      buckets.fill(0);
    }
    this.#counts[i]++;
    const b = this.bounds;
    let k = 0;
    while (k < b.length && seconds > b[k]) k++;
    buckets[k]++;
  }

  /** Calls per second over the last minute (or since start, if younger). */
  rate(): number {
    const now = this.clock();
    const span = Math.min(SLOTS, Math.max(1, (now - this.#started) / 1000));
    return this.#sum(now).count / span;
  }

  /**
   * The latency (seconds) below which a fraction `q` of the last minute's
   * calls fell, interpolated linearly inside the bucket the rank lands in
   * (as Prometheus's histogram_quantile does); 0 with no calls, the last
   * bound when the rank lands beyond it.
   */
  quantile(q: number): number {
    const { count, buckets } = this.#sum(this.clock());
    if (count === 0) return 0;
    const rank = q * count;
    let seen = 0;
    for (let k = 0; k < this.bounds.length; k++) {
      if (buckets[k] > 0 && seen + buckets[k] >= rank) {
        const lower = k === 0 ? 0 : this.bounds[k - 1];
        return lower + (this.bounds[k] - lower) * (rank - seen) / buckets[k];
      }
      seen += buckets[k];
    }
    return this.bounds[this.bounds.length - 1];
  }

  #sum(now: number): { count: number; buckets: Float64Array } {
    const current = Math.floor(now / 1000);
    const buckets = new Float64Array(this.bounds.length + 1);
    let count = 0;
    for (let i = 0; i < SLOTS; i++) {
      const age = current - this.#seconds[i];
      if (this.#seconds[i] < 0 || age < 0 || age >= SLOTS) continue;
      count += this.#counts[i];
      for (let k = 0; k < buckets.length; k++) buckets[k] += this.#buckets[i][k];
    }
    return { count, buckets };
  }
}
