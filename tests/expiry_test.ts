/**
 * Unit tests of the expiry rules: a record past its expiry reads as absent
 * and keeps acting as a tombstone until the purge (record.ts,
 * tombstones.ts); what a client may ask for (expiry.ts); and the expiry's
 * way over the wire (grpc/messages.ts).
 */
import assert from "node:assert/strict";
import { expiryRank, isExpired, isLive, isNewer, isPurgeable, type KvRecord } from "../lib/record.ts";
import { checkExpiry, expiryOf, MAX_TTL_MS } from "../lib/expiry.ts";
import { Code, KvError } from "../lib/errors.ts";
import {
  getResponseToRead,
  pairToRecord,
  putToWrite,
  readToGetResponse,
  recordToPair,
  replicaPushFromMsg,
} from "../lib/grpc/messages.ts";
import { purgeTombstones } from "../lib/tombstones.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { Logger } from "../lib/log.ts";

const NOW = 1_800_000_000_000;
const GRACE_MS = 60_000;
const log = new Logger({ level: "error", format: "text", write: () => {} });

function rec(expiresAtMs?: number, timestamp = NOW * 1000, tombstone = false): KvRecord {
  const r: KvRecord = {
    key: "k",
    value: new TextEncoder().encode("v"),
    timestamp,
    versionNode: "n1",
    tombstone,
  };
  if (expiresAtMs !== undefined) r.expiresAtMs = expiresAtMs;
  return r;
}

Deno.test("a record is expired from its expiry instant on; without one (or 0) never", () => {
  assert.equal(isExpired(rec(NOW), NOW - 1), false);
  assert.equal(isExpired(rec(NOW), NOW), true);
  assert.equal(isExpired(rec(), Number.MAX_SAFE_INTEGER), false);
  assert.equal(isExpired(rec(0), NOW), false);
  assert.equal(isLive(rec(NOW), NOW - 1), true);
  assert.equal(isLive(rec(NOW), NOW), false, "expired: absent");
  assert.equal(isLive(rec(undefined, 1, true), NOW), false, "a tombstone: absent");
});

Deno.test("an expired record still wins against an older write, and loses to a newer one", () => {
  const expired = rec(NOW - 10_000);
  assert.equal(isNewer(rec(undefined, expired.timestamp - 1), expired), false);
  assert.equal(isNewer(rec(undefined, expired.timestamp + 1), expired), true);
  // Equal versions: the earlier expiry wins, so two copies of one write converge.
  assert.equal(isNewer(rec(NOW), rec(NOW + 1)), true);
  assert.equal(isNewer(rec(NOW + 1), rec(NOW)), false);
  assert.equal(isNewer(rec(NOW), rec()), true, "an expiry is earlier than none");
  assert.equal(isNewer(rec(), rec(NOW)), false);
  assert.equal(isNewer(rec(NOW), rec(NOW)), false, "the same record is not newer");
  assert.equal(expiryRank(0), Infinity);
});

Deno.test("an expired record is purgeable only once its expiry is more than the grace period past", () => {
  const r = rec(NOW);
  assert.equal(isPurgeable(r, NOW, GRACE_MS), false, "just expired: kept as a tombstone");
  assert.equal(isPurgeable(r, NOW + GRACE_MS, GRACE_MS), false, "exactly the grace period: kept");
  assert.equal(isPurgeable(r, NOW + GRACE_MS + 1, GRACE_MS), true);
  assert.equal(isPurgeable(rec(), Number.MAX_SAFE_INTEGER / 2, GRACE_MS), false, "no expiry: never");
  // A tombstone's grace counts from its version, as before.
  const t = rec(undefined, NOW * 1000, true);
  assert.equal(isPurgeable(t, NOW + GRACE_MS, GRACE_MS), false);
  assert.equal(isPurgeable(t, NOW + GRACE_MS + 1, GRACE_MS), true);
});

