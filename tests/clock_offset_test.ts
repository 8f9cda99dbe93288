/**
 * Unit tests of the clock offset estimator (lib/clock_offset.ts) and the
 * node's watch on its clock (lib/clock_watch.ts), with injected clocks.
 */
import assert from "node:assert/strict";
import { ClockOffsets } from "../lib/clock_offset.ts";
import { ClockWatch } from "../lib/clock_watch.ts";
import { Logger } from "../lib/log.ts";

/** A sample of a peer `offsetMs` ahead, with a symmetric round trip of `rttMs` sent at `at`. */
function sample(offsetMs: number, rttMs: number, at: number) {
  return { sentMs: at, rttMs, peerMs: at + rttMs / 2 + offsetMs, atMs: at + rttMs };
}

Deno.test("an offset is the peer's clock against the round trip's midpoint, within half the round trip", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500 });
  c.add("node2", sample(-100_000, 4, 1_000_000));
  const o = c.offset("node2", 1_000_010)!;
  assert.equal(o.offsetMs, -100_000);
  assert.equal(o.uncertaintyMs, 2);
  assert.equal(o.exceeded, true);
  assert.equal(c.offset("node3", 1_000_010), undefined);
});

Deno.test("the tightest recent sample wins: one slow reply does not move the estimate", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500, window: 4 });
  c.add("p", sample(10, 2, 1000));
  // A reply that sat 3 s in a queue on the way back: its midpoint is 1.5 s off.
  c.add("p", { sentMs: 2000, rttMs: 3000, peerMs: 2000 + 1 + 10, atMs: 5000 });
  assert.equal(c.offset("p", 5000)!.offsetMs, 10);
  // Older samples leave the window: four newer ones push the tight one out.
  for (let i = 0; i < 4; i++) c.add("p", sample(700, 20, 6000 + i * 100));
  assert.equal(c.offset("p", 7000)!.offsetMs, 700);
});

Deno.test("an offset counts as exceeded only beyond its uncertainty", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500 });
  // 700 ms measured, but the round trip took 600 ms: it may be as little as 400 ms.
  c.add("loaded", sample(700, 600, 1000));
  assert.equal(c.offset("loaded", 2000)!.exceeded, false);
  c.add("tight", sample(700, 10, 1000));
  assert.equal(c.offset("tight", 2000)!.exceeded, true);
  c.add("ahead", sample(-501, 0, 1000));
  assert.equal(c.offset("ahead", 2000)!.exceeded, true);
});

Deno.test("samples age out, so a peer whose clock was fixed stops counting", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500, maxAgeMs: 10_000 });
  c.add("p", sample(5000, 2, 1000));
  assert.equal(c.offset("p", 5000)!.exceeded, true);
  assert.equal(c.offset("p", 20_000), undefined);
});

Deno.test("the clock is off only when exceeded to a majority of the other members", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500 });
  c.add("node2", sample(100_000, 2, 1000));
  // One of two others: the other peer may be the one with the bad clock.
  let v = c.verdict(["node2", "node3"], 2000);
  assert.equal(v.off, false);
  assert.deepEqual(v.exceededTo, ["node2"]);
  assert.match(v.reason, /100\.000 s behind node2 \(± 1 ms\)/);
  c.add("node3", sample(99_000, 2, 1000));
  v = c.verdict(["node2", "node3"], 2000);
  assert.equal(v.off, true);
  assert.match(v.reason, /limits\.max_clock_offset_ms \(500 ms\) to 2 of 2 other members/);
  // Four others: two are not a majority, three are.
  v = c.verdict(["node2", "node3", "node4", "node5"], 2000);
  assert.equal(v.off, false);
  c.add("node4", sample(100_000, 2, 1000));
  assert.equal(c.verdict(["node2", "node3", "node4", "node5"], 2000).off, true);
  assert.equal(c.verdict([], 2000).off, false);
});

