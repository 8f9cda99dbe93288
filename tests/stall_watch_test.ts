/** Tests of lib/stall_watch.ts: a node's log names how long its event loop was blocked. */
import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";
import { watchStalls } from "../lib/stall_watch.ts";

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }), lines };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("watchStalls: a check that comes late by the threshold or more is logged once, with how late (injected clock)", async () => {
  const { log, lines } = capture();
  let now = 0;
  const stop = watchStalls(log, { intervalMs: 10, thresholdMs: 500, now: () => now });
  try {
    await tick(40);
    assert.deepEqual(lines, [], "checks on time log nothing");
    now = 499 + 10; // due at 10: 499 ms late, under the threshold
    await tick(30);
    assert.deepEqual(lines, []);
    now += 10 + 600; // due 10 after the last check: 600 ms late
    await tick(30);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /WARN .*event loop was blocked ms=600/);
  } finally {
    stop();
  }
});

Deno.test("watchStalls: a loop really blocked for 300 ms is reported", async () => {
  const { log, lines } = capture();
  const stop = watchStalls(log, { intervalMs: 10, thresholdMs: 100 });
  try {
    const started = performance.now();
    while (performance.now() - started < 300) { /* the loop is blocked */ }
    await tick(50);
    const ms = lines.map((l) => Number(/ms=(\d+)/.exec(l)?.[1]));
    console.log(`logged: ${lines.join("; ")}`);
    assert.ok(ms.some((m) => m >= 200), `a 300 ms block logged: ${ms.join(", ")}`);
  } finally {
    stop();
  }
});
