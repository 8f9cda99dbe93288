/**
 * Rate limiting of repeated warnings.
 *
 * Refused calls and refused versions can arrive thousands of times a second
 * from one misbehaving source; the log should say so once per source and
 * interval, with how many were held back, not once per call. The clock is a
 * parameter so tests run without sleeping.
 */

/** Answers whether a warning about a source may be written now. */
export class Throttle {
  readonly #last = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    /** Sources remembered at most, so a flood of addresses cannot grow memory. */
    private readonly maxSources = 1000,
  ) {}

  /**
   * Undefined when a warning about `source` was written less than an interval
   * ago (this one is counted and held back); otherwise how many were held
   * back since that warning.
   */
  take(source: string): number | undefined {
    const now = this.now();
    const seen = this.#last.get(source);
    if (seen && now - seen.at < this.intervalMs) {
      seen.held++;
      return undefined;
    }
    if (!seen && this.#last.size >= this.maxSources) {
      this.#last.delete(this.#last.keys().next().value!);
    }
    this.#last.delete(source); // re-inserted last: the map stays oldest-first
    this.#last.set(source, { at: now, held: 0 });
    return seen?.held ?? 0;
  }
}
