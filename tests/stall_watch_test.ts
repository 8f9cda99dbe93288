/** Tests of lib/stall_watch.ts: a node's log names how long its event loop was blocked. */
import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";
import { watchStalls } from "../lib/stall_watch.ts";

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }), lines };
}

Deno.test("watchStalls: a loop blocked for 3 times the threshold (300 ms) is logged with how long; a free loop is not", async () => {
  const { log, lines } = capture();
  const stop = watchStalls(log, { intervalMs: 10, thresholdMs: 100 });
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(lines, [], "no stall while the loop is free");
    const started = performance.now();
    while (performance.now() - started < 300) { /* the loop is blocked */ }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lines.length, 1, lines.join("\n"));
    const ms = Number(/ms=(\d+)/.exec(lines[0])?.[1]);
    console.log(`logged: ${lines[0]}`);
    assert.match(lines[0], /WARN .*event loop was blocked/);
    assert.ok(ms >= 200 && ms <= 2000, `blocked about 300 ms, logged ${ms}`);
  } finally {
    stop();
  }
});
