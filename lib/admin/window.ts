/**
 * Operations per second and latency quantiles over a sliding window.
 *
 * A ring of slots (sixty one-second slots by default: the last minute), each
 * a call count and a fixed-bucket latency histogram; a slot is reused
 * (cleared) when its period comes round again. Recording is a few array
 * writes, reading sums the slots still inside the window. `series` gives
 * every slot on its own, oldest first (the status page's sparklines: sixty
 * five-second slots, the last five minutes). Takes its clock as a parameter
 * so tests need no sleeping.
 */

/** How a window is cut: how many slots, each how long. */
export interface WindowShape {
  slots: number;
  slotMs: number;
}

/** The last minute in one-second slots. */
const MINUTE: WindowShape = { slots: 60, slotMs: 1000 };

/** One slot of {@link RecentWindow.series}: its start, rate and quantile. */
export interface WindowPoint {
  /** Unix ms at which the slot began. */
  atMs: number;
  perSecond: number;
  /** Seconds; 0 with no calls. */
  quantile: number;
}

/** Calls per second and latency quantiles over a sliding window. */
export class RecentWindow {
  readonly #periods: Float64Array;
  readonly #counts: Float64Array;
  readonly #buckets: Float64Array[];
  readonly #started: number;
  readonly #shape: WindowShape;

  constructor(
    readonly bounds: readonly number[],
    private readonly clock: () => number = Date.now,
    shape: WindowShape = MINUTE,
  ) {
    this.#shape = shape;
    this.#periods = new Float64Array(shape.slots).fill(-1);
    this.#counts = new Float64Array(shape.slots);
    this.#buckets = Array.from({ length: shape.slots }, () => new Float64Array(bounds.length + 1));
    this.#started = clock();
  }

  /** Records one call of `seconds` latency. */
  record(seconds: number): void {
    const period = Math.floor(this.clock() / this.#shape.slotMs);
    const i = period % this.#shape.slots;
    const buckets = this.#buckets[i];
    if (this.#periods[i] !== period) {
      this.#periods[i] = period;
      this.#counts[i] = 0;
      buckets.fill(0);
    }
    this.#counts[i]++;
    const b = this.bounds;
    let k = 0;
    while (k < b.length && seconds > b[k]) k++;
    buckets[k]++;
  }

  /** Calls per second over the window (or since start, if younger). */
  rate(): number {
    const now = this.clock();
    const windowS = this.#shape.slots * this.#shape.slotMs / 1000;
    const span = Math.min(windowS, Math.max(1, (now - this.#started) / 1000));
    return this.#sum(now).count / span;
  }

  /**
   * The latency (seconds) below which a fraction `q` of the window's calls
   * fell, interpolated linearly inside the bucket the rank lands in (as
   * Prometheus's histogram_quantile does); 0 with no calls, the last bound
   * when the rank lands beyond it.
   */
  quantile(q: number): number {
    const { count, buckets } = this.#sum(this.clock());
    return quantileOf(this.bounds, buckets, count, q);
  }

  /** Each slot of the window, oldest first: its calls per second and quantile `q`. */
  series(q: number): WindowPoint[] {
    const { slots, slotMs } = this.#shape;
    const now = this.clock();
    const current = Math.floor(now / slotMs);
    const empty = new Float64Array(this.bounds.length + 1);
    const out: WindowPoint[] = [];
    for (let period = current - slots + 1; period <= current; period++) {
      const i = ((period % slots) + slots) % slots;
      const held = this.#periods[i] === period;
      const count = held ? this.#counts[i] : 0;
      out.push({
        atMs: period * slotMs,
        // The slot under way is measured over its time so far, so the line does not dip at its end.
        perSecond: count / (Math.max(1000, period === current ? now - period * slotMs : slotMs) / 1000),
        quantile: quantileOf(this.bounds, held ? this.#buckets[i] : empty, count, q),
      });
    }
    return out;
  }

  #sum(now: number): { count: number; buckets: Float64Array } {
    const { slots, slotMs } = this.#shape;
    const current = Math.floor(now / slotMs);
    const buckets = new Float64Array(this.bounds.length + 1);
    let count = 0;
    for (let i = 0; i < slots; i++) {
      const age = current - this.#periods[i];
      if (this.#periods[i] < 0 || age < 0 || age >= slots) continue;
      count += this.#counts[i];
      for (let k = 0; k < buckets.length; k++) buckets[k] += this.#buckets[i][k];
    }
    return { count, buckets };
  }
}

/** The quantile `q` of `count` calls spread over `buckets` (see {@link RecentWindow.quantile}). */
function quantileOf(bounds: readonly number[], buckets: Float64Array, count: number, q: number): number {
  if (count === 0) return 0;
  const rank = q * count;
  let seen = 0;
  for (let k = 0; k < bounds.length; k++) {
    if (buckets[k] > 0 && seen + buckets[k] >= rank) {
      const lower = k === 0 ? 0 : bounds[k - 1];
      return lower + (bounds[k] - lower) * (rank - seen) / buckets[k];
    }
    seen += buckets[k];
  }
  return bounds[bounds.length - 1];
}
