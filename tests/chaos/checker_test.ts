/**
 * The chaos checker on hand-made histories: clean ones pass, and each kind of
 * violation (lost write, resurrected key, stale read, phantom) is flagged, while
 * unknown outcomes and concurrent writes are given the benefit of the doubt.
 */
import assert from "node:assert/strict";
import { check, type KeyState, type Op } from "./checker.ts";

const put = (value: string, start: number, end: number, outcome: Op["outcome"] = "ok"): Op => ({
  kind: "put",
  key: "k",
  value,
  start,
  end,
  outcome,
});
const del = (start: number, end: number, outcome: Op["outcome"] = "ok"): Op => ({
  kind: "delete",
  key: "k",
  start,
  end,
  outcome,
});
const get = (value: string | undefined, start: number, end: number, outcome: Op["outcome"] = "ok"): Op => ({
  kind: "get",
  key: "k",
  found: value !== undefined,
  value,
  start,
  end,
  outcome,
});
const finalOf = (value: string | undefined) =>
  new Map<string, KeyState>([["k", value === undefined ? { found: false } : { found: true, value }]]);

Deno.test("a sequential history read back correctly has no anomaly", () => {
  const r = check([put("a", 0, 1), get("a", 2, 3), put("b", 4, 5), get("b", 6, 7)], finalOf("b"));
  assert.equal(r.writesAttempted, 2);
  assert.equal(r.writesAcknowledged, 2);
  assert.equal(r.reads, 2);
  assert.deepEqual([r.lostWrites, r.staleReads, r.resurrections, r.phantoms], [[], [], [], []]);
  assert.equal(r.unavailableShare, 0);
});

Deno.test("an acknowledged write overwritten by an earlier one at the end is lost", () => {
  const r = check([put("a", 0, 1), put("b", 2, 3)], finalOf("a"));
  assert.equal(r.lostWrites.length, 1);
  assert.equal(r.lostWrites[0].op.value, "b");
});

Deno.test("an acknowledged write missing at the end is lost", () => {
  const r = check([put("a", 0, 1)], finalOf(undefined));
  assert.equal(r.lostWrites.length, 1);
});

Deno.test("a write superseded by a concurrent or later attempted write is not lost", () => {
  // b overlaps a, so b may be ordered after a.
  assert.equal(check([put("a", 0, 5), put("b", 1, 3)], finalOf("a")).lostWrites.length, 0);
  // c was attempted after b and timed out: it may have landed.
  assert.equal(check([put("b", 0, 1), put("c", 2, 9, "unknown")], finalOf("c")).lostWrites.length, 0);
  // An unknown write that began before b and timed out may still land after it.
  assert.equal(check([put("u", 0, 1, "unknown"), put("b", 2, 3)], finalOf("u")).lostWrites.length, 0);
});

Deno.test("a failed write that shows up is a phantom, and an unknown one that does not is fine", () => {
  assert.equal(check([put("a", 0, 1), put("f", 2, 3, "fail")], finalOf("f")).phantoms.length, 1);
  assert.equal(check([put("a", 0, 1), put("u", 2, 3, "unknown")], finalOf("a")).lostWrites.length, 0);
  assert.equal(check([put("u", 0, 1, "unknown")], finalOf(undefined)).lostWrites.length, 0);
});

Deno.test("a key deleted with an acknowledgement that comes back is flagged", () => {
  const r = check([put("a", 0, 1), del(2, 3)], finalOf("a"));
  assert.equal(r.resurrections.length, 1);
  assert.equal(r.lostWrites.length, 0);
  assert.equal(check([put("a", 0, 1), del(2, 3)], finalOf(undefined)).resurrections.length, 0);
  // A put attempted after the delete explains the key being there.
  assert.equal(check([del(0, 1), put("b", 2, 3, "unknown")], finalOf("b")).resurrections.length, 0);
});

