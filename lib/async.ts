/**
 * Small promise helpers shared by the modules that wait (what @std/async
 * would give, were jsr reachable from where this is built).
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves on a later turn of the event loop, after pending I/O and timers
 * (a zero timeout, for the reason given at {@link pauser}).
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A check to call between steps of a long loop: once `sliceMs` has passed
 * since the last pause, it returns a promise that resolves on a later turn
 * of the event loop, otherwise undefined. Loops over promises that are
 * already resolved (the memory engine's scan pages) run on microtasks alone
 * and would otherwise hold the event loop for their whole length: every call
 * and heartbeat the node serves would wait behind them.
 *
 * The pause is a zero timeout, not `setImmediate`: on Deno 2.9, immediates
 * queued one from another run on without polling sockets (timers still run,
 * so a stall watch sees nothing). A 2 s loop of 10 ms steps pausing with
 * setImmediate let a loopback echo through twice, after 1.2 s and 1.8 s;
 * with a zero timeout every 20-30 ms. A node's digest scan of a million keys
 * left its peers' calls and heartbeats unread for a second or more.
 */
export function pauser(sliceMs: number, now: () => number = performance.now.bind(performance)) {
  let since = now();
  return (): Promise<void> | undefined => {
    if (now() - since < sliceMs) return undefined;
    return new Promise((resolve) =>
      setTimeout(() => {
        since = now();
        resolve();
      }, 0)
    );
  };
}
