/** The rules of conditional operations and counters (lib/lwt/ops.ts), as Redis states them. */
import assert from "node:assert/strict";
import {
  addFloat,
  addInt,
  type Condition,
  decide,
  fixExpiry,
  FLOAT_ERROR,
  formatVersion,
  holds,
  INT_ERROR,
  type LwtOp,
  OVERFLOW_ERROR,
  parseDelta,
  parseInt64,
  parseVersion,
} from "../lib/lwt/ops.ts";
import { Code, KvError } from "../lib/errors.ts";
import type { KvRecord } from "../lib/record.ts";

const rec = (value: string, tombstone = false): KvRecord => ({
  key: "k",
  value: new TextEncoder().encode(value),
  timestamp: 1_700_000_000_000_123,
  versionNode: "node2",
  tombstone,
});
const fails = (fn: () => unknown, code: number, message: string) =>
  assert.throws(fn, (e) => e instanceof KvError && e.code === code && e.message === message);

Deno.test("integers are read as Redis's string2ll reads them", () => {
  for (const ok of ["0", "-1", "42", "9223372036854775807", "-9223372036854775808"]) {
    assert.equal(parseInt64(ok)?.toString(), ok);
  }
  for (const bad of ["", "+1", "01", "-0", " 1", "1.0", "1e3", "9223372036854775808", "abc"]) {
    assert.equal(parseInt64(bad), undefined, bad);
  }
});

Deno.test("INCRBY is exact above 2^53 and fails as Redis does", () => {
  assert.equal(addInt(undefined, 5n), "5");
  assert.equal(addInt("9007199254740993", 2n), "9007199254740995");
  fails(() => addInt("9223372036854775807", 1n), Code.FAILED_PRECONDITION, OVERFLOW_ERROR);
  fails(() => addInt("-9223372036854775808", -1n), Code.FAILED_PRECONDITION, OVERFLOW_ERROR);
  fails(() => addInt("hello", 1n), Code.FAILED_PRECONDITION, INT_ERROR);
  fails(() => parseDelta("1.5"), Code.INVALID_ARGUMENT, INT_ERROR);
  assert.equal(parseDelta(""), 1n);
});

Deno.test("INCRBYFLOAT prints plain decimals", () => {
  assert.equal(addFloat("10.5", 0.1), "10.6");
  assert.equal(addFloat(undefined, 3), "3");
  assert.equal(addFloat("5.0e3", 200), "5200");
  assert.equal(addFloat("1", 1e21), "1000000000000000000000");
  fails(() => addFloat("abc", 1), Code.FAILED_PRECONDITION, FLOAT_ERROR);
});

Deno.test("conditions: absent, exists, version; a tombstone is absent", () => {
  const live = rec("v");
  assert.ok(holds({ kind: "absent" }, undefined));
  assert.ok(holds({ kind: "absent" }, rec("", true)));
  assert.ok(!holds({ kind: "absent" }, live));
  assert.ok(holds({ kind: "exists" }, live));
  assert.ok(holds({ kind: "version", version: parseVersion(formatVersion(live)) }, live));
  assert.ok(!holds({ kind: "version", version: { timestamp: live.timestamp, versionNode: "node1" } }, live));
  const d = decide({
    kind: "put",
    key: "k",
    value: new Uint8Array(),
    tombstone: true,
    condition: { kind: "exists" },
  }, live);
  assert.ok(d.apply && d.tombstone);
  assert.throws(() => parseVersion("12"), KvError);
  assert.throws(() => parseVersion("x@node1"), KvError);
});

const NOW = 1_700_000_000_000;
const expiring = (value: string, expiresAtMs: number): KvRecord => ({ ...rec(value), expiresAtMs });
const putIf = (condition: Condition, expiresAtMs?: number): LwtOp => ({
  kind: "put",
  key: "k",
  value: new TextEncoder().encode("new"),
  tombstone: false,
  condition,
  ...(expiresAtMs ? { expiry: { expiresAtMs } } : {}),
});

Deno.test("expiry: an expired key does not exist for conditions (as in Redis)", () => {
  const expired = expiring("old", NOW - 1);
  const version = { timestamp: expired.timestamp, versionNode: expired.versionNode };
  assert.ok(holds({ kind: "absent" }, expired, NOW));
  assert.ok(!holds({ kind: "exists" }, expired, NOW));
  assert.ok(!holds({ kind: "version", version }, expired, NOW), "ifVersion of an expired version held");
  // Not yet expired: the same record is there.
  const alive = expiring("old", NOW + 1);
  assert.ok(!holds({ kind: "absent" }, alive, NOW));
  assert.ok(holds({ kind: "version", version }, alive, NOW));
  // Not applied against an expired record: the answer names no current value.
  const d = decide(putIf({ kind: "exists" }), expired, NOW);
  assert.deepEqual(d, { apply: false, current: undefined });
  const kept = decide(putIf({ kind: "absent" }), alive, NOW);
  assert.ok(!kept.apply && kept.current === alive);
});

Deno.test("expiry: a conditional put stores the absolute expiry fixed once from a ttl", () => {
  const asked: LwtOp = { ...putIf({ kind: "absent" }), expiry: { ttlMs: 2000 } } as LwtOp;
  const fixed = fixExpiry(asked, NOW);
  assert.deepEqual((fixed as { expiry?: unknown }).expiry, { expiresAtMs: NOW + 2000 });
  assert.equal(fixExpiry(fixed, NOW + 5000), fixed, "a fixed expiry moved when fixed again");
  const d = decide(fixed, expiring("old", NOW - 1), NOW + 10);
  assert.ok(d.apply && d.expiresAtMs === NOW + 2000);
  const plain = decide(putIf({ kind: "absent" }), undefined, NOW);
  assert.ok(plain.apply && plain.expiresAtMs === undefined, "a put without expiry got one");
  const del = decide({ ...putIf({ kind: "none" }, NOW + 99), tombstone: true } as LwtOp, rec("v"), NOW);
  assert.ok(del.apply && del.tombstone && del.expiresAtMs === undefined, "a tombstone got an expiry");
});

Deno.test("expiry: increment keeps the key's expiry; an expired counter starts from 0 without one", () => {
  const incr: LwtOp = { kind: "incr", key: "k", delta: 2n };
  const live = decide(incr, expiring("5", NOW + 1000), NOW);
  assert.ok(live.apply && live.expiresAtMs === NOW + 1000, "INCR dropped the TTL");
  assert.equal(new TextDecoder().decode(live.value), "7");
  const gone = decide(incr, expiring("5", NOW - 1), NOW);
  assert.ok(gone.apply && gone.expiresAtMs === undefined, "an expired counter kept its old expiry");
  assert.equal(new TextDecoder().decode(gone.value), "2");
  const float = decide({ kind: "incrFloat", key: "k", delta: 0.5 }, expiring("1", NOW + 9), NOW);
  assert.ok(float.apply && float.expiresAtMs === NOW + 9);
});
