/**
 * Unit tests of the memory engine's key index: a seeded run of adds and
 * deletes against a plain Map (deletes shift probe runs back, so every key
 * must stay findable), every key found while the table grows (old and new
 * tables both in use) and after, and keys of every kind come back exactly.
 */
import assert from "node:assert/strict";
import { KeyIndex } from "../lib/storage/key_index.ts";
import { seeded } from "./chaos/workload.ts";

Deno.test("key index: a seeded run of adds and deletes finds exactly the keys a Map holds", () => {
  const rand = seeded(77);
  const index = new KeyIndex(2048);
  const model = new Map<string, number>();
  const freeSlots: number[] = [];
  let nextSlot = 0;
  for (let op = 0; op < 50_000; op++) {
    const key = `k${Math.floor(rand() * 3000)}`;
    const slot = index.find(key);
    assert.equal(slot, model.get(key) ?? -1, key);
    if (slot >= 0 && rand() < 0.5) {
      index.delete(slot);
      model.delete(key);
      freeSlots.push(slot);
    } else if (slot < 0) {
      const s = freeSlots.pop() ?? nextSlot++;
      index.add(key, s);
      model.set(key, s);
    }
  }
  assert.equal(index.size, model.size);
  for (const [key, slot] of model) {
    assert.equal(index.find(key), slot, key);
    assert.equal(index.keyOf(slot), key);
  }
});

Deno.test("key index: empty, non-ASCII, lone-surrogate and long keys come back exactly", () => {
  const index = new KeyIndex(1024);
  const keys = ["", "a", "nœud", "日本語", "\ud800", "x\udfffy", "\u00ff", "\u00ffa", "k".repeat(5000)];
  keys.forEach((k, slot) => index.add(k, slot));
  keys.forEach((k, slot) => {
    assert.equal(index.find(k), slot, JSON.stringify(k));
    assert.equal(index.keyOf(slot), k);
  });
  assert.equal(index.find("\ud801"), -1, "another lone surrogate is another key");
  assert.equal(index.find("b"), -1);
});

Deno.test("key index: while the table grows, every key is found, and deletes and slot reuse work on both tables", () => {
  const index = new KeyIndex(4096);
  const model = new Map<string, number>();
  const key = (i: number) => `key-${i}`;
  let nextSlot = 0;
  const add = (k: string, slot = nextSlot++) => {
    index.add(k, slot);
    model.set(k, slot);
  };
  const assertAll = (when: string) => {
    for (const [k, slot] of model) assert.equal(index.find(k), slot, `${k} ${when}`);
  };
  // 1024 positions hold up to 512 keys: the 513th starts a growth.
  for (let i = 0; i < 512; i++) add(key(i));
  assert.equal(index.growing, false);
  add(key(512));
  assert.equal(index.growing, true, "the 513th key starts moving the old table");
  let grown = 0;
  for (let i = 513; index.growing; i++) {
    // Delete a key that may still sit in the old table, and one just added to the new one.
    const early = key(i - 500), late = key(i - 1);
    for (const k of [early, late]) {
      const slot = model.get(k);
      if (slot === undefined) continue;
      index.delete(slot);
      model.delete(k);
      assert.equal(index.find(k), -1, `${k} deleted while growing`);
      add(`again-${k}`, slot); // the freed slot at once reused for another key
    }
    add(key(i));
    assertAll(`after ${i} adds, growing`);
    grown++;
  }
  assert.ok(grown > 5, `growth spread over ${grown} adds`);
  assertAll("after growing");
  assert.equal(index.size, model.size);
  for (const [k, slot] of model) assert.equal(index.keyOf(slot), k);
});

Deno.test("key index: 300 000 keys, through nine growths, are all found, and deletes leave only the rest", () => {
  const index = new KeyIndex();
  const n = 300_000;
  for (let i = 0; i < n; i++) index.add(`k${i}`, i);
  for (let i = 0; i < n; i++) assert.equal(index.find(`k${i}`), i);
  for (let i = 0; i < n; i += 3) index.delete(i);
  for (let i = 0; i < n; i++) assert.equal(index.find(`k${i}`), i % 3 === 0 ? -1 : i);
  assert.equal(index.size, n - Math.ceil(n / 3));
  assert.equal(index.find(`k${n}`), -1);
});
