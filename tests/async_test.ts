/** Tests of lib/async.ts: the pause a long loop takes to let the event loop (timers, sockets) run. */
import assert from "node:assert/strict";
import net from "node:net";
import { pauser } from "../lib/async.ts";
import { freePort } from "./helpers/ports.ts";

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

Deno.test("pauser: a busy loop that pauses lets socket data in (a loopback echo) all along, not only when it ends", async () => {
  const sliceMs = 10;
  // A reset on close must not fail the test: only the echoes matter.
  const server = net.createServer((socket) =>
    socket.on("data", (d) => socket.write(d)).on("error", () => {})
  );
  const port = freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const client = net.connect(port, "127.0.0.1").on("error", () => {});
  await new Promise((resolve) => client.once("connect", resolve));
  const arrivals: number[] = [];
  client.on("data", () => arrivals.push(performance.now()));
  const pinger = setInterval(() => client.write("x"), 2 * sliceMs);
  try {
    await new Promise((resolve) => setTimeout(resolve, 10 * sliceMs));
    const pause = pauser(sliceMs);
    const start = performance.now();
    for (let step = 0; step < 200; step++) {
      const started = performance.now();
      while (performance.now() - started < sliceMs / 2) { /* a slice of work */ }
      await pause();
    }
    const end = performance.now();
    let longest = 0;
    let last = start;
    for (const at of [...arrivals.filter((a) => a > start && a < end), end]) {
      longest = Math.max(longest, at - last);
      last = at;
    }
    console.log(`loop of ${(end - start).toFixed(0)} ms: longest without an echo ${longest.toFixed(0)} ms`);
    assert.ok(
      longest < 40 * sliceMs,
      `no echo for ${longest.toFixed(0)} ms while the loop ran (slice ${sliceMs} ms)`,
    );
  } finally {
    clearInterval(pinger);
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