Deno.test("the purge erases an expired record after expiry + grace, never sooner; an older write then gets in", async () => {
  const s = new MemoryStorage();
  const old = rec(undefined, NOW * 1000 - 5);
  await s.apply([{ ...rec(NOW), key: "k" }, { ...rec(NOW + GRACE_MS * 10), key: "later" }, {
    ...rec(),
    key: "p",
  }]);
  const purge = (ms: number) => purgeTombstones(s, ms * 1000, GRACE_MS, log);
  assert.equal(await purge(NOW + GRACE_MS), 0);
  assert.deepEqual(
    await s.apply([old]),
    [false],
    "within the grace: the expired record keeps the older write out",
  );
  assert.equal(await purge(NOW + GRACE_MS + 1), 1);
  assert.deepEqual(await s.get(["k"]), [undefined]);
  assert.ok((await s.get(["later"]))[0], "an expiry not yet past the grace stays");
  assert.ok((await s.get(["p"]))[0], "a record without expiry stays");
});

Deno.test("checkExpiry: ttl 1 ms to 10 years, absolute expiry up to 10 years ahead, past accepted, not both", () => {
  const refused = (ttl: number, at: number, what: RegExp) =>
    assert.throws(
      () => checkExpiry(ttl, at, NOW),
      (e: unknown) => e instanceof KvError && e.code === Code.INVALID_ARGUMENT && what.test(e.message),
    );
  checkExpiry(0, 0, NOW);
  checkExpiry(1, 0, NOW);
  checkExpiry(MAX_TTL_MS, 0, NOW);
  checkExpiry(0, 1, NOW);
  checkExpiry(0, NOW - 1000, NOW);
  checkExpiry(0, NOW + MAX_TTL_MS, NOW);
  refused(-1, 0, /ttl_ms must be 0 \(none\) or a positive/);
  refused(0, -5, /expires_at_ms must be/);
  refused(1.5, 0, /ttl_ms/);
  refused(MAX_TTL_MS + 1, 0, /over the limit/);
  refused(0, NOW + MAX_TTL_MS + 1, /more than 10 years ahead/);
  refused(1000, NOW + 1000, /not both/);
});

Deno.test("the coordinator's expiry: now + ttl, else the absolute one, never on a delete", () => {
  assert.equal(expiryOf({ ttlMs: 2000, tombstone: false }, NOW), NOW + 2000);
  assert.equal(expiryOf({ expiresAtMs: 77, tombstone: false }, NOW), 77);
  assert.equal(expiryOf({ tombstone: false }, NOW), undefined);
  assert.equal(expiryOf({ ttlMs: 2000, tombstone: true }, NOW), undefined);
});

Deno.test("the expiry crosses the wire in KeyValuePair, ReplicateRequest, PutRequest and GetResponse", () => {
  const r = rec(NOW + 5000);
  assert.equal(recordToPair(r).expires_at_ms, NOW + 5000);
  assert.deepEqual(pairToRecord(recordToPair(r)), r);
  assert.equal("expires_at_ms" in recordToPair(rec()), false, "no field for a record without expiry");
  // Decoded messages carry 0 for an absent field: no expiry.
  assert.equal(pairToRecord({ ...recordToPair(rec()), expires_at_ms: 0 }).expiresAtMs, undefined);
  const pushed = replicaPushFromMsg({
    key: "k",
    value: r.value,
    timestamp: r.timestamp,
    primary_node: "n1",
    operation: "PUT",
    version_node: "n1",
    hint_for: "",
    expires_at_ms: NOW + 5000,
  });
  assert.equal(pushed.items[0].record.expiresAtMs, NOW + 5000);
  const put = putToWrite({ key: "k", value: r.value, timestamp: 0, ttl_ms: 30_000, expires_at_ms: 0 });
  assert.equal(put.ttlMs, 30_000);
  assert.equal(put.expiresAtMs, undefined);
  const read = {
    key: "k",
    found: true,
    value: r.value,
    timestamp: 1,
    nodeId: "n1",
    code: 0,
    message: "found",
    expiresAtMs: NOW + 5000,
  };
  const msg = readToGetResponse(read, NOW);
  assert.equal(msg.expires_at_ms, NOW + 5000);
  assert.equal(msg.ttl_ms, 5000, "the time left by the answering node's clock");
  assert.equal(readToGetResponse(read, NOW + 5000).ttl_ms, 1, "never 0 (no expiry) while found");
  assert.deepEqual(getResponseToRead("k", msg), { ...read, ttlMs: 5000, versionNode: "" });
  const plain = readToGetResponse({ ...read, expiresAtMs: undefined }, NOW);
  assert.equal(plain.ttl_ms, undefined);
});
