/**
 * Free TCP ports for tests that start servers.
 *
 * The port is free when returned, not reserved: start the server soon.
 * Ports come from below the kernel's ephemeral range
 * (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default): a port
 * the kernel picks for `listen(0)` is one it may also give to the next
 * outgoing connection (a gRPC channel, a Redis client), which then holds it
 * when the test's server binds, and the node exits with EADDRINUSE. Below
 * that range only a process that binds on purpose can take it.
 * Ports of the default cluster (6379-6381 for Redis, 8001-8003 for nodes,
 * 9001-9003 for their admin listeners) are never returned, so a test never
 * meets a developer's running cluster.
 */

const RESERVED = new Set([6379, 6380, 6381, 8001, 8002, 8003, 9001, 9002, 9003]);
const LOWEST = 10_000;

/** Ports already handed out by this process. */
const given = new Set<number>();

/** A TCP port on 127.0.0.1 that nothing listens on right now, never the same twice per process. */
export function freePort(): number {
  const highest = ephemeralStart() - 1;
  for (let tries = 0; tries < 1000; tries++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1));
    if (RESERVED.has(port) || given.has(port) || !isFree(port)) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free port found in ${LOWEST}-${highest}`);
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

/** The first port the kernel may pick for outgoing connections (32768 when it cannot be read). */
function ephemeralStart(): number {
  try {
    const first = Number(
      Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > LOWEST + 1000 ? first : 32768;
  } catch {
    return 32768;
  }
}

function isFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}
