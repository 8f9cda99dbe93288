/**
 * Tests of the consistent-hash ring against an independent, brute-force
 * reimplementation of the placement rule on the interface page, so that a
 * change to lib/ring.ts that would disagree with users' own routing tools
 * fails here.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HashRing, ringHash } from "../lib/ring.ts";
import { allPoints, bruteList, bruteOwner, md5Prefix } from "./helpers/ring_reference.ts";

const NODES = ["node1", "node2", "node3"];
const VNODES = 150;

function randomKeys(n: number): string[] {
  return Array.from({ length: n }, () => `key-${crypto.randomUUID()}`);
}

/** Fraction of keys per owner. */
function spread(ring: HashRing, keys: readonly string[]): Map<string, number> {
  const counts = new Map(ring.nodeIds.map((id) => [id, 0]));
  for (const k of keys) {
    const o = ring.owner(k);
    counts.set(o, counts.get(o)! + 1);
  }
  return new Map([...counts].map(([id, c]) => [id, c / keys.length]));
}

Deno.test("ringHash is the first four bytes of MD5, read big-endian", () => {
  const samples = ["", "a", "user:42", "node1:0", "node3:149", "ключ", "鍵", "emoji 😀", "x".repeat(5000)];
  for (const s of samples) {
    const digest = createHash("md5").update(new TextEncoder().encode(s)).digest();
    const expected = ((digest[0] << 24) >>> 0) + (digest[1] << 16) + (digest[2] << 8) + digest[3];
    assert.equal(ringHash(s), expected, `hash of ${JSON.stringify(s.slice(0, 20))}`);
    assert.equal(ringHash(s), md5Prefix(s));
  }
  // A known value: MD5("") = d41d8cd98f00b204e9800998ecf8427e.
  assert.equal(ringHash(""), 0xd41d8cd9);
});

Deno.test("the owner of many keys matches a brute-force reimplementation of the placement rule", () => {
  const ring = new HashRing(NODES, VNODES);
  const points = allPoints(NODES, VNODES);
  const keys = [...Array.from({ length: 3000 }, (_, i) => `key${i}`), ...randomKeys(2000), "", "ключ", "😀"];
  for (const k of keys) assert.equal(ring.owner(k), bruteOwner(points, k), `owner of ${k}`);
});

Deno.test("a key hashed above the largest point wraps around to the smallest point's node", () => {
  const ring = new HashRing(NODES, VNODES);
  const points = allPoints(NODES, VNODES);
  const largest = points[points.length - 1].pos;
  let key: string | undefined;
  for (let i = 0; i < 2_000_000 && key === undefined; i++) {
    if (ringHash(`wrap-${i}`) > largest) key = `wrap-${i}`;
  }
  assert.ok(key !== undefined, "no key above the largest point found");
  assert.equal(ring.owner(key), points[0].id);
  assert.equal(ring.preferenceList(key, 1)[0], points[0].id);
  assert.deepEqual(ring.preferenceList(key, 3), bruteList(points, key, 3));
  // A key hashed exactly at a point belongs to that point's node.
  assert.equal(ring.walk(points[10].pos, 1)[0], points[10].id);
  assert.equal(ring.walk(0, 1)[0], points[0].id);
  assert.equal(ring.walk(2 ** 32 - 1, 1)[0], largest === 2 ** 32 - 1 ? points.at(-1)!.id : points[0].id);
});

Deno.test("two ring instances built from the same nodes in another order place every key alike", () => {
  const a = new HashRing(NODES, VNODES);
  const b = new HashRing([...NODES].reverse(), VNODES);
  for (const k of randomKeys(5000)) {
    assert.equal(a.owner(k), b.owner(k));
    assert.deepEqual(a.preferenceList(k, 3), b.preferenceList(k, 3));
  }
});

Deno.test("preferenceList returns distinct nodes, owner first, filtered by accept, at most count", () => {
  const nodes = ["n1", "n2", "n3", "n4", "n5"];
  const ring = new HashRing(nodes, 50);
  const points = allPoints(nodes, 50);
  for (const k of randomKeys(2000)) {
    const full = ring.preferenceList(k, nodes.length);
    assert.deepEqual(full, bruteList(points, k, nodes.length));
    assert.equal(new Set(full).size, nodes.length);
    assert.equal(full[0], ring.owner(k));
    assert.deepEqual(ring.preferenceList(k, 2), full.slice(0, 2));
    assert.deepEqual(ring.preferenceList(k, 99), full);
    assert.deepEqual(ring.preferenceList(k, 0), []);
    const accept = (id: string) => id !== "n1" && id !== "n4";
    const filtered = ring.preferenceList(k, 2, accept);
    assert.deepEqual(filtered, full.filter(accept).slice(0, 2));
    assert.deepEqual(ring.preferenceList(k, 5, () => false), []);
  }
});

