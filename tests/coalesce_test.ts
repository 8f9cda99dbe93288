/**
 * Tests of the forward coalescer: concurrent callers share one batched call
 * per peer, each gets exactly its own results or the batch's error, a lone
 * caller is sent at the end of the current turn (no timer), and batches
 * respect their bounds in items and bytes; then the same through real
 * nodes: concurrent forwards through one node, one of them refused on its
 * own, and concurrent forwards to a freshly killed owner failing over.
 */
import assert from "node:assert/strict";
import { Coalescer } from "../lib/coalesce.ts";
import { clusterTest, keysOwnedBy, ringOf, TestCluster, text } from "./helpers/cluster.ts";

/** A fake peer that records every batch and answers each item with `peer:item`. */
function recorder(fail?: (peer: string, items: string[]) => unknown) {
  const batches: { peer: string; items: string[] }[] = [];
  const send = (peer: string, items: string[]) => {
    batches.push({ peer, items: [...items] });
    const err = fail?.(peer, items);
    return err ? Promise.reject(err) : Promise.resolve(items.map((i) => `${peer}:${i}`));
  };
  return { batches, send };
}

const bounds = { maxItems: 100, maxBytes: 1 << 20, sizeOf: (s: string) => s.length };

Deno.test("callers in the same turn share one call per peer and each gets its own results in order", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, bounds);
  const [a, b, d] = await Promise.all([
    c.call("node2", ["a1", "a2"]),
    c.call("node3", ["b1"]),
    c.call("node2", ["c1", "c2", "c3"]),
  ]);
  assert.deepEqual(a, ["node2:a1", "node2:a2"]);
  assert.deepEqual(b, ["node3:b1"]);
  assert.deepEqual(d, ["node2:c1", "node2:c2", "node2:c3"]);
  assert.deepEqual(batches, [
    { peer: "node2", items: ["a1", "a2", "c1", "c2", "c3"] },
    { peer: "node3", items: ["b1"] },
  ]);
});

Deno.test("a caller repeating a key of the queued batch starts the next batch (peers refuse repeated keys)", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, { ...bounds, keyOf: (s: string) => s });
  const [a, b, d] = await Promise.all([
    c.call("node2", ["k1", "k2"]),
    c.call("node2", ["k2"]),
    c.call("node2", ["k3"]),
  ]);
  assert.deepEqual([a, b, d], [["node2:k1", "node2:k2"], ["node2:k2"], ["node2:k3"]]);
  assert.deepEqual(batches, [
    { peer: "node2", items: ["k1", "k2"] },
    { peer: "node2", items: ["k2", "k3"] },
  ]);
});

Deno.test("a failed batch rejects every caller in it with that error, and only them", async () => {
  const down = new Error("node2 unreachable");
  const { send } = recorder((peer) => peer === "node2" ? down : undefined);
  const c = new Coalescer(send, bounds);
  const results = await Promise.allSettled([
    c.call("node2", ["a"]),
    c.call("node3", ["b"]),
    c.call("node2", ["c"]),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "fulfilled", "rejected"]);
  assert.equal((results[0] as PromiseRejectedResult).reason, down);
  assert.equal((results[2] as PromiseRejectedResult).reason, down);
  assert.deepEqual((results[1] as PromiseFulfilledResult<string[]>).value, ["node3:b"]);
});

Deno.test("a send that throws at once, or answers the wrong number of results, rejects its callers", async () => {
  const c = new Coalescer<string, string>(() => {
    throw new Error("no such peer");
  }, bounds);
  await assert.rejects(c.call("node9", ["a"]), /no such peer/);
  const short = new Coalescer<string, string>(() => Promise.resolve(["only one"]), bounds);
  const both = [short.call("node2", ["a"]), short.call("node2", ["b"])];
  for (const p of both) await assert.rejects(p, /answered 1 results for 2 items/);
});

Deno.test("a lone call leaves at the end of the current turn, before any timer fires", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, bounds);
  let timerFired = false;
  const timer = setTimeout(() => timerFired = true, 0);
  const started = performance.now();
  const res = await c.call("node2", ["x"]);
  const waited = performance.now() - started;
  clearTimeout(timer);
  assert.deepEqual(res, ["node2:x"]);
  assert.equal(batches.length, 1);
  // setImmediate runs after this turn's I/O, ahead of the next timer phase.
  assert.equal(timerFired, false, `the call waited for a timer (${waited.toFixed(3)} ms)`);
  console.log(`lone call answered after ${waited.toFixed(3)} ms`);
});

