/** The counting wrappers: peer calls by method, peer and code; forwarded keys; storage errors. */
import assert from "node:assert/strict";
import { instrumentStorage, instrumentTransport } from "../lib/admin/instrument.ts";
import { NodeMetrics } from "../lib/admin/node_metrics.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { PeerUnavailableError } from "../lib/errors.ts";
import type { Storage } from "../lib/storage/mod.ts";
import type { PeerTransport } from "../lib/transport.ts";
import type { KvRecord } from "../lib/record.ts";

/** A transport whose calls to "down" fail as unreachable, and whose streams yield one chunk. */
function fakeTransport(): PeerTransport {
  const check = (peer: string) => {
    if (peer === "down") throw new PeerUnavailableError(peer, "connection refused");
  };
  const chunks = async function* (peer: string): AsyncGenerator<KvRecord[]> {
    check(peer);
    yield await Promise.resolve([]);
  };
  return {
    heartbeat: (peer) => (check(peer), Promise.resolve({ status: "ACTIVE", keysCount: 0, hintsPending: 0 })),
    forwardWrites: (peer, writes) => (check(peer), Promise.resolve(writes.map(() => ({}) as never))),
    forwardReads: (peer, keys) => (check(peer), Promise.resolve(keys.map(() => ({}) as never))),
    replicate: (peer, items) => (check(peer), Promise.resolve(items.length)),
    readRecords: (peer) => (check(peer), Promise.resolve([])),
    streamRecords: (peer) => chunks(peer),
    digests: (peer) => (check(peer), Promise.resolve([])),
    streamBuckets: (peer) => chunks(peer),
  };
}

async function scrape(m: NodeMetrics): Promise<string> {
  return await m.registry.render();
}

Deno.test("peer calls are counted by method, peer and status code, streams when they end", async () => {
  const m = new NodeMetrics();
  const t = instrumentTransport(fakeTransport(), m);
  await t.heartbeat("node2", { status: "ACTIVE", keysCount: 0, hintsPending: 0 });
  await t.heartbeat("node2", { status: "ACTIVE", keysCount: 0, hintsPending: 0 });
  await assert.rejects(t.heartbeat("down", { status: "ACTIVE", keysCount: 0, hintsPending: 0 }));
  for await (const _ of t.streamRecords("node3", { maxRecords: 1, maxBytes: 1 })) { /* drain */ }
  await assert.rejects(async () => {
    for await (
      const _ of t.streamBuckets("down", { bucketBits: 1, buckets: [], maxRecords: 1, maxBytes: 1 })
    ) {
      /* drain */
    }
  });
  const text = await scrape(m);
  assert.match(text, /kvstore_peer_calls_total\{method="heartbeat",peer="node2",code="OK"\} 2\n/);
  assert.match(text, /kvstore_peer_calls_total\{method="heartbeat",peer="down",code="UNAVAILABLE"\} 1\n/);
  assert.match(text, /kvstore_peer_calls_total\{method="streamRecords",peer="node3",code="OK"\} 1\n/);
  assert.match(text, /kvstore_peer_calls_total\{method="streamBuckets",peer="down",code="UNAVAILABLE"\} 1\n/);
});

Deno.test("forwarded keys are counted per peer, whether or not the forward succeeds", async () => {
  const m = new NodeMetrics();
  const t = instrumentTransport(fakeTransport(), m);
  await t.forwardReads("node2", ["a", "b", "c"]);
  await assert.rejects(t.forwardReads("down", ["d"]));
  const text = await scrape(m);
  assert.match(text, /kvstore_forwarded_keys_total\{peer="node2"\} 3\n/);
  assert.match(text, /kvstore_forwarded_keys_total\{peer="down"\} 1\n/);
  assert.match(text, /kvstore_peer_calls_total\{method="forwardReads",peer="node2",code="OK"\} 1\n/);
});

Deno.test("failed storage operations are counted by method and still thrown", async () => {
  const m = new NodeMetrics();
  const inner = new MemoryStorage();
  const failing: Storage = {
    engine: "memory",
    get: () => Promise.reject(new Error("disk on fire")),
    apply: (records) => inner.apply(records),
    remove: (key, version) => inner.remove(key, version),
    scan: (cursor, limit) => inner.scan(cursor, limit),
    healthy: () => true,
    countLive: () => inner.countLive(),
    bytesHeld: () => inner.bytesHeld(),
    close: () => inner.close(),
  };
  const s = instrumentStorage(failing, m);
  await assert.rejects(s.get(["k"]), /disk on fire/);
  await assert.rejects(s.get(["k"]), /disk on fire/);
  assert.equal(await s.countLive(), 0);
  assert.equal(s.bytesHeld?.(), 0, "the memory engine's byte count passes through");
  const text = await scrape(m);
  assert.match(text, /kvstore_storage_errors_total\{method="get"\} 2\n/);
  assert.match(
    text,
    /kvstore_storage_errors_total\{method="countLive"\} 0\n/,
    "every method's series exists from the start",
  );
});

Deno.test("the wrapped storage keeps a versions-only scan where the engine has one, and none where it has not", async () => {
  const inner = new MemoryStorage();
  await inner.apply([{
    key: "k",
    value: new Uint8Array(100),
    timestamp: 1,
    versionNode: "n1",
    tombstone: false,
  }]);
  const s = instrumentStorage(inner, new NodeMetrics());
  assert.ok(s.scanVersions, "without it, digest and filter scans copy every value out");
  const page = await s.scanVersions("", 10);
  assert.deepEqual(page.versions, [{ key: "k", timestamp: 1, versionNode: "n1", tombstone: false }]);
  const plain: Storage = {
    engine: "memory",
    get: (keys) => inner.get(keys),
    apply: (records) => inner.apply(records),
    remove: (key, version) => inner.remove(key, version),
    scan: (cursor, limit) => inner.scan(cursor, limit),
    healthy: () => true,
    countLive: () => inner.countLive(),
    close: () => inner.close(),
  };
  assert.equal(instrumentStorage(plain, new NodeMetrics()).scanVersions, undefined);
});

Deno.test("instrumentStorage passes closeScan on, so callers' abandoned scans are closed in the engine", async () => {
  const inner = new MemoryStorage();
  await inner.apply(
    ["a", "b"].map((key) => ({
      key,
      value: new Uint8Array(1),
      timestamp: 1,
      versionNode: "n",
      tombstone: false,
    })),
  );
  const s = instrumentStorage(inner, new NodeMetrics());
  const page = await s.scan("", 1);
  assert.ok(s.closeScan, "without it, an abandoned scan pins the memory engine's slots until it expires");
  s.closeScan(page.nextCursor);
  await assert.rejects(() => inner.scan(page.nextCursor, 1), /unknown or expired/);
});
