/**
 * Tests of what is particular to the compact memory engine (the storage
 * interface suite in storage_test.ts runs on it too): a seeded random run of
 * writes, tombstones and removals against a plain Map model, with small slabs
 * so slots and slab space are reused and compacted many times, and returned
 * values that never change under their holder.
 */
import assert from "node:assert/strict";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { isNewer, type KvRecord } from "../lib/record.ts";
import { seeded } from "./chaos/workload.ts";

function randomRecord(rand: () => number, keys: number, clock: number): KvRecord {
  const tombstone = rand() < 0.2;
  const value = new Uint8Array(tombstone ? 0 : Math.floor(rand() * 300));
  for (let i = 0; i < value.length; i++) value[i] = Math.floor(rand() * 256);
  return {
    key: `k${Math.floor(rand() * keys)}`,
    value,
    // Some writes arrive late (older than what is held), some tie on the timestamp.
    timestamp: clock - Math.floor(rand() * 20),
    versionNode: `node${Math.floor(rand() * 4)}`,
    tombstone,
  };
}

async function assertSame(s: MemoryStorage, model: Map<string, KvRecord>, keys: number): Promise<void> {
  const names = Array.from({ length: keys }, (_, i) => `k${i}`);
  const got = await s.get(names);
  for (let i = 0; i < keys; i++) {
    const want = model.get(names[i]);
    if (!want) {
      assert.equal(got[i], undefined, names[i]);
      continue;
    }
    const r = got[i]!;
    assert.deepEqual(
      { ...r, value: new Uint8Array(r.value) },
      { ...want, value: want.tombstone ? new Uint8Array(0) : new Uint8Array(want.value) },
      names[i],
    );
  }
  let live = 0;
  for (const r of model.values()) live += Number(!r.tombstone);
  assert.equal(await s.countLive(), live);
  const scanned = new Map<string, KvRecord>();
  let cursor = "";
  do {
    const page = await s.scan(cursor, 37);
    for (const r of page.records) scanned.set(r.key, r);
    cursor = page.nextCursor;
  } while (cursor !== "");
  assert.deepEqual([...scanned.keys()].sort(), [...model.keys()].sort());
}

Deno.test("memory: a seeded run of writes, tombstones and removals matches a plain Map", async () => {
  const rand = seeded(4242);
  const keys = 400;
  const s = new MemoryStorage({ slabSize: 8192 });
  const model = new Map<string, KvRecord>();
  for (let op = 1; op <= 40_000; op++) {
    const clock = op;
    if (rand() < 0.1) {
      const key = `k${Math.floor(rand() * keys)}`;
      const held = model.get(key);
      // Half the removals name the held version, half a stale one.
      const version = held && rand() < 0.5
        ? { timestamp: held.timestamp, versionNode: held.versionNode }
        : { timestamp: clock, versionNode: "node9" };
      const removed = await s.remove(key, version);
      const expect = held !== undefined && held.timestamp === version.timestamp &&
        held.versionNode === version.versionNode;
      assert.equal(removed, expect, `remove ${key}`);
      if (expect) model.delete(key);
      continue;
    }
    const r = randomRecord(rand, keys, clock);
    const [applied] = await s.apply([r]);
    assert.equal(applied, isNewer(r, model.get(r.key)), `apply ${r.key}@${r.timestamp}/${r.versionNode}`);
    if (applied) model.set(r.key, { ...r, value: new Uint8Array(r.value) });
    if (op % 4000 === 0) await assertSame(s, model, keys);
  }
  await assertSame(s, model, keys);
});

Deno.test("memory: a returned value does not change after later writes reuse its space", async () => {
  const s = new MemoryStorage({ slabSize: 1024 });
  const first = new Uint8Array(100).fill(1);
  await s.apply([{ key: "a", value: first, timestamp: 1, versionNode: "n", tombstone: false }]);
  const [held] = await s.get(["a"]);
  const page = await s.scan("", 10);
  first.fill(0);
  for (let t = 2; t < 200; t++) {
    const value = new Uint8Array(100).fill(t & 0xff);
    await s.apply([{
      key: t % 2 ? "a" : `b${t % 7}`,
      value,
      timestamp: t,
      versionNode: "n",
      tombstone: false,
    }]);
    if (t % 10 === 0) {
      await s.apply([{
        key: "a",
        value: new Uint8Array(0),
        timestamp: t,
        versionNode: "o",
        tombstone: true,
      }]);
    }
  }
  assert.deepEqual(new Uint8Array(held!.value), new Uint8Array(100).fill(1));
  assert.deepEqual(new Uint8Array(page.records[0].value), new Uint8Array(100).fill(1));
});

Deno.test("memory: keys added during a scan are returned by it, even when removals freed slots behind it", async () => {
  const s = new MemoryStorage();
  const value = new Uint8Array(10);
  const put = (key: string, timestamp: number) =>
    s.apply([{ key, value, timestamp, versionNode: "n", tombstone: false }]);
  for (let i = 0; i < 100; i++) await put(`old${i}`, 1);
  const first = await s.scan("", 50);
  // Frees slots the scan has passed, then adds keys that could have taken them.
  for (let i = 0; i < 20; i++) {
    assert.equal(await s.remove(`old${i}`, { timestamp: 1, versionNode: "n" }), true);
  }
  for (let i = 0; i < 20; i++) await put(`new${i}`, 2);
  const seen = new Set(first.records.map((r) => r.key));
  for (let cursor = first.nextCursor; cursor !== "";) {
    const page = await s.scan(cursor, 50);
    for (const r of page.records) seen.add(r.key);
    cursor = page.nextCursor;
  }
  for (let i = 0; i < 20; i++) assert.ok(seen.has(`new${i}`), `new${i} added during the scan`);
  // With no scan open, freed slots may be taken again; counts stay right.
  for (let i = 20; i < 40; i++) await s.remove(`old${i}`, { timestamp: 1, versionNode: "n" });
  for (let i = 20; i < 40; i++) await put(`new${i}`, 2);
  assert.equal(await s.countLive(), 100);
});

Deno.test("memory: a closed scan no longer keeps freed slots from being reused", async () => {
  const s = new MemoryStorage();
  const value = new Uint8Array(10);
  const put = (key: string) => s.apply([{ key, value, timestamp: 1, versionNode: "n", tombstone: false }]);
  /** The first key of a fresh full scan: the key in the lowest slot. */
  const lowest = async () => {
    const page = await s.scan("", 1);
    if (page.nextCursor !== "") s.closeScan(page.nextCursor);
    return page.records[0].key;
  };
  for (const k of ["a", "b", "c"]) await put(k);
  assert.equal(await s.remove("a", { timestamp: 1, versionNode: "n" }), true);
  const abandoned = await s.scan("", 1);
  await put("while-open");
  assert.equal(await lowest(), "b", "while a scan is open a new key goes after every slot");
  s.closeScan(abandoned.nextCursor);
  await put("after-close");
  assert.equal(await lowest(), "after-close", "once it is closed, the freed slot is taken again");
  await assert.rejects(() => s.scan(abandoned.nextCursor, 1), /unknown or expired/);
});
