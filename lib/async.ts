/**
 * Small promise helpers shared by the modules that wait (what @std/async
 * would give, were jsr reachable from where this is built).
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
