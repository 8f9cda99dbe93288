/** The status page's events list: a fixed-size ring of events, refusals only counted. */
import assert from "node:assert/strict";
import { EventLog } from "../lib/admin/events.ts";

Deno.test("the events list keeps its last N events, newest first, overwriting the oldest", () => {
  let now = 1000;
  const log = new EventLog(3, () => now);
  assert.deepEqual(log.list(), []);
  for (const id of ["node1", "node2", "node3", "node4", "node5"]) {
    log.add("failure", id, `${id} failed`);
    now += 10;
  }
  assert.deepEqual(log.list().map((e) => [e.node, e.atMs]), [["node5", 1040], ["node4", 1030], [
    "node3",
    1020,
  ]]);
  assert.equal(log.list()[0].kind, "failure");
});

Deno.test("refused calls are counted by reason, never listed, and the reasons are bounded", () => {
  const log = new EventLog(10);
  for (let i = 0; i < 1000; i++) log.refused("no client token");
  log.refused("wrong client token");
  assert.deepEqual(log.refusals(), { "no client token": 1000, "wrong client token": 1 });
  assert.deepEqual(log.list(), [], "no event per refusal");
  for (let i = 0; i < 100; i++) log.refused(`reason ${i}`);
  assert.ok(Object.keys(log.refusals()).length <= 33, "at most 32 reasons and other");
  assert.equal(Object.values(log.refusals()).reduce((a, b) => a + b), 1101, "every refusal counted");
});
