/**
 * Reports when this process's event loop was blocked: a node that runs one
 * piece of work for a second answers no call and sends no heartbeat
 * meanwhile, so its peers may suspect it and its clients time out. The log
 * line names how long, which is how such stalls are found (they show in no
 * other metric of the node itself). It is a timer, so it cannot see work
 * that lets timers run but leaves sockets unread (a chain of setImmediate
 * on Deno 2.9: see `pauser` in async.ts).
 */
import type { Logger } from "./log.ts";

/** Options of {@link watchStalls}. */
export interface StallWatchOptions {
  /** How often the loop is checked (default 100 ms). */
  intervalMs?: number;
  /** Blocks at least this long are logged (default 500 ms; a node's is `logging.stall_threshold_ms`). */
  thresholdMs?: number;
  /** Milliseconds; injected by tests. */
  now?: () => number;
}

/**
 * Checks every `intervalMs` how late the check itself runs and warns of a
 * lateness of `thresholdMs` or more. The timer does not keep the process
 * alive. Returns a function that stops watching.
 */
export function watchStalls(log: Logger, o: StallWatchOptions = {}): () => void {
  const intervalMs = o.intervalMs ?? 100;
  const thresholdMs = o.thresholdMs ?? 500;
  const now = o.now ?? (() => performance.now());
  let due = now() + intervalMs;
  const timer = setInterval(() => {
    const late = now() - due;
    if (late >= thresholdMs) log.warn("event loop was blocked", { ms: Math.round(late) });
    due = now() + intervalMs;
  }, intervalMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
