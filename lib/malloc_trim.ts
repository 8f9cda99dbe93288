/**
 * Gives the C allocator's free memory back to the system now and then.
 *
 * The memory engine's slabs and typed arrays, and the buffers of every call,
 * are ArrayBuffers the runtime allocates with glibc's malloc. After bulk
 * traffic (loading, replication, recovery streams) the main heap keeps tens of
 * megabytes of freed chunks between live ones: glibc only returns the top of
 * its heap by itself, so that memory stays resident (55 MB of 219 in a node
 * holding 1M records). `malloc_trim(0)` releases the free pages inside the
 * heap too; they cost a page fault each when reused. Where there is no glibc
 * or no FFI permission this does nothing.
 */
import type { Logger } from "./log.ts";

/** How often a node trims its heap by default. */
export const TRIM_INTERVAL_MS = 5000;

/** Options of {@link trimMallocPeriodically}. */
export interface MallocTrimOptions {
  /** How often the heap is trimmed (default {@link TRIM_INTERVAL_MS}). */
  intervalMs?: number;
}

type Trim = () => number;

/** glibc's malloc_trim through FFI, or undefined where it cannot be called. */
export function openMallocTrim(): Trim | undefined {
  if (Deno.build.os !== "linux" || Deno.build.env !== "gnu") return undefined;
  try {
    const lib = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => lib.symbols.malloc_trim(0n);
  } catch {
    // No FFI permission, or a libc without malloc_trim.
    return undefined;
  }
}

/**
 * Calls malloc_trim(0) every `intervalMs` (the timer does not keep the
 * process alive). Logs once at start whether trimming is on. Returns a
 * function that stops it.
 */
export function trimMallocPeriodically(log: Logger, o: MallocTrimOptions = {}): () => void {
  const trim = openMallocTrim();
  if (!trim) {
    log.debug("malloc trim unavailable (not glibc, or no FFI permission)");
    return () => {};
  }
  const timer = setInterval(() => {
    const t0 = performance.now();
    const released = trim();
    log.debug("malloc trim", { released, ms: Math.round((performance.now() - t0) * 10) / 10 });
  }, o.intervalMs ?? TRIM_INTERVAL_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
