/** Unit tests of the memory engine's interned version node ids. */
import assert from "node:assert/strict";
import { NodeIds } from "../lib/storage/node_ids.ts";

Deno.test("node ids: one number per id, counted, and reused once no holder is left", () => {
  const ids = new NodeIds();
  const a = ids.acquire("node1");
  assert.equal(ids.acquire("node1"), a);
  const b = ids.acquire("node2");
  assert.notEqual(a, b);
  assert.equal(ids.id(a), "node1");
  ids.release(a);
  assert.equal(ids.id(a), "node1", "still held once");
  ids.release(a);
  assert.equal(ids.size(), 1);
  const c = ids.acquire("client-x");
  assert.equal(c, a, "the freed number is reused");
  assert.equal(ids.id(c), "client-x");
  assert.equal(ids.id(b), "node2");
});

Deno.test("node ids: stored length is a byte per ASCII character, a marker and UTF-8 otherwise", () => {
  const ids = new NodeIds();
  assert.equal(ids.storedLength(ids.acquire("node1")), 5);
  assert.equal(ids.storedLength(ids.acquire("nœud")), 1 + 5);
});