Deno.test("with a single other member nobody can tell whose clock is wrong: it warns, never stops", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500 });
  c.add("node2", sample(-100_000, 2, 1_000_000));
  const v = c.verdict(["node2"], 1_000_010);
  assert.equal(v.off, false);
  assert.equal(v.warn, true);
  assert.match(v.reason, /100\.000 s ahead of node2/);
});

Deno.test("a refusal that carries the receiver's clock is a sample too", () => {
  const c = new ClockOffsets({ maxOffsetMs: 500 });
  c.addReceiverTime("node2", 1_100_000, 6, 1_000_006);
  const o = c.offset("node2", 1_000_010)!;
  assert.equal(o.offsetMs, 99_997);
  assert.equal(o.uncertaintyMs, 3);
});

/** A watch over fake clocks: `wall` is the node's clock, `mono` its monotonic one. */
function fakeWatch(others: string[], graceMs = 1000) {
  const t = { wall: 1_000_000, mono: 0 };
  const lines: string[] = [];
  const reports: string[] = [];
  const log = new Logger({ level: "debug", format: "text", write: (line) => lines.push(line) });
  const watch = new ClockWatch({
    onReport: (text) => reports.push(text),
    wall: () => t.wall,
    monotonic: () => t.mono,
    maxOffsetMs: 500,
    others: () => others,
    startGraceMs: graceMs,
    log,
  });
  return { t, watch, lines, reports };
}

Deno.test("a node holds back until a majority is measured, or the start grace is over", async () => {
  const { t, watch } = fakeWatch(["node2", "node3"]);
  assert.match(watch.holdReason()!, /not measured yet/);
  await watch.measure("node2", () => Promise.resolve(t.wall + 3), (ms) => ms);
  assert.match(watch.holdReason()!, /not measured yet/, "one of two others is not a majority");
  await watch.measure("node3", () => Promise.resolve(t.wall + 3), (ms) => ms);
  assert.equal(watch.holdReason(), undefined);
  const late = fakeWatch(["node2", "node3"]);
  late.t.mono = 1000;
  late.watch.update();
  assert.equal(late.watch.holdReason(), undefined);
  // Alone, or with one other member, there is nobody to wait for.
  assert.equal(fakeWatch([]).watch.holdReason(), undefined);
  assert.equal(fakeWatch(["node2"]).watch.holdReason(), undefined);
});

Deno.test("a node whose clock is off holds back, says why once a minute, and resumes when it is back", async () => {
  const { t, watch, lines, reports } = fakeWatch(["node2", "node3"]);
  const peerClock = { ahead: 100_000 };
  const beat = (peer: string) =>
    watch.measure(peer, () => {
      t.mono += 2;
      return Promise.resolve(t.wall + 1 + peerClock.ahead);
    }, (ms) => ms);
  await beat("node2");
  await beat("node3");
  assert.match(watch.holdReason()!, /2 of 2 other members: 100\.000 s behind node2/);
  assert.equal(lines.filter((l) => l.includes("stops coordinating writes")).length, 1);
  for (let i = 0; i < 10; i++) await beat("node2");
  assert.equal(lines.filter((l) => l.includes("stops coordinating writes")).length, 1);
  t.mono += 60_000;
  await beat("node2");
  assert.equal(lines.filter((l) => l.includes("stops coordinating writes")).length, 2);
  // The clock is fixed: newer samples age the old ones out.
  peerClock.ahead = 3;
  t.wall += 61_000;
  await beat("node2");
  await beat("node3");
  assert.equal(watch.holdReason(), undefined);
  assert.ok(lines.some((l) => l.includes("back within limits.max_clock_offset_ms")));
  assert.deepEqual(watch.peerOffsets().map((p) => [p.peer, p.offsetMs]), [["node2", 3], ["node3", 3]]);
  // The events list hears what the log says, as often: twice off, once back (and the warnings before).
  assert.ok(reports.every((r) => lines.some((l) => l.includes(r))), "each report is a logged line");
  assert.deepEqual(reports.map((r) => /stops coordinating|back within/.exec(r)?.[0]).filter((r) => r), [
    "stops coordinating",
    "stops coordinating",
    "back within",
  ]);
});
