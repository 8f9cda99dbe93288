/**
 * Unit tests of the memory engine's value slabs: values stay intact through
 * many overwrites and frees (a seeded random run against a plain Map), slabs
 * that become garbage are compacted or dropped, and a value read out never
 * changes under its reader.
 */
import assert from "node:assert/strict";
import { SlabValues } from "../lib/storage/slab_values.ts";
import { seeded } from "./chaos/workload.ts";

function valueOf(rand: () => number, maxLength: number): Uint8Array {
  const v = new Uint8Array(Math.floor(rand() * maxLength));
  for (let i = 0; i < v.length; i++) v[i] = Math.floor(rand() * 256);
  return v;
}

function assertAll(values: SlabValues, model: Map<number, Uint8Array>, slots: number): void {
  for (let slot = 0; slot < slots; slot++) {
    const want = model.get(slot) ?? new Uint8Array(0);
    assert.deepEqual(new Uint8Array(values.read(slot)), want, `slot ${slot}`);
    assert.equal(values.length(slot), want.length);
  }
}

Deno.test("slab values: a seeded run of writes and frees keeps every value intact and space bounded", () => {
  const rand = seeded(1616);
  const slabSize = 4096;
  const values = new SlabValues(slabSize);
  const model = new Map<number, Uint8Array>();
  const slots = 300;
  for (let op = 0; op < 60_000; op++) {
    const slot = Math.floor(rand() * slots);
    if (rand() < 0.25) {
      values.free(slot);
      model.delete(slot);
    } else {
      // Mostly small values, some over a quarter slab (a slab of their own).
      const v = valueOf(rand, rand() < 0.02 ? 3 * slabSize : 200);
      values.write(slot, v);
      if (v.length > 0) model.set(slot, v);
      else model.delete(slot);
    }
    if (op % 5000 === 0) assertAll(values, model, slots);
  }
  assertAll(values, model, slots);
  let live = 0;
  for (const v of model.values()) live += 8 + v.length;
  const stats = values.stats();
  assert.equal(stats.used - stats.garbage, live, "live bytes are exactly what the slots hold");
  assert.ok(
    stats.bytes <= 1.5 * live + 2 * slabSize + 3 * slabSize,
    `slabs hold ${stats.bytes} bytes for ${live} live (garbage is reclaimed)`,
  );
});

Deno.test("slab values: freeing everything drops every slab but the current one", () => {
  const values = new SlabValues(1024);
  for (let slot = 0; slot < 500; slot++) values.write(slot, new Uint8Array(50).fill(slot & 0xff));
  assert.ok(values.stats().slabs > 10);
  for (let slot = 0; slot < 500; slot++) values.free(slot);
  const stats = values.stats();
  assert.equal(stats.slabs, 1);
  assert.equal(stats.used, 0);
});

Deno.test("slab values: a value read out does not change after later writes, frees and compactions", () => {
  const values = new SlabValues(1024);
  values.write(0, new Uint8Array(100).fill(7));
  const held = values.read(0);
  for (let round = 0; round < 50; round++) {
    for (let slot = 0; slot < 40; slot++) values.write(slot, new Uint8Array(100).fill(round));
    for (let slot = 0; slot < 40; slot += 2) values.free(slot);
  }
  assert.deepEqual(new Uint8Array(held), new Uint8Array(100).fill(7));
  assert.deepEqual(new Uint8Array(values.read(1)), new Uint8Array(100).fill(49));
});

Deno.test("slab values: a written value is copied, not kept by reference", () => {
  const values = new SlabValues(1024);
  const message = new Uint8Array(300).fill(1);
  values.write(3, message.subarray(100, 150));
  message.fill(9);
  assert.deepEqual(new Uint8Array(values.read(3)), new Uint8Array(50).fill(1));
  assert.equal(values.read(4).length, 0, "a slot never written holds an empty value");
});
