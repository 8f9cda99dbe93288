/**
 * How late this process's event loop runs a timer, sampled while a load
 * runs. A load generator whose loop is busy (decoding answers, its own
 * garbage collection) stamps each call's end late, and that delay lands in
 * the latencies it reports, not in the servers': the lag tells the two apart.
 */
import { Histogram, type LatencySummary } from "./histogram.ts";

/** A running lag sampler; `stop` ends it and summarizes. */
export class LoopLag {
  readonly #lags = new Histogram();
  readonly #now: () => number;
  #timer?: ReturnType<typeof setTimeout>;
  #due = 0;
  #stalledMs = 0;

  /** Samples every `intervalMs`; `now` in milliseconds (injected by tests). */
  constructor(readonly intervalMs = 5, now: () => number = performance.now.bind(performance)) {
    this.#now = now;
  }

  start(): void {
    this.#due = this.#now() + this.intervalMs;
    this.#timer = setTimeout(() => this.#tick(), this.intervalMs);
  }

  /** Ends sampling: the lag's distribution, and the milliseconds lost to lags over 10 ms. */
  stop(): LatencySummary & { stalledMs: number } {
    clearTimeout(this.#timer);
    return { ...this.#lags.summary(), stalledMs: Math.round(this.#stalledMs) };
  }

  #tick(): void {
    const lag = Math.max(0, this.#now() - this.#due);
    this.#lags.record(lag * 1000);
    if (lag > 10) this.#stalledMs += lag;
    this.#due = this.#now() + this.intervalMs;
    this.#timer = setTimeout(() => this.#tick(), this.intervalMs);
  }
}
