/**
 * Free TCP ports for tests that start servers.
 *
 * The port is free when returned, not reserved: start the server soon.
 * Ports of the default cluster (6379-6381 for Redis, 8001-8003 for nodes,
 * 9001-9003 for their admin listeners)
 * are never returned, so a test never meets a developer's running cluster.
 */

const RESERVED = new Set([6379, 6380, 6381, 8001, 8002, 8003, 9001, 9002, 9003]);

/** Ports already handed out by this process: the kernel may offer one again before it is used. */
const given = new Set<number>();

/** A TCP port on 127.0.0.1 that nothing listens on right now, never the same twice per process. */
export function freePort(): number {
  while (true) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (!RESERVED.has(port) && !given.has(port)) {
      given.add(port);
      return port;
    }
  }
}

/** The first of `n` consecutive free ports (for `cluster --nodes N`, which numbers ports from the first). */
export function freePortRun(n: number): number {
  for (let tries = 0; tries < 100; tries++) {
    const base = freePort();
    const run = Array.from({ length: n - 1 }, (_, i) => base + i + 1);
    if (run.some((p) => RESERVED.has(p) || given.has(p) || p > 65535 || !isFree(p))) continue;
    for (const p of run) given.add(p);
    return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

function isFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}