Deno.test("with 3 nodes and 150 virtual nodes 30000 random keys spread between 28% and 39% each", () => {
  const ring = new HashRing(NODES, VNODES);
  const fractions = spread(ring, randomKeys(30_000));
  console.log("key spread:", [...fractions].map(([id, f]) => `${id}=${(f * 100).toFixed(1)}%`).join(" "));
  for (const [id, f] of fractions) assert.ok(f >= 0.28 && f <= 0.39, `${id} holds ${f}`);
});

Deno.test("adding a fourth node moves about a quarter of the keys, all of them to the new node", () => {
  const before = new HashRing(NODES, VNODES);
  const after = new HashRing([...NODES, "node4"], VNODES);
  const keys = randomKeys(20_000);
  let moved = 0;
  for (const k of keys) {
    const was = before.owner(k);
    const now = after.owner(k);
    if (was !== now) {
      moved++;
      assert.equal(now, "node4", `${k} moved from ${was} to ${now}`);
    }
  }
  console.log(`adding node4 moved ${(moved / keys.length * 100).toFixed(1)}% of keys`);
  assert.ok(moved / keys.length >= 0.15 && moved / keys.length <= 0.35, `moved ${moved / keys.length}`);
});

Deno.test("removing a node moves only the keys that node owned", () => {
  const before = new HashRing([...NODES, "node4"], VNODES);
  const after = new HashRing(NODES, VNODES);
  let moved = 0;
  for (const k of randomKeys(20_000)) {
    const was = before.owner(k);
    if (was === "node4") {
      moved++;
      assert.notEqual(after.owner(k), "node4");
      // The key goes to the next node that was already on its list.
      assert.equal(after.owner(k), before.preferenceList(k, 2)[1]);
    } else {
      assert.equal(after.owner(k), was, `${k} moved although its owner stayed`);
    }
  }
  assert.ok(moved > 0, "no key of node4 sampled");
});

Deno.test("shares() sums to 1 and matches the brute-force arc lengths", () => {
  for (const nodes of [NODES, ["a"], ["a", "b", "c", "d", "e", "f", "g"]]) {
    const ring = new HashRing(nodes, VNODES);
    const shares = ring.shares();
    const sum = [...shares.values()].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `shares sum to ${sum}`);
    assert.deepEqual([...shares.keys()].sort(), [...nodes].sort());
    const points = allPoints(nodes, VNODES);
    const brute = new Map(nodes.map((id) => [id, 0]));
    points.forEach((p, i) => {
      const prev = i === 0 ? points[points.length - 1].pos - 2 ** 32 : points[i - 1].pos;
      brute.set(p.id, brute.get(p.id)! + (p.pos - prev) / 2 ** 32);
    });
    for (const id of nodes) assert.ok(Math.abs(shares.get(id)! - brute.get(id)!) < 1e-12, id);
  }
});

Deno.test("a ring refuses duplicate node ids", () => {
  assert.throws(() => new HashRing(["a", "b", "a"], 10), RangeError);
});

Deno.test("arcs() cover [0, 1) in order, alternate owners, and agree with shares() and owner()", () => {
  const ring = new HashRing(["node1", "node2", "node3"], 150);
  const arcs = ring.arcs();
  assert.equal(arcs[0].from, 0);
  assert.equal(arcs.at(-1)!.to, 1);
  const length = new Map<string, number>();
  arcs.forEach((a, i) => {
    if (i > 0) assert.equal(a.from, arcs[i - 1].to);
    if (i > 0 && i < arcs.length - 1) assert.notEqual(a.node, arcs[i - 1].node, "merged");
    length.set(a.node, (length.get(a.node) ?? 0) + a.to - a.from);
  });
  for (const [id, share] of ring.shares()) assert.ok(Math.abs(length.get(id)! - share) < 1e-9);
  // A key whose hash falls inside an arc belongs to that arc's node.
  for (let i = 0; i < 200; i++) {
    const key = `k${i}`;
    const pos = ringHash(key) / 2 ** 32;
    const arc = arcs.find((a) => pos > a.from && pos <= a.to)!;
    assert.equal(ring.owner(key), arc.node, key);
  }
});
