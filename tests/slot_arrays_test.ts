/** Unit tests of the memory engine's paged per-slot arrays. */
import assert from "node:assert/strict";
import { SlotColumn } from "../lib/storage/slot_arrays.ts";

Deno.test("slot arrays: new slots hold the fill value, and growing keeps every value set", () => {
  const column = new SlotColumn(Int32Array, -1);
  assert.equal(column.capacity, 1024, "a small first page");
  assert.equal(column.get(1023), -1);
  const slots = 300_000; // the first page doubling up to a full page, then whole pages added
  for (let slot = 0; slot < slots; slot++) {
    if (slot >= column.capacity) column.ensure(slot + 1);
    column.set(slot, slot * 7 - 5);
  }
  assert.ok(column.capacity >= slots);
  for (let slot = 0; slot < slots; slot++) assert.equal(column.get(slot), slot * 7 - 5, `slot ${slot}`);
  for (let slot = slots; slot < column.capacity; slot++) assert.equal(column.get(slot), -1, `slot ${slot}`);
});

Deno.test("slot arrays: ensure jumps straight to the room asked for and keeps the page's number type", () => {
  const column = new SlotColumn(Float64Array);
  column.set(3, 1.5);
  column.ensure(200_001);
  assert.ok(column.capacity >= 200_001);
  assert.equal(column.get(3), 1.5, "fractions survive: the pages are Float64Array");
  assert.equal(column.get(200_000), 0);
  column.set(200_000, 2 ** 40);
  assert.equal(column.get(200_000), 2 ** 40);
  const bytes = new SlotColumn(Uint8Array);
  bytes.set(0, 257);
  assert.equal(bytes.get(0), 1, "a Uint8Array page wraps as a Uint8Array does");
  const before = column.capacity;
  column.ensure(10);
  assert.equal(column.capacity, before, "never shrinks");
});