Deno.test("a read older than a write acknowledged before it began is stale", () => {
  const r = check([put("a", 0, 1), put("b", 2, 3), get("a", 4, 5)], finalOf("b"));
  assert.equal(r.staleReads.length, 1);
  assert.match(r.staleReads[0].why, /put "b"/);
  // A read that misses an acknowledged put is stale too.
  assert.equal(check([put("a", 0, 1), get(undefined, 2, 3)], finalOf("a")).staleReads.length, 1);
  // A read that sees a deleted key's old value is stale.
  assert.equal(check([put("a", 0, 1), del(2, 3), get("a", 4, 5)], finalOf(undefined)).staleReads.length, 1);
});

Deno.test("reads concurrent with a write may see either value", () => {
  assert.equal(check([put("a", 0, 1), put("b", 2, 6), get("a", 3, 4)], finalOf("b")).staleReads.length, 0);
  assert.equal(check([put("a", 0, 1), put("b", 2, 6), get("b", 3, 4)], finalOf("b")).staleReads.length, 0);
  // b was acknowledged after the read began: not stale.
  assert.equal(check([put("a", 0, 1), put("b", 2, 4), get("a", 3, 5)], finalOf("b")).staleReads.length, 0);
  // A failed read says nothing.
  assert.equal(
    check([put("a", 0, 1), put("b", 2, 3), get("a", 4, 5, "fail")], finalOf("b")).staleReads.length,
    0,
  );
});

Deno.test("a read of a value written only after it returned, or never written, is a phantom", () => {
  assert.equal(check([get("a", 0, 1), put("a", 2, 3)], finalOf("a")).phantoms.length, 1);
  assert.equal(check([get("zz", 0, 1)], finalOf(undefined)).phantoms.length, 1);
  assert.equal(check([], finalOf("zz")).phantoms.length, 1);
});

Deno.test("the unavailable share counts every operation that did not succeed", () => {
  const r = check(
    [put("a", 0, 1), put("b", 2, 3, "unknown"), get("a", 4, 5, "fail"), del(6, 7, "fail")],
    finalOf("a"),
  );
  assert.equal(r.unavailableShare, 3 / 4);
  assert.equal(r.writesAttempted, 3);
  assert.equal(r.writesAcknowledged, 1);
  assert.equal(r.readsOk, 0);
});

Deno.test("keys are checked independently", () => {
  const other: Op = { ...put("x", 0, 1), key: "j" };
  const final = new Map<string, KeyState>([["k", { found: true, value: "a" }], ["j", { found: false }]]);
  const r = check([put("a", 0, 1), other], final);
  assert.equal(r.lostWrites.length, 1);
  assert.equal(r.lostWrites[0].key, "j");
});

/** A put of write-once key `key`. */
const once = (key: string, start: number, end: number, outcome: Op["outcome"] = "ok"): Op => ({
  kind: "put",
  key,
  value: `v-${key}`,
  once: true,
  start,
  end,
  outcome,
});
const present = (...keys: string[]) =>
  new Map<string, KeyState>(keys.map((k) => [k, { found: true, value: `v-${k}` }]));

Deno.test("an acknowledged write-once key missing at the end is lost, counted apart from rewritten keys", () => {
  const history = [once("o1", 0, 1), once("o2", 0, 1), once("o3", 2, 3), put("a", 0, 1)];
  const r = check(
    history,
    new Map([...present("o1", "o3"), ["o2", { found: false }], ["k", { found: true, value: "a" }]]),
  );
  assert.deepEqual(r.writeOnce.lost.map((a) => a.key), ["o2"]);
  assert.equal(r.writeOnce.acknowledged, 3);
  assert.equal(r.writeOnce.attempted, 3);
  assert.equal(r.lostWrites.length, 0);
  // A key the final state does not mention is absent: lost too.
  assert.deepEqual(check(history, present("o1", "o2")).writeOnce.lost.map((a) => a.key), ["o3"]);
});

Deno.test("a write-once key that failed or timed out may be missing, and counts as attempted only", () => {
  const r = check([once("o1", 0, 1, "unknown"), once("o2", 0, 1, "fail")], present());
  assert.deepEqual([r.writeOnce.lost, r.phantoms], [[], []]);
  assert.deepEqual([r.writeOnce.attempted, r.writeOnce.acknowledged], [2, 0]);
  // A failed write-once put that shows up is a phantom.
  assert.equal(check([once("o2", 0, 1, "fail")], present("o2")).phantoms.length, 1);
});
