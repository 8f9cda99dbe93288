/**
 * Unit tests of the versioned member list: newest wins, the claimant rule,
 * one change at a time, completing a change, and the cleanup grace period
 * (with an injected clock).
 */
import assert from "node:assert/strict";
import {
  changeUnderWay,
  claimantOf,
  completeChange,
  currentIds,
  isNewer,
  listFromNodes,
  type MemberList,
  MemberView,
  nextIds,
  proposeJoin,
  proposeRemove,
} from "../lib/membership/member_list.ts";

const base = listFromNodes([1, 2, 3].map((i) => ({ id: `node${i}`, host: "127.0.0.1", port: 8000 + i })));
const node4 = { id: "node4", host: "127.0.0.1", port: 8004 };

function accepted(p: ReturnType<typeof proposeJoin>): MemberList {
  assert.equal(p.kind, "accepted", JSON.stringify(p));
  return (p as { list: MemberList }).list;
}

Deno.test("the newest list wins: higher epoch, then higher claimant id at the same epoch", () => {
  const a = { ...base, epoch: 2, claimant: "node1" };
  const b = { ...base, epoch: 3, claimant: "node1" };
  assert.ok(isNewer(b, a) && !isNewer(a, b));
  const c = { ...base, epoch: 3, claimant: "node2" };
  assert.ok(isNewer(c, b) && !isNewer(b, c));
  assert.ok(!isNewer(b, b));
});

Deno.test("the claimant is the lowest-id NORMAL member seen alive", () => {
  assert.equal(claimantOf(base, () => true), "node1");
  assert.equal(claimantOf(base, (id) => id !== "node1"), "node2");
  const leaving = accepted(proposeRemove(base, "node1", 2, "node1", []));
  assert.equal(claimantOf(leaving, () => true), "node2");
  assert.equal(claimantOf(base, () => false), undefined);
});

Deno.test("a join makes the joiner JOINING: reads stay on the old members, writes also reach it", () => {
  const joining = accepted(proposeJoin(base, node4, "node1", []));
  assert.equal(joining.epoch, 1);
  assert.equal(joining.claimant, "node1");
  assert.deepEqual(currentIds(joining), ["node1", "node2", "node3"]);
  assert.deepEqual(nextIds(joining), ["node1", "node2", "node3", "node4"]);
  assert.equal(changeUnderWay(joining)?.id, "node4");
  const done = completeChange(joining, "node1");
  assert.equal(done.epoch, 2);
  assert.equal(changeUnderWay(done), undefined);
  assert.deepEqual(currentIds(done), ["node1", "node2", "node3", "node4"]);
});

Deno.test("one change at a time: a second join or a removal meanwhile is told to retry", () => {
  const joining = accepted(proposeJoin(base, node4, "node1", []));
  const again = proposeJoin(joining, { id: "node5", host: "127.0.0.1", port: 8005 }, "node1", []);
  assert.equal(again.kind, "retry");
  assert.match((again as { message: string }).message, /node4 JOINING/);
  assert.equal(proposeRemove(joining, "node2", 2, "node1", []).kind, "retry");
  // A member that is not ACTIVE blocks a change too.
  assert.equal(proposeJoin(base, node4, "node1", ["node3"]).kind, "retry");
});

Deno.test("a retried join of the same node is welcomed back unchanged; a clashing one is refused", () => {
  const joining = accepted(proposeJoin(base, node4, "node1", []));
  assert.equal(accepted(proposeJoin(joining, node4, "node1", [])), joining);
  const clash = proposeJoin(joining, { ...node4, port: 9999 }, "node1", []);
  assert.equal(clash.kind, "refused");
  const taken = proposeJoin(base, { id: "node9", host: "127.0.0.1", port: 8002 }, "node1", []);
  assert.equal(taken.kind, "refused");
});

Deno.test("removal: LEAVING until its ranges moved, then gone; a dead member may be the one removed", () => {
  const leaving = accepted(proposeRemove(base, "node2", 2, "node1", ["node2"]));
  assert.deepEqual(currentIds(leaving), ["node1", "node2", "node3"]);
  assert.deepEqual(nextIds(leaving), ["node1", "node3"]);
  const done = completeChange(leaving, "node1");
  assert.deepEqual(done.members.map((m) => m.id), ["node1", "node3"]);
  assert.equal(proposeRemove(base, "nodeX", 2, "node1", []).kind, "refused");
  // Fewer members than replication_factor would be left.
  const two = completeChange(leaving, "node1");
  assert.equal(proposeRemove(two, "node3", 2, "node1", []).kind, "refused");
});

Deno.test("removing a JOINING node calls its join off", () => {
  const joining = accepted(proposeJoin(base, node4, "node1", []));
  const off = accepted(proposeRemove(joining, "node4", 2, "node1", []));
  assert.equal(off.epoch, 2);
  assert.deepEqual(off.members.map((m) => m.id), ["node1", "node2", "node3"]);
  assert.equal(changeUnderWay(off), undefined);
});

Deno.test("MemberView adopts only newer lists, and allows cleanup only a grace period after a completed change", () => {
  let now = 1000;
  const view = new MemberView(base, () => now);
  assert.equal(view.cleanupDue(0), false, "epoch 0 never changed: nothing to clean");
  const joining = accepted(proposeJoin(base, node4, "node1", []));
  assert.ok(view.offer(joining));
  assert.ok(!view.offer(base));
  now += 10_000;
  assert.equal(view.cleanupDue(500), false, "a change is under way");
  assert.ok(view.offer(completeChange(joining, "node1")));
  now += 499;
  assert.equal(view.cleanupDue(500), false);
  now += 1;
  assert.equal(view.cleanupDue(500), true);
});
