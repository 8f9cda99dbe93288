/** Unit tests of the test helpers' free-port picker (tests/helpers/ports.ts). */
import assert from "node:assert/strict";
import { freePort, freePortRun } from "./helpers/ports.ts";

const RESERVED = [6379, 6380, 6381, 8001, 8002, 8003, 9001, 9002, 9003];

function ephemeralStart(): number {
  return Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0]);
}

function bindable(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("free ports lie below the ephemeral range, never reserved, never twice, and bind", () => {
  const first = ephemeralStart();
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const port = freePort();
    assert.ok(port >= 10_000 && port < first, `port ${port} outside 10000-${first - 1}`);
    assert.ok(!RESERVED.includes(port), `reserved port ${port}`);
    assert.ok(!seen.has(port), `port ${port} handed out twice`);
    seen.add(port);
  }
  assert.ok([...seen].slice(0, 20).every(bindable));
});

Deno.test("a run of free ports is consecutive and every port binds", () => {
  const base = freePortRun(4);
  for (let p = base; p < base + 4; p++) assert.ok(bindable(p), `port ${p} of the run does not bind`);
  assert.ok(base + 3 < ephemeralStart());
});
