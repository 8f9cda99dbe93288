/** Tests of lib/async.ts: the pause a long loop takes to let the event loop run. */
import assert from "node:assert/strict";
import { pauser } from "../lib/async.ts";

Deno.test("pauser: no pause within the slice; after it, one pause, and the slice starts again when it ends", async () => {
  let now = 100;
  const pause = pauser(10, () => now);
  now = 109;
  assert.equal(pause(), undefined);
  now = 110;
  const p = pause();
  assert.ok(p instanceof Promise);
  now = 115;
  await p;
  now = 124;
  assert.equal(pause(), undefined, "the slice counts from when the pause ended (115)");
  now = 125;
  assert.ok(pause() instanceof Promise);
});

Deno.test("pauser: a busy loop that pauses lets a due timer run before it ends", async () => {
  const pause = pauser(2);
  let timerRanAt = -1;
  setTimeout(() => timerRanAt = step, 1);
  let step = 0;
  for (; step < 20; step++) {
    const started = performance.now();
    while (performance.now() - started < 2) { /* a slice of work */ }
    await pause();
  }
  assert.ok(timerRanAt >= 0 && timerRanAt < 20, `the timer ran at step ${timerRanAt} of 20`);
});
