/** Tests of lib/storage/expiry_index.ts against a plain map walked in full. */
import assert from "node:assert/strict";
import { ExpiryIndex } from "../lib/storage/expiry_index.ts";

Deno.test("expiredCount matches a full walk through sets, overwrites, deletes and a moving clock", () => {
  let seed = 12345;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const index = new ExpiryIndex();
  const model = new Map<number, number>();
  let now = 1000;
  for (let step = 0; step < 50_000; step++) {
    const slot = rand(500);
    const op = rand(10);
    if (op < 6) {
      const at = now + rand(2000) - 200;
      index.set(slot, at);
      model.set(slot, at);
    } else if (op < 8) {
      index.delete(slot);
      model.delete(slot);
    } else {
      now += rand(50);
      const expected = [...model.values()].filter((at) => at <= now).length;
      assert.equal(index.expiredCount(now), expected, `step ${step}`);
    }
    assert.equal(index.get(slot), model.get(slot));
  }
  assert.equal(index.size, model.size);
});

Deno.test("a key rewritten many times with a long expiry does not grow the index without bound", () => {
  const index = new ExpiryIndex();
  for (let i = 0; i < 100_000; i++) index.set(7, 1e12 + i);
  assert.equal(index.size, 1);
  assert.ok(index.heapLength <= 2 * index.size + 1025, `heap of ${index.heapLength} for one key`);
  assert.equal(index.expiredCount(1e12 + 99_998), 0);
  assert.equal(index.expiredCount(1e12 + 99_999), 1);
  index.delete(7);
  assert.equal(index.expiredCount(2e12), 0);
});
