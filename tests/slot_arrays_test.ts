/** Unit tests of the memory engine's per-slot array growth. */
import assert from "node:assert/strict";
import { grownArray } from "../lib/storage/slot_arrays.ts";

Deno.test("slot arrays: a grown array keeps its type and contents, grows by a quarter, fills new slots", () => {
  const from = Int32Array.from([5, -6, 7, 8]);
  const to = grownArray(from, 5, -1);
  assert.ok(to instanceof Int32Array);
  assert.deepEqual([...to], [5, -6, 7, 8, -1]);
  assert.equal(grownArray(new Float64Array(1000), 1001).length, 1250);
  assert.equal(grownArray(new Uint8Array(4), 100).length, 100, "at least the slots asked for");
});
