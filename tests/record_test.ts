/** Tests of last-write-wins version ordering. */
import assert from "node:assert/strict";
import { compareVersions, isNewer, type KvRecord, newestOf, recordSize } from "../lib/record.ts";

function rec(key: string, timestamp: number, versionNode: string, tombstone = false): KvRecord {
  return {
    key,
    value: tombstone ? new Uint8Array(0) : new TextEncoder().encode(`${versionNode}@${timestamp}`),
    timestamp,
    versionNode,
    tombstone,
  };
}

Deno.test("compareVersions orders by timestamp first", () => {
  assert.ok(compareVersions({ timestamp: 1, versionNode: "z" }, { timestamp: 2, versionNode: "a" }) < 0);
  assert.ok(compareVersions({ timestamp: 2, versionNode: "a" }, { timestamp: 1, versionNode: "z" }) > 0);
  const big = 2 ** 52;
  assert.ok(
    compareVersions({ timestamp: big, versionNode: "a" }, { timestamp: big + 1, versionNode: "a" }) < 0,
  );
});

Deno.test("compareVersions breaks equal timestamps by versionNode and is 0 only for equal versions", () => {
  assert.ok(
    compareVersions({ timestamp: 5, versionNode: "node1" }, { timestamp: 5, versionNode: "node2" }) < 0,
  );
  assert.ok(
    compareVersions({ timestamp: 5, versionNode: "node2" }, { timestamp: 5, versionNode: "node1" }) > 0,
  );
  assert.equal(
    compareVersions({ timestamp: 5, versionNode: "node1" }, { timestamp: 5, versionNode: "node1" }),
    0,
  );
  // Plain code-unit order, the same in every process: "node10" sorts before "node2".
  assert.ok(
    compareVersions({ timestamp: 5, versionNode: "node10" }, { timestamp: 5, versionNode: "node2" }) < 0,
  );
});

Deno.test("compareVersions is antisymmetric and sorts a shuffled list consistently", () => {
  const versions = [];
  for (const ts of [3, 1, 2]) {
    for (const n of ["b", "a", "c"]) versions.push({ timestamp: ts, versionNode: n });
  }
  for (const a of versions) {
    for (const b of versions) {
      assert.equal(Math.sign(compareVersions(a, b)) + Math.sign(compareVersions(b, a)), 0);
    }
  }
  const sorted = [...versions].sort(compareVersions).map((v) => `${v.timestamp}${v.versionNode}`);
  assert.deepEqual(sorted, ["1a", "1b", "1c", "2a", "2b", "2c", "3a", "3b", "3c"]);
});

Deno.test("isNewer is true against an absent version and only for strictly newer versions", () => {
  assert.equal(isNewer({ timestamp: 1, versionNode: "a" }, undefined), true);
  assert.equal(isNewer({ timestamp: 2, versionNode: "a" }, { timestamp: 1, versionNode: "b" }), true);
  assert.equal(isNewer({ timestamp: 1, versionNode: "b" }, { timestamp: 1, versionNode: "a" }), true);
  assert.equal(isNewer({ timestamp: 1, versionNode: "a" }, { timestamp: 1, versionNode: "a" }), false);
  assert.equal(isNewer({ timestamp: 1, versionNode: "a" }, { timestamp: 1, versionNode: "b" }), false);
  assert.equal(isNewer({ timestamp: 0, versionNode: "z" }, { timestamp: 1, versionNode: "a" }), false);
});

Deno.test("newestOf picks the newest record, tombstones included, and skips absent copies", () => {
  assert.equal(newestOf([]), undefined);
  assert.equal(newestOf([undefined, undefined]), undefined);
  const a = rec("k", 10, "node1");
  const b = rec("k", 12, "node1", true);
  const c = rec("k", 12, "node2");
  assert.equal(newestOf([a, undefined]), a);
  assert.equal(newestOf([undefined, a, b]), b);
  assert.equal(newestOf([c, b, a]), c);
  assert.equal(newestOf([a, b, c]), c);
  // Equal versions: the first one is kept.
  const c2 = rec("k", 12, "node2");
  assert.equal(newestOf([c, c2]), c);
});

Deno.test("recordSize grows with the key and the value", () => {
  const small = rec("k", 1, "n");
  const big = { ...small, key: "k".repeat(100), value: new Uint8Array(1000) };
  assert.equal(recordSize(big) - recordSize(small), 99 + 1000 - small.value.length);
});
