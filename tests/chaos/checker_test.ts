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

// Conditional operations (conditional_checker.ts): increments and put-if-absent.

const incr = (value: string | undefined, start: number, end: number, outcome: Op["outcome"] = "ok"): Op => ({
  kind: "incr",
  key: "c",
  ...(value === undefined ? {} : { value }),
  start,
  end,
  outcome,
  ...(outcome === "fail" ? { code: 14 } : {}),
});
const pia = (
  value: string,
  start: number,
  end: number,
  answer?: { applied: boolean; current?: string },
): Op => ({
  kind: "putIfAbsent",
  key: "p",
  value,
  start,
  end,
  outcome: answer ? "ok" : "unknown",
  ...answer,
});
const counterFinal = (n: number) => new Map<string, KeyState>([["c", { found: true, value: String(n) }]]);
const absentFinal = (v: string) => new Map<string, KeyState>([["p", { found: true, value: v }]]);

Deno.test("concurrent increments, an unknown and an unavailable one, pass every conditional check", () => {
  const h = [
    incr("2", 0, 5),
    incr("1", 1, 6),
    incr(undefined, 2, Infinity, "unknown"),
    incr(undefined, 3, 4, "fail"),
  ];
  for (const final of [2, 3]) {
    const k = check(h, counterFinal(final)).conditional;
    assert.deepEqual([k.counterViolations, k.linearizable.violations], [[], []], `final ${final}`);
    assert.equal(k.linearizable.checked, 1);
    assert.deepEqual([k.attempted, k.acknowledged, k.unavailable, k.unknown], [4, 2, 1, 1]);
  }
  assert.equal(
    check(h, counterFinal(2)).unavailableShare,
    0,
    "conditional failures stay out of the plain share",
  );
});

Deno.test("two increments returning one value break the counter invariant", () => {
  const k = check([incr("1", 0, 5), incr("1", 1, 6)], counterFinal(2)).conditional;
  assert.equal(k.counterViolations.length, 1);
  assert.match(k.counterViolations[0].why, /both returned 1/);
});

Deno.test("a lost acknowledged increment, or one applied twice, breaks the counter invariant", () => {
  const lost = check([incr("1", 0, 1), incr("2", 2, 3)], counterFinal(1)).conditional;
  assert.match(lost.counterViolations[0].why, /final 1 < 2 acknowledged/);
  // The UNAVAILABLE one changed nothing: a final of 2 means something was applied twice.
  const twice = check([incr("1", 0, 1), incr(undefined, 2, 3, "fail")], counterFinal(2)).conditional;
  assert.match(twice.counterViolations[0].why, /final 2 > 1 attempted/);
});

Deno.test("two put-if-absent winners, or a winner not read at the end, break the put-if-absent invariant", () => {
  const two = check([pia("a", 0, 5, { applied: true }), pia("b", 1, 6, { applied: true })], absentFinal("a"));
  assert.match(two.conditional.putIfAbsentViolations[0].why, /won twice/);
  const gone = check(
    [pia("a", 0, 5, { applied: true }), pia("b", 1, 6, { applied: false, current: "a" })],
    absentFinal("b"),
  );
  assert.match(gone.conditional.putIfAbsentViolations[0].why, /winner "a" but the key is "b"/);
  const ok = check(
    [pia("a", 0, 5, { applied: true }), pia("b", 1, 6, { applied: false, current: "a" })],
    absentFinal("a"),
  );
  assert.deepEqual(ok.conditional.putIfAbsentViolations, []);
  assert.deepEqual(ok.conditional.linearizable, { checked: 1, skipped: 0, undecided: 0, violations: [] });
});

Deno.test("histories that keep both invariants but no real-time order are not linearizable", () => {
  // The second increment began after the first returned 2, yet returned 1.
  const c = check([incr("2", 0, 1), incr("1", 2, 3)], counterFinal(2)).conditional;
  assert.deepEqual(c.counterViolations, []);
  assert.equal(c.linearizable.violations.length, 1);
  // A loser saw "b" before the winner of "b" was even called.
  const p = check(
    [pia("a", 0, 1, { applied: false, current: "b" }), pia("b", 2, 3, { applied: true })],
    absentFinal("b"),
  )
    .conditional;
  assert.deepEqual(p.putIfAbsentViolations, []);
  assert.equal(p.linearizable.violations.length, 1);
});

Deno.test("a key with a history longer than the cap is skipped by the search, and counted", () => {
  const h = Array.from({ length: 12 }, (_, i) => incr(String(i + 1), i * 2, i * 2 + 1));
  const k = check(h, counterFinal(12)).conditional;
  assert.deepEqual([k.linearizable.checked, k.linearizable.skipped], [0, 1]);
  assert.deepEqual(k.counterViolations, []);
});

// Compare-and-set: a read of the key's version, then a put conditional on it.

/** A CAS writing `value` over `over` (the value read and its version; undefined: absent). */
const cas = (
  value: string,
  over: [string, string] | undefined,
  start: number,
  end: number,
  answer?: { applied: boolean; current?: string },
  outcome: Op["outcome"] = answer ? "ok" : "unknown",
): Op => ({
  kind: "cas",
  key: "x",
  value,
  expected: over?.[0],
  expectedVersion: over?.[1] ?? "",
  start,
  end,
  outcome,
  ...answer,
});
const casFinal = (v: string) => new Map<string, KeyState>([["x", { found: true, value: v }]]);

Deno.test("CAS: racing CAS over one version, one applied, the other answered the winner, pass", () => {
  const h = [
    cas("a", undefined, 0, 1, { applied: true }),
    cas("b", ["a", "10@n1"], 2, 6, { applied: true }),
    cas("c", ["a", "10@n1"], 3, 7, { applied: false, current: "b" }),
    cas("d", ["b", "20@n2"], 8, Infinity),
    cas("e", ["b", "20@n2"], 9, 10, undefined, "fail"),
  ];
  for (const final of ["b", "d"]) {
    const k = check(h, casFinal(final)).conditional;
    assert.deepEqual([k.casViolations, k.linearizable.violations], [[], []], `final ${final}`);
    assert.deepEqual([k.casKeys, k.linearizable.checked, k.attempted, k.acknowledged], [1, 1, 5, 3]);
  }
});

Deno.test("CAS: two CAS applied over one version are a violation, and not linearizable", () => {
  const h = [
    cas("a", undefined, 0, 1, { applied: true }),
    cas("b", ["a", "10@n1"], 2, 6, { applied: true }),
    cas("c", ["a", "10@n1"], 3, 7, { applied: true }),
  ];
  const k = check(h, casFinal("c")).conditional;
  assert.equal(k.casViolations.length, 1);
  assert.match(k.casViolations[0].why, /two CAS over version 10@n1 both applied: "b", "c"/);
  assert.equal(k.linearizable.violations.length, 1);
  // Two creating the key over its absence: the same.
  const created = check(
    [cas("a", undefined, 0, 2, { applied: true }), cas("b", undefined, 1, 3, { applied: true })],
    casFinal("b"),
  ).conditional;
  assert.match(created.casViolations[0].why, /over the key's absence both applied/);
});

Deno.test("CAS: a final value no applied or unknown CAS explains is not linearizable", () => {
  const h = [cas("a", undefined, 0, 1, { applied: true }), cas("b", ["a", "10@n1"], 2, 3, undefined, "fail")];
  assert.deepEqual(check(h, casFinal("a")).conditional.linearizable.violations, []);
  assert.equal(check(h, casFinal("b")).conditional.linearizable.violations.length, 1);
});
