/**
 * Unit tests of the live ring: reads by the current ring, pending copies on
 * the next ring during a change, and which keys a node gains or holds.
 */
import assert from "node:assert/strict";
import { LiveRing } from "../lib/membership/live_ring.ts";
import {
  completeChange,
  listFromNodes,
  type MemberList,
  proposeJoin,
  proposeRemove,
} from "../lib/membership/member_list.ts";
import { HashRing, ringHash } from "../lib/ring.ts";

const base = listFromNodes([1, 2, 3].map((i) => ({ id: `node${i}`, host: "h", port: i })));
const joining =
  (proposeJoin(base, { id: "node4", host: "h", port: 4 }, "node1", []) as { list: MemberList }).list;
const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);

Deno.test("outside a change the live ring is the plain ring and nothing is pending", () => {
  const live = new LiveRing(base, 50);
  const plain = new HashRing(["node1", "node2", "node3"], 50);
  assert.equal(live.moving, false);
  for (const k of keys.slice(0, 200)) {
    assert.deepEqual(live.preferenceList(k, 2), plain.preferenceList(k, 2));
    assert.deepEqual(live.pendingWalk(ringHash(k), 2), []);
  }
});

Deno.test("during a join: owners stay, writes also go to the joiner where it will hold the key", () => {
  const live = new LiveRing(joining, 50);
  const after = new HashRing(["node1", "node2", "node3", "node4"], 50);
  const before = new HashRing(["node1", "node2", "node3"], 50);
  assert.equal(live.moving, true);
  let gained = 0;
  for (const k of keys) {
    assert.deepEqual(live.preferenceList(k, 2), before.preferenceList(k, 2));
    const pending = live.pendingWalk(ringHash(k), 2);
    const willHold = after.preferenceList(k, 2).includes("node4");
    assert.deepEqual(pending, willHold ? ["node4"] : []);
    assert.equal(live.gains(k, "node4", 2), willHold);
    assert.equal(live.holds(k, "node4", 2), willHold);
    if (willHold) gained++;
  }
  // node4 holds about 2 of 4 copies' worth: about half the keys with rf 2.
  assert.ok(gained > keys.length * 0.3 && gained < keys.length * 0.7, `node4 gains ${gained}`);
});

Deno.test("after the change completes, the next ring is the only ring", () => {
  const live = new LiveRing(joining, 50);
  live.adopt(completeChange(joining, "node1"));
  assert.equal(live.moving, false);
  assert.equal(live.epoch, 2);
  assert.deepEqual([...live.nodeIds].sort(), ["node1", "node2", "node3", "node4"]);
  for (const k of keys.slice(0, 100)) assert.equal(live.gains(k, "node4", 2), false);
});

/** The nodes that gain some key, by brute force over many keys. */
function gainedByKeys(live: LiveRing, rf: number): string[] {
  const out = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const pos = ringHash(`probe:${i}`);
    const now = live.current.walk(pos, rf);
    for (const id of live.next.walk(pos, rf)) if (!now.includes(id)) out.add(id);
  }
  return [...out].sort();
}

Deno.test("the nodes that gain ranges, from the ring points, agree with a key-by-key count", () => {
  const five = listFromNodes([1, 2, 3, 4, 5].map((i) => ({ id: `node${i}`, host: "h", port: i })));
  for (const rf of [1, 2, 3]) {
    const join =
      (proposeJoin(five, { id: "node6", host: "h", port: 6 }, "node1", []) as { list: MemberList }).list;
    const liveJoin = new LiveRing(join, 50);
    assert.deepEqual(liveJoin.gainers(rf), ["node6"], "in a join only the joiner gains");
    assert.deepEqual(liveJoin.gainers(rf), gainedByKeys(liveJoin, rf));
    const leave = (proposeRemove(five, "node3", rf, "node1", []) as { list: MemberList }).list;
    const liveLeave = new LiveRing(leave, 50);
    assert.ok(liveLeave.gainers(rf).length > 0 && !liveLeave.gainers(rf).includes("node3"));
    assert.deepEqual(liveLeave.gainers(rf), gainedByKeys(liveLeave, rf), `rf ${rf}`);
  }
  assert.deepEqual(new LiveRing(five, 50).gainers(2), []);
});
