/** Tests of the input rules checked at the edge, with their codes and messages. */
import assert from "node:assert/strict";
import { loadConfig } from "../lib/config.ts";
import { Code, KvError } from "../lib/errors.ts";
import {
  checkBatch,
  checkDistinct,
  checkKey,
  checkTimestamp,
  checkValue,
  type Limits,
} from "../lib/validate.ts";
import { AnswerBudget, readBounded } from "../lib/answer_budget.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import type { Storage } from "../lib/storage/mod.ts";

const limits: Limits = loadConfig().limits;

/** Asserts that fn throws a KvError with this code and a message matching re. */
function assertKvError(fn: () => void, code: number, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KvError, `not a KvError: ${err}`);
    assert.equal(err.code, code, `code of "${err.message}"`);
    assert.match(err.message, re);
    return true;
  });
}

Deno.test("the default limits are 1024-byte keys, 1 MiB values and 10000-item batches", () => {
  assert.equal(limits.maxKeyBytes, 1024);
  assert.equal(limits.maxValueBytes, 1 << 20);
  assert.equal(limits.maxBatchItems, 10_000);
});

Deno.test("an empty key is refused as INVALID_ARGUMENT", () => {
  assertKvError(() => checkKey("", limits), Code.INVALID_ARGUMENT, /key must not be empty/);
  checkKey("k", limits);
  checkKey(" ", limits);
});

Deno.test("a key at the byte limit passes and one byte over is refused", () => {
  checkKey("a".repeat(1024), limits);
  assertKvError(
    () => checkKey("a".repeat(1025), limits),
    Code.INVALID_ARGUMENT,
    /key is 1025 bytes; the limit is 1024 \(limits\.max_key_bytes\)/,
  );
});

Deno.test("key length is counted in UTF-8 bytes, not characters", () => {
  // 2-byte characters: 512 fit exactly, 513 do not.
  checkKey("é".repeat(512), limits);
  assertKvError(() => checkKey("é".repeat(513), limits), Code.INVALID_ARGUMENT, /key is 1026 bytes/);
  // 3-byte characters: 341 (1023 bytes) fit, 342 (1026 bytes) do not, though only 342 characters.
  checkKey("€".repeat(341), limits);
  assertKvError(() => checkKey("€".repeat(342), limits), Code.INVALID_ARGUMENT, /key is 1026 bytes/);
  checkKey("€".repeat(341) + "a", limits);
  assertKvError(() => checkKey("€".repeat(341) + "ab", limits), Code.INVALID_ARGUMENT, /key is 1025 bytes/);
  // 4-byte characters (surrogate pairs in JavaScript): 256 fit, 257 do not.
  checkKey("😀".repeat(256), limits);
  assertKvError(() => checkKey("😀".repeat(257), limits), Code.INVALID_ARGUMENT, /key is 1028 bytes/);
  // Under a small limit the same rules hold.
  const small = { ...limits, maxKeyBytes: 4 };
  checkKey("a€", small);
  assertKvError(() => checkKey("ab€", small), Code.INVALID_ARGUMENT, /key is 5 bytes; the limit is 4/);
});

Deno.test("a value over the limit is refused as RESOURCE_EXHAUSTED (code 8)", () => {
  checkValue(new Uint8Array(0), limits);
  checkValue(new Uint8Array(limits.maxValueBytes), limits);
  assertKvError(
    () => checkValue(new Uint8Array(limits.maxValueBytes + 1), limits),
    8,
    /value is 1048577 bytes; the limit is 1048576 \(limits\.max_value_bytes\)/,
  );
  assert.equal(Code.RESOURCE_EXHAUSTED, 8);
  // A view into a larger buffer counts only its own bytes.
  const view = new Uint8Array(new ArrayBuffer(limits.maxValueBytes + 100), 100);
  checkValue(view, limits);
});

const NOW_MS = 1_800_000_000_000;

Deno.test("a negative, fractional, unsafe or non-number timestamp is refused", () => {
  checkTimestamp(0, limits, NOW_MS);
  checkTimestamp(1, limits, NOW_MS);
  checkTimestamp(1_700_000_000_000_000, limits, NOW_MS);
  for (const bad of [-1, -1_700_000_000_000_000, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1.5, NaN, Infinity]) {
    assertKvError(
      () => checkTimestamp(bad, limits, NOW_MS),
      Code.INVALID_ARGUMENT,
      /timestamp must be 0 or a positive number/,
    );
  }
  assertKvError(() => checkTimestamp(-5, limits, NOW_MS), Code.INVALID_ARGUMENT, /got -5$/);
});

