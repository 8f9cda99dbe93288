/** Tests of the hint store: bounds in number and age, delivery bookkeeping. */
import assert from "node:assert/strict";
import { HintStore } from "../lib/hints.ts";
import { Logger } from "../lib/log.ts";

const HOUR = 3600_000;

/** A hint store with a clock the test moves and a logger whose lines it keeps. */
function setup(limit = 1000, maxAgeMs = HOUR) {
  let now = 5_000_000;
  const lines: string[] = [];
  const log = new Logger({ level: "warn", format: "json", write: (l) => lines.push(l) });
  const hints = new HintStore({ limit, maxAgeMs, log, clock: () => now });
  return { hints, lines, advance: (ms: number) => now += ms };
}

const v = (timestamp: number, versionNode = "node1") => ({ timestamp, versionNode });

Deno.test("hints are counted per target and in total, and targets lists who has some", () => {
  const { hints } = setup();
  assert.deepEqual(hints.targets(), []);
  assert.equal(hints.size(), 0);
  assert.ok(hints.add("node2", "a", v(1)));
  assert.ok(hints.add("node2", "b", v(1)));
  assert.ok(hints.add("node3", "a", v(1)));
  // The same key again for the same target is one hint, refreshed.
  assert.ok(hints.add("node2", "a", v(2)));
  assert.equal(hints.pendingFor("node2"), 2);
  assert.equal(hints.pendingFor("node3"), 1);
  assert.equal(hints.pendingFor("node9"), 0);
  assert.equal(hints.size(), 3);
  assert.deepEqual(hints.targets().sort(), ["node2", "node3"]);
});

Deno.test("a full hint store refuses new hints, still refreshes held ones, and logs the drop", () => {
  const { hints, lines } = setup(3);
  assert.ok(hints.add("node2", "a", v(1)));
  assert.ok(hints.add("node2", "b", v(1)));
  assert.ok(hints.add("node3", "c", v(1)));
  assert.equal(hints.add("node2", "d", v(1)), false);
  assert.equal(hints.add("node4", "e", v(1)), false);
  assert.equal(hints.size(), 3);
  assert.equal(hints.pendingFor("node4"), 0);
  assert.deepEqual(hints.targets().sort(), ["node2", "node3"], "a refused hint must not list its target");
  assert.ok(hints.add("node2", "a", v(9)), "refreshing a held hint needs no room");
  assert.equal(hints.size(), 3);
  assert.equal(lines.length, 1, "one log line for the first drop, not one per drop");
  assert.match(lines[0], /dropping hints/);
  assert.match(lines[0], /hint store full \(3\)/);
  // Room again once hints are delivered.
  hints.delivered("node3", [{ key: "c", version: v(1) }]);
  assert.ok(hints.add("node2", "d", v(1)));
});

Deno.test("a zero limit keeps no hints at all", () => {
  const { hints } = setup(0);
  assert.equal(hints.add("node2", "a", v(1)), false);
  assert.equal(hints.size(), 0);
  assert.deepEqual(hints.targets(), []);
});

Deno.test("take gives keys oldest first up to the limit without forgetting them", () => {
  const { hints, advance } = setup();
  for (const k of ["k1", "k2", "k3", "k4", "k5"]) {
    hints.add("node2", k, v(1));
    advance(10);
  }
  assert.deepEqual(hints.take("node2", 3), ["k1", "k2", "k3"]);
  assert.deepEqual(hints.take("node2", 10), ["k1", "k2", "k3", "k4", "k5"]);
  assert.deepEqual(hints.take("node9", 10), []);
  assert.equal(hints.pendingFor("node2"), 5);
});

Deno.test("hints older than maxAgeMs are dropped when taken, and a refreshed hint lives on", () => {
  const { hints, lines, advance } = setup(1000, HOUR);
  hints.add("node2", "old", v(1));
  hints.add("node2", "refreshed", v(1));
  advance(HOUR / 2);
  hints.add("node2", "young", v(1));
  hints.add("node2", "refreshed", v(2));
  advance(HOUR / 2);
  // Exactly maxAgeMs old is still kept.
  assert.deepEqual(hints.take("node2", 10), ["old", "refreshed", "young"]);
  advance(1);
  assert.deepEqual(hints.take("node2", 10), ["refreshed", "young"]);
  assert.equal(hints.pendingFor("node2"), 2);
  assert.equal(hints.size(), 2);
  assert.match(lines.join("\n"), /hint older than 3600000 ms/);
  advance(HOUR);
  assert.deepEqual(hints.take("node2", 10), []);
  assert.equal(hints.size(), 0);
  assert.deepEqual(hints.targets(), [], "a target whose hints all expired has none waiting");
});

Deno.test("delivered() forgets hints delivered at their version or newer and keeps newer hints", () => {
  const { hints } = setup();
  hints.add("node2", "same", v(10, "node1"));
  hints.add("node2", "older-sent", v(20, "node3"));
  hints.add("node2", "newer-sent", v(30, "node1"));
  hints.add("node2", "gone", v(40, "node1"));
  hints.add("node2", "not-sent", v(50, "node1"));
  hints.delivered("node2", [
    { key: "same", version: v(10, "node1") },
    // A newer write arrived after the delivery read the record: the hint stays.
    { key: "older-sent", version: v(20, "node1") },
    { key: "newer-sent", version: v(31, "node1") },
    // No record any more: nothing to deliver.
    { key: "gone" },
    { key: "never-hinted", version: v(1) },
  ]);
  assert.deepEqual(hints.take("node2", 10).sort(), ["not-sent", "older-sent"]);
  assert.equal(hints.pendingFor("node2"), 2);
  assert.equal(hints.size(), 2);
  hints.delivered("node2", [{ key: "older-sent", version: v(20, "node3") }, {
    key: "not-sent",
    version: v(50),
  }]);
  assert.equal(hints.size(), 0);
  assert.deepEqual(hints.targets(), []);
  // Delivering to a target with no hints is harmless.
  hints.delivered("node7", [{ key: "x" }]);
  assert.equal(hints.size(), 0);
});

Deno.test("isHinted says whether any target still waits for a key", () => {
  const { hints } = setup();
  assert.equal(hints.isHinted("k"), false);
  hints.add("node2", "k", v(1));
  hints.add("node3", "k", v(1));
  assert.equal(hints.isHinted("k"), true);
  hints.delivered("node2", [{ key: "k", version: v(1) }]);
  assert.equal(hints.isHinted("k"), true, "node3 still waits");
  hints.delivered("node3", [{ key: "k", version: v(1) }]);
  assert.equal(hints.isHinted("k"), false);
});
