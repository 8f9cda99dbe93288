/**
 * Small promise helpers shared by the modules that wait (what @std/async
 * would give, were jsr reachable from where this is built).
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A check to call between steps of a long loop: once `sliceMs` has passed
 * since the last pause, it returns a promise that resolves on the next turn
 * of the event loop (`setImmediate`, after pending I/O and timers),
 * otherwise undefined. Loops over promises that are already resolved (the
 * memory engine's scan pages) run on microtasks alone and would otherwise
 * hold the event loop for their whole length: every call and heartbeat the
 * node serves would wait behind them.
 */
export function pauser(sliceMs: number, now: () => number = performance.now.bind(performance)) {
  let since = now();
  return (): Promise<void> | undefined => {
    if (now() - since < sliceMs) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        since = now();
        resolve();
      })
    );
  };
}