Deno.test("a timestamp more than max_clock_skew_ms ahead is refused in any unit, naming the limit", () => {
  const skew = limits.maxClockSkewMs;
  assert.equal(skew, 60_000);
  const tenYearsMs = NOW_MS + 10 * 365 * 86_400_000;
  for (const ts of [Math.floor(tenYearsMs / 1000), tenYearsMs, tenYearsMs * 1000, Number.MAX_SAFE_INTEGER]) {
    assertKvError(
      () => checkTimestamp(ts, limits, NOW_MS),
      Code.INVALID_ARGUMENT,
      /ahead of this node's clock; the limit is 60000 ms \(limits.max_clock_skew_ms\)/,
    );
  }
  // Exactly at the limit passes in every unit; one unit beyond it does not.
  checkTimestamp((NOW_MS + skew) / 1000, limits, NOW_MS);
  checkTimestamp(NOW_MS + skew, limits, NOW_MS);
  checkTimestamp((NOW_MS + skew) * 1000, limits, NOW_MS);
  assertKvError(() => checkTimestamp(NOW_MS + skew + 1, limits, NOW_MS), Code.INVALID_ARGUMENT, /60000 ms/);
  assertKvError(
    () => checkTimestamp((NOW_MS + skew) / 1000 + 1, limits, NOW_MS),
    Code.INVALID_ARGUMENT,
    /60000 ms/,
  );
});

Deno.test("a batch must hold at least one item and at most max_batch_items", () => {
  checkBatch(1, limits);
  checkBatch(limits.maxBatchItems, limits);
  assertKvError(() => checkBatch(0, limits), Code.INVALID_ARGUMENT, /batch must hold at least one item/);
  assertKvError(
    () => checkBatch(limits.maxBatchItems + 1, limits),
    Code.RESOURCE_EXHAUSTED,
    /batch holds 10001 items; the limit is 10000 \(limits\.max_batch_items\)/,
  );
});

Deno.test("a batch naming a key twice is refused as INVALID_ARGUMENT naming the key and both items", () => {
  checkDistinct(["a", "b", "c"]);
  assert.throws(() => checkDistinct(["a", "b", "a"]), (e: unknown) => {
    assert.ok(e instanceof KvError);
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.match(e.message, /key "a" appears twice in the batch \(items 0 and 2\)/);
    return true;
  });
});

Deno.test("an answer budget refuses as RESOURCE_EXHAUSTED naming the size once the limit is passed", () => {
  const budget = new AnswerBudget(1000, "MultiGet");
  budget.addItem("k", 500);
  assert.throws(
    () => budget.checkAhead(["x"], [500]),
    /MultiGet answer would be at least 1066 bytes; the limit is 1000/,
  );
  assert.equal(budget.used, 533, "checkAhead counts nothing");
  assert.throws(
    () => budget.addItem("k2", 500),
    (e: unknown) => e instanceof KvError && e.code === Code.RESOURCE_EXHAUSTED,
  );
});

Deno.test("readBounded refuses before copying a value when the engine knows sizes, else within one slice", async () => {
  const storage = new MemoryStorage();
  const keys = Array.from({ length: 10 }, (_, i) => `big${i}`);
  await storage.apply(keys.map((key, i) => ({
    key,
    value: new Uint8Array(1 << 20),
    timestamp: 1 + i,
    versionNode: "n1",
    tombstone: false,
  })));
  let gets = 0;
  const spied = {
    get: (k: readonly string[]) => (gets++, storage.get(k)),
    valueSizes: (k: readonly string[]) => storage.valueSizes(k),
  } as unknown as Storage;
  await assert.rejects(readBounded(spied, keys, new AnswerBudget(4 << 20, "MultiGet")), /at least \d+ bytes/);
  assert.equal(gets, 0, "no value was read");
  assert.equal((await readBounded(spied, keys.slice(0, 3), new AnswerBudget(4 << 20, "MultiGet"))).length, 3);
  // Without valueSizes: the keys are read in slices and the budget stops between them.
  const blind = { get: spied.get } as unknown as Storage;
  gets = 0;
  await assert.rejects(readBounded(blind, keys, new AnswerBudget(4 << 20, "MultiGet")), /at least/);
  assert.equal(gets, 1, "refused after the first slice");
});

Deno.test("a key with a lone surrogate is INVALID_ARGUMENT, and no error message keeps one", () => {
  const limits = loadConfig().limits;
  assert.throws(
    () => checkKey("fz-\uD800", limits),
    (e: unknown) =>
      e instanceof KvError && e.code === Code.INVALID_ARGUMENT && /not valid UTF-8/.test(e.message),
  );
  // grpc-js URI-encodes status details and throws on a lone surrogate (found by tests/fuzz_test.ts,
  // seed 261123840: the node died with "URIError: URI malformed").
  const err = new KvError(Code.INVALID_ARGUMENT, `key "\uDC00x" named twice`);
  assert.ok(err.message.isWellFormed());
  assert.doesNotThrow(() => encodeURI(err.message));
});
