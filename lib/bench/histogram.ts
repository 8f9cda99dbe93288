/**
 * A latency histogram with logarithmic buckets, in the manner of HdrHistogram.
 *
 * Values are whole microseconds. Below 256 µs every value has its own bucket;
 * above, each power of two is split into 128 equal buckets, so any recorded
 * value is reported within 1/128 (under 0.8 %) of itself, whatever its size,
 * in a fixed 3 200 counters. Recording is one array increment: the load
 * generator records every call without sampling.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
/** Largest value kept apart: 2^31 - 1 µs (about 36 minutes); longer ones count as this. */
const MAX_VALUE = 0x7fff_ffff;
const BUCKETS = (31 - SUB_BITS) * SUB + SUB;

/** The summary of a histogram, in milliseconds. */
export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** Counts of latencies in log-linear buckets. */
export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  /** Records one value in microseconds (rounded; negatives count as 0). */
  record(us: number): void {
    const v = us <= 0 ? 0 : us >= MAX_VALUE ? MAX_VALUE : Math.round(us);
    this.#counts[bucketOf(v)]++;
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /** Adds every value of another histogram to this one. */
  merge(other: Histogram): void {
    const counts = other.#counts;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] += counts[i];
    this.#count += other.#count;
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
  }

  /** Values recorded. */
  get count(): number {
    return this.#count;
  }

  /** The largest value recorded, exactly (µs; 0 when empty). */
  get max(): number {
    return this.#max;
  }

  /** The smallest value recorded, exactly (µs; 0 when empty). */
  get min(): number {
    return this.#count === 0 ? 0 : this.#min;
  }

  /** The mean value (µs; 0 when empty). */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /**
   * The value below or at which `p` percent of the values lie (µs): the top
   * of the bucket holding that rank, never above the largest value seen.
   */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.max(this.min, Math.min(this.#max, bucketTop(i)));
    }
    return this.#max;
  }

  /** Count, mean and percentiles in milliseconds. */
  summary(): LatencySummary {
    const ms = (us: number) => Math.round(us) / 1000;
    return {
      count: this.#count,
      minMs: ms(this.min),
      meanMs: ms(this.mean),
      p50Ms: ms(this.percentile(50)),
      p95Ms: ms(this.percentile(95)),
      p99Ms: ms(this.percentile(99)),
      p999Ms: ms(this.percentile(99.9)),
      maxMs: ms(this.#max),
    };
  }
}

/** The bucket of a value in 0..MAX_VALUE. */
function bucketOf(v: number): number {
  if (v < 2 * SUB) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return shift * SUB + (v >>> shift);
}

/** The largest value that falls in bucket `i`. */
function bucketTop(i: number): number {
  if (i < 2 * SUB) return i;
  const shift = (i >>> SUB_BITS) - 1;
  const mantissa = (i & (SUB - 1)) + SUB;
  return (mantissa + 1) * 2 ** shift - 1;
}
