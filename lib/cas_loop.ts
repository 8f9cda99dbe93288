/**
 * The retry loop of a compare-and-set over the store's conditional writes,
 * shared by the Redis gateway's read-modify-write commands (resp/cas.ts, on
 * the node) and the CLI's expire/persist (grpc/set_expiry.ts, over gRPC).
 *
 * Each attempt writes on the condition that the key still holds what the
 * caller last saw; a lost race hands back the key's current state and the
 * next attempt starts from that. The number of attempts is bounded, and
 * writers that collided retry at random moments, so the one that lost does
 * not lose to the same crowd again.
 */
import { sleep } from "./async.ts";

/** Conditional writes lost to other writers before a compare-and-set gives up. */
export const MAX_ATTEMPTS = 32;

/** One attempt's end: a result, or the key's newer state to try again from. */
export type CasStep<S, T> = { done: T } | { retry: S };

/**
 * Runs `attempt` from `start` until it is done, each retry from the state
 * the previous attempt handed back; undefined after MAX_ATTEMPTS lost races.
 */
export async function casLoop<S, T>(
  start: S,
  attempt: (state: S, n: number) => Promise<CasStep<S, T>>,
): Promise<{ result: T } | undefined> {
  let state = start;
  for (let n = 1; n <= MAX_ATTEMPTS; n++) {
    const step = await attempt(state, n);
    if ("done" in step) return { result: step.done };
    await sleep(Math.random() * Math.min(2 ** n, 50));
    state = step.retry;
  }
  return undefined;
}
