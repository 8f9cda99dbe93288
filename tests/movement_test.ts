/**
 * Unit tests of the movement report: nothing outside a change; during a join
 * or a decommission, the member, the gainers and who is still streaming.
 */
import assert from "node:assert/strict";
import { LiveRing } from "../lib/membership/live_ring.ts";
import { listFromNodes, type MemberList, proposeJoin, proposeRemove } from "../lib/membership/member_list.ts";
import { movementOf } from "../lib/membership/movement.ts";

const base = listFromNodes([1, 2, 3, 4].map((i) => ({ id: `node${i}`, host: "h", port: i })));
const list = (p: unknown) => (p as { list: MemberList }).list;

Deno.test("no movement outside a change", () => {
  assert.equal(movementOf(base, new LiveRing(base, 50), 2, []), undefined);
});

Deno.test("a join: the joiner is the only gainer, waiting until it has streamed", () => {
  const joining = list(proposeJoin(base, { id: "node5", host: "h", port: 5 }, "node1", []));
  const ring = new LiveRing(joining, 50);
  assert.deepEqual(movementOf(joining, ring, 2, []), {
    node: "node5",
    state: "JOINING",
    gainers: ["node5"],
    streamed: [],
    waiting: ["node5"],
  });
  assert.deepEqual(movementOf(joining, ring, 2, ["node5"])?.waiting, []);
});

Deno.test("a decommission: the remaining nodes gain the leaver's ranges", () => {
  const leaving = list(proposeRemove(base, "node2", 2, "node1", []));
  const m = movementOf(leaving, new LiveRing(leaving, 50), 2, ["node3"])!;
  assert.equal(m.node, "node2");
  assert.equal(m.state, "LEAVING");
  assert.ok(!m.gainers.includes("node2") && m.gainers.length >= 2, m.gainers.join(","));
  assert.deepEqual(m.waiting, m.gainers.filter((g) => g !== "node3"));
});
