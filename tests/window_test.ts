/** The sliding minute of the status page: ops/s and latency quantiles, on an injected clock. */
import assert from "node:assert/strict";
import { RecentWindow } from "../lib/admin/window.ts";

const BOUNDS = [0.001, 0.01, 0.1, 1];

Deno.test("the rate is calls per second since start, then over the last 60 s", () => {
  let now = 1_000_000;
  const w = new RecentWindow(BOUNDS, () => now);
  assert.equal(w.rate(), 0);
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 5; i++) w.record(0.002);
    now += 1000;
  }
  assert.equal(w.rate(), 5, "50 calls in 10 s");
  now += 120_000;
  for (let i = 0; i < 60; i++) w.record(0.002);
  assert.equal(w.rate(), 1, "older seconds have left the window: 60 calls in 60 s");
});

Deno.test("quantiles interpolate inside the bucket the rank falls in", () => {
  let now = 5_000_000;
  const w = new RecentWindow(BOUNDS, () => now);
  assert.equal(w.quantile(0.99), 0);
  for (let i = 0; i < 98; i++) w.record(0.0005);
  w.record(0.05);
  w.record(0.5);
  // 98 calls in (0, 1 ms]: the median is halfway through that bucket.
  assert.ok(Math.abs(w.quantile(0.49) - 0.0005) < 1e-12);
  // Rank 99 is the only call in (10 ms, 100 ms]: that bucket's upper bound.
  assert.ok(Math.abs(w.quantile(0.99) - 0.1) < 1e-12);
  assert.ok(Math.abs(w.quantile(1) - 1) < 1e-12);
  w.record(5);
  assert.equal(w.quantile(1), 1, "beyond the last bound: the last bound");
  now += 61_000;
  assert.equal(w.quantile(0.99), 0, "a minute later nothing is left");
});

Deno.test("a series gives each slot of the window on its own, oldest first (the sparklines' five minutes)", () => {
  let now = 3_000_000;
  const w = new RecentWindow(BOUNDS, () => now, { slots: 60, slotMs: 5000 });
  const empty = w.series(0.99);
  assert.equal(empty.length, 60);
  assert.ok(empty.every((p) => p.perSecond === 0 && p.quantile === 0));
  for (let i = 0; i < 50; i++) w.record(0.0005); // 10 calls/s over a 5 s slot
  now += 5000;
  w.record(0.5);
  const s = w.series(0.99);
  assert.equal(s.length, 60);
  assert.equal(s[59].atMs - s[58].atMs, 5000, "oldest first, five seconds apart");
  assert.equal(s[58].perSecond, 10);
  assert.ok(s[58].quantile > 0 && s[58].quantile <= 0.001, `p99 of fast calls: ${s[58].quantile}`);
  assert.equal(s[59].perSecond, 1, "the slot under way: one call in its first second");
  now += 2000;
  assert.equal(w.series(0.99)[59].perSecond, 1 / 2, "one call in its first two seconds");
  assert.ok(s[59].quantile > 0.1, `p99 of the slow call: ${s[59].quantile}`);
  assert.equal(w.rate(), 51 / 7, "the window's rate spans its age until it is full");
  now += 300_000;
  assert.ok(w.series(0.99).every((p) => p.perSecond === 0), "five minutes later the calls have left it");
});