Deno.test("batches are cut at the item bound without splitting a caller's items", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, { ...bounds, maxItems: 4 });
  const calls = [["a", "b"], ["c"], ["d", "e"], ["f"], ["g", "h", "i", "j", "k"]].map((items) =>
    c.call("node2", items)
  );
  const results = await Promise.all(calls);
  assert.deepEqual(results[2], ["node2:d", "node2:e"]);
  assert.deepEqual(results[4], ["node2:g", "node2:h", "node2:i", "node2:j", "node2:k"]);
  assert.deepEqual(batches.map((b) => b.items), [
    ["a", "b", "c"], // "d","e" would make 5
    ["d", "e", "f"],
    ["g", "h", "i", "j", "k"], // one caller larger than the bound goes alone
  ]);
  for (const b of batches.slice(0, 2)) assert.ok(b.items.length <= 4);
});

Deno.test("batches are cut at the byte bound", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, { ...bounds, maxBytes: 10 });
  await Promise.all(["aaaa", "bbbb", "cccc", "dd"].map((s) => c.call("node2", [s])));
  assert.deepEqual(batches.map((b) => b.items), [["aaaa", "bbbb"], ["cccc", "dd"]]);
});

Deno.test("a batch that reaches its bound leaves at once, and later calls start a new one", async () => {
  const { batches, send } = recorder();
  const c = new Coalescer(send, { ...bounds, maxItems: 2 });
  const first = c.call("node2", ["a", "b"]);
  // Sent synchronously: the bound was reached, no need to wait for the turn to end.
  assert.equal(batches.length, 1);
  const second = c.call("node2", ["c"]);
  assert.equal(batches.length, 1);
  assert.deepEqual(await first, ["node2:a", "node2:b"]);
  assert.deepEqual(await second, ["node2:c"]);
  assert.deepEqual(batches.map((b) => b.items), [["a", "b"], ["c"]]);
});

// Real processes: forwards coalesced between real nodes.

clusterTest("concurrent writes and reads forwarded through one node each get their own answer", async () => {
  const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 1 });
  try {
    const ring = ringOf(cluster);
    const keys = keysOwnedBy(ring, "node2", "co:", 40);
    const viaNode1 = await cluster.client({ via: "node1", route: false });
    // One key already holds a version newer than the one a caller will send.
    const newer = Date.now() * 1000 + 20_000_000; // ahead of the clocks, within limits.max_clock_skew_ms
    assert.equal((await viaNode1.put(keys[0], "newest", { timestamp: newer })).ok, true);
    const writes = await Promise.all(
      keys.map((key, i) =>
        i === 0 ? viaNode1.put(key, "older", { timestamp: newer - 1000 }) : viaNode1.put(key, `value ${i}`)
      ),
    );
    assert.equal(writes[0].ok, false, "the older write is refused on its own");
    assert.match(writes[0].message, /newer version/);
    for (const [i, w] of writes.entries()) {
      assert.equal(w.key, keys[i]);
      assert.equal(w.nodeId, "node2", `${keys[i]} coordinated by its owner`);
      if (i > 0) assert.equal(w.ok, true, `${keys[i]}: ${w.message}`);
    }
    const missing = keysOwnedBy(ring, "node2", "co-missing:", 3);
    const reads = await Promise.all([...keys, ...missing].map((key) => viaNode1.get(key)));
    assert.equal(text.decode(reads[0].value), "newest");
    for (let i = 1; i < keys.length; i++) {
      assert.equal(reads[i].found, true, keys[i]);
      assert.equal(text.decode(reads[i].value), `value ${i}`, `${keys[i]} read back its own value`);
    }
    for (const r of reads.slice(keys.length)) assert.equal(r.found, false, `${r.key} was never written`);
  } finally {
    await cluster.stop();
  }
});

clusterTest(
  "concurrent forwards to an owner killed a moment ago all fail over to the next node",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2, failureMs: 60_000 });
    try {
      const ring = ringOf(cluster);
      const keys = keysOwnedBy(ring, "node2", "fo:", 40);
      const viaNode1 = await cluster.client({ via: "node1", route: false });
      await cluster.kill("node2");
      // node1 still believes node2 is up: its coalesced forward fails as a whole
      // and every caller retries on the key's next node.
      const writes = await Promise.all(keys.map((key, i) => viaNode1.put(key, `after kill ${i}`)));
      for (const [i, w] of writes.entries()) {
        assert.equal(w.ok, true, `${keys[i]}: ${w.message}`);
        assert.notEqual(w.nodeId, "node2");
      }
      const reads = await Promise.all(keys.map((key) => viaNode1.get(key)));
      for (const [i, r] of reads.entries()) assert.equal(text.decode(r.value), `after kill ${i}`, keys[i]);
    } finally {
      await cluster.stop();
    }
  },
);
