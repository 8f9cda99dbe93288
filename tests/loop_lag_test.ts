/** Tests of lib/bench/loop_lag.ts: the load generator's own event-loop lag. */
import assert from "node:assert/strict";
import { LoopLag } from "../lib/bench/loop_lag.ts";

Deno.test("LoopLag: a loop blocked for 60 ms shows a lag of about that much; an idle one shows little", async () => {
  const lag = new LoopLag(5);
  lag.start();
  await new Promise((r) => setTimeout(r, 30));
  const started = performance.now();
  while (performance.now() - started < 60) { /* the loop is blocked */ }
  await new Promise((r) => setTimeout(r, 30));
  const s = lag.stop();
  console.log(`lag: max ${s.maxMs} ms, p50 ${s.p50Ms} ms, stalled ${s.stalledMs} ms over ${s.count} samples`);
  assert.ok(s.maxMs >= 50, `a 60 ms block seen as at least 50 ms: ${s.maxMs}`);
  assert.ok(s.stalledMs >= 50);
  assert.ok(s.count >= 5);
});
