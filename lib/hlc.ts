/**
 * Hybrid logical clock: the source of last-write-wins timestamps.
 *
 * A timestamp is microseconds since the Unix epoch: wall-clock milliseconds
 * times 1000, plus a logical counter in the low digits. The clock never goes
 * backwards, even when the wall clock does, and it moves past every
 * timestamp it observes from other nodes, so a write that causally follows
 * another always gets a larger timestamp. Ties between nodes are broken by
 * node id (see `compareVersions`). Values stay below 2^53 until the year
 * 2255, so they are exact as JavaScript numbers.
 */

/** A source of wall-clock milliseconds; injected so tests control time. */
export type WallClock = () => number;

/** The node's hybrid logical clock. */
export class HybridClock {
  #last = 0;

  constructor(
    private readonly wall: WallClock = Date.now,
    private readonly maxDriftMs: number = MAX_FORWARD_DRIFT_MS,
  ) {}

  /** A timestamp larger than every one this clock made or observed. */
  now(): number {
    const physical = Math.floor(this.wall()) * 1000;
    this.#last = physical > this.#last ? physical : this.#last + 1;
    return this.#last;
  }

  /** Moves the clock past a timestamp seen on a message from elsewhere. */
  observe(timestamp: number): void {
    if (timestamp > this.#last && timestamp <= this.#ceiling()) this.#last = timestamp;
  }

  /**
   * Observed timestamps further ahead than this are not followed, so one
   * client with a bad clock cannot drag every node's clock into the future.
   * A key that holds such a version is still written past it: the write is
   * re-stamped for that key alone (restamp.ts), the clock stays.
   */
  #ceiling(): number {
    return (Math.floor(this.wall()) + this.maxDriftMs) * 1000;
  }
}

/**
 * How far ahead of the wall clock an observed timestamp may pull the clock by
 * default; a node passes its `limits.max_clock_skew_ms`.
 */
export const MAX_FORWARD_DRIFT_MS = 60_000;
