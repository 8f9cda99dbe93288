/**
 * Unit tests of the memory engine's key index: a seeded run of adds and
 * deletes against a plain Map (deletes shift probe runs back, so every key
 * must stay findable), and keys of every kind come back exactly.
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
