/**
 * Tombstone purge (lib/tombstones.ts) on the memory engine with an injected
 * clock: a tombstone goes only once it is older than the grace period, live
 * records and younger tombstones stay, and what a purge means for a copy
 * that comes back later with the old value (the Dynamo caveat).
 */
import assert from "node:assert/strict";
import { purgeTombstones } from "../lib/tombstones.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { Logger } from "../lib/log.ts";
import type { KvRecord } from "../lib/record.ts";

const log = new Logger({ level: "error", format: "text", write: () => {} });
const GRACE_MS = 60_000;
/** A realistic HLC time, in microseconds. */
const T0 = 1_700_000_000_000_000;

function put(key: string, timestamp: number): KvRecord {
  return { key, value: new TextEncoder().encode(key), timestamp, versionNode: "node1", tombstone: false };
}

function del(key: string, timestamp: number): KvRecord {
  return { key, value: new Uint8Array(0), timestamp, versionNode: "node1", tombstone: true };
}

Deno.test("a tombstone is purged only once it is older than the grace period", async () => {
  const s = new MemoryStorage();
  await s.apply([put("live", T0), del("gone", T0), del("later", T0 + 30_000_000)]);
  const at = (ms: number) => purgeTombstones(s, T0 + ms * 1000, GRACE_MS, log);

  assert.equal(await at(0), 0, "just deleted");
  assert.equal(await at(GRACE_MS), 0, "exactly the grace period old: kept");
  assert.equal((await s.get(["gone"]))[0]?.tombstone, true);

  assert.equal(await at(GRACE_MS + 1), 1, "one ms past the grace period: purged");
  const [live, gone, later] = await s.get(["live", "gone", "later"]);
  assert.equal(gone, undefined, "the old tombstone is erased");
  assert.equal(later?.tombstone, true, "a younger tombstone stays");
  assert.equal(live?.tombstone, false, "live records are never purged, however old");

  assert.equal(await at(GRACE_MS + 30_001), 1);
  assert.deepEqual(await s.get(["later"]), [undefined]);
  assert.equal(await s.countLive(), 1);
});

Deno.test("within the grace period the tombstone blocks an old copy coming back; after a purge it does not", async () => {
  // What a node that was away sends back when it returns: the value it held
  // before the delete. Within the grace period the tombstone wins; once the
  // tombstone is purged, nothing remembers the delete and the old value is
  // applied: a node away longer than tombstone_grace_ms with its old data
  // resurrects the key (see README, "Tombstones").
  const s = new MemoryStorage();
  await s.apply([put("k", T0), del("k", T0 + 1000)]);
  await purgeTombstones(s, T0 + 1000 + GRACE_MS * 1000, GRACE_MS, log);
  assert.deepEqual(await s.apply([put("k", T0)]), [false], "within the grace period: refused");
  assert.equal((await s.get(["k"]))[0]?.tombstone, true);

  assert.equal(await purgeTombstones(s, T0 + 1001 + GRACE_MS * 1000, GRACE_MS, log), 1);
  assert.deepEqual(await s.apply([put("k", T0)]), [true], "after the purge: the old value is back");
  assert.equal((await s.get(["k"]))[0]?.tombstone, false);
});
