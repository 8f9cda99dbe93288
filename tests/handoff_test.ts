/**
 * Hint delivery (lib/handoff.ts) with an in-memory store and a fake peer:
 * what is delivered, what a stand-in erases, and what a refusal does.
 */
import assert from "node:assert/strict";
import { HandoffLoop } from "../lib/handoff.ts";
import { HintStore } from "../lib/hints.ts";
import { Logger } from "../lib/log.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { Code, KvError, PeerUnavailableError } from "../lib/errors.ts";
import type { KvRecord } from "../lib/record.ts";
import type { PeerTransport, ReplicaItem } from "../lib/transport.ts";

const log = new Logger({ level: "error", format: "text" });

function record(key: string, timestamp: number): KvRecord {
  return {
    key,
    value: new TextEncoder().encode(`v-${key}`),
    timestamp,
    versionNode: "node1",
    tombstone: false,
  };
}

/**
 * A peer whose replicate() records every call (the keys of each, so how a
 * delivery was split shows), then fails while `fail` is set or stores them.
 */
function fakePeer(fail?: () => Error) {
  const received: KvRecord[] = [];
  const calls: string[][] = [];
  const state = { fail };
  const transport = {
    replicate(peer: string, items: readonly ReplicaItem[]): Promise<number> {
      assert.equal(peer, "node2");
      calls.push(items.map((i) => i.record.key));
      if (state.fail) return Promise.reject(state.fail());
      received.push(...items.map((i) => i.record));
      return Promise.resolve(items.length);
    },
  } as unknown as PeerTransport;
  return { transport, received, calls, state };
}

async function setUp(
  opts: { holdsNaturally: boolean; fail?: () => Error; keys?: number; batchSize?: number },
) {
  const storage = new MemoryStorage();
  const hints = new HintStore({ limit: 100, maxAgeMs: 60_000, log });
  const records = Array.from({ length: opts.keys ?? 3 }, (_, i) => record("abcdefgh"[i], 10 * (i + 1)));
  await storage.apply(records);
  for (const r of records) hints.add("node2", r.key, r);
  const peer = fakePeer(opts.fail);
  const unreachable: string[] = [];
  const loop = new HandoffLoop({
    hints,
    storage,
    transport: peer.transport,
    log,
    canStore: () => true,
    holdsNaturally: () => opts.holdsNaturally,
    replicasOf: () => ["node2"],
    onUnreachable: (target) => unreachable.push(target),
    batchSize: opts.batchSize ?? 2,
    intervalMs: 60_000,
  });
  return { storage, hints, peer, loop, unreachable };
}

/** Runs one delivery round to its end. */
function round(loop: HandoffLoop): Promise<void> {
  return loop.deliverAll();
}

Deno.test("hints are delivered in batches with the stored versions and then forgotten", async () => {
  const { hints, peer, loop, storage } = await setUp({ holdsNaturally: true });
  await round(loop);
  assert.deepEqual(peer.calls, [["a", "b"], ["c"]], "batches of batchSize (2)");
  assert.deepEqual(peer.received.map((r) => [r.key, r.timestamp]), [["a", 10], ["b", 20], ["c", 30]]);
  assert.equal(hints.pendingFor("node2"), 0);
  assert.equal(await storage.countLive(), 3, "a natural copy stays after the handoff");
});

Deno.test("a stand-in erases its copy once the node it stood in for has it", async () => {
  const { peer, loop, storage } = await setUp({ holdsNaturally: false });
  await round(loop);
  assert.equal(peer.received.length, 3);
  assert.deepEqual(await storage.get(["a", "b", "c"]), [undefined, undefined, undefined]);
});

Deno.test("hints are delivered in batches of batchSize", async () => {
  const { peer, loop, hints } = await setUp({ holdsNaturally: true, keys: 5, batchSize: 2 });
  await round(loop);
  assert.deepEqual(peer.calls, [["a", "b"], ["c", "d"], ["e"]], "one call per batch of 2, in order");
  assert.equal(hints.pendingFor("node2"), 0);
  const wide = await setUp({ holdsNaturally: true, keys: 5, batchSize: 3 });
  await round(wide.loop);
  assert.deepEqual(wide.peer.calls, [["a", "b", "c"], ["d", "e"]]);
});

Deno.test("an unreachable target keeps its hints for the next round", async () => {
  const { hints, loop, storage, peer, unreachable } = await setUp({
    holdsNaturally: false,
    fail: () => new PeerUnavailableError("node2", "connection refused"),
  });
  await round(loop);
  assert.deepEqual(peer.calls, [["a", "b"]], "delivery was attempted, and stopped at the first failure");
  assert.deepEqual(unreachable, ["node2"], "the failure was reported as the target being unreachable");
  assert.equal(hints.pendingFor("node2"), 3);
  assert.equal(await storage.countLive(), 3, "nothing is erased before it is delivered");

  // The target is back: the next round delivers every kept hint, then erases the stand-in copies.
  peer.state.fail = undefined;
  await round(loop);
  assert.deepEqual(peer.received.map((r) => [r.key, r.timestamp]), [["a", 10], ["b", 20], ["c", 30]]);
  assert.equal(hints.pendingFor("node2"), 0);
  assert.equal(await storage.countLive(), 0);
});

Deno.test("a target that refuses the records drops those hints instead of retrying forever", async () => {
  const { hints, loop, storage } = await setUp({
    holdsNaturally: false,
    fail: () => new KvError(Code.INVALID_ARGUMENT, "key is too long"),
  });
  await round(loop);
  assert.equal(hints.pendingFor("node2"), 0, "the target is no longer kept waiting for them");
  assert.equal(await storage.countLive(), 3, "the refused copies are kept, for anti-entropy");
});

Deno.test("a restarted stand-in rebuilds hints from the copies it holds for others, delivers and erases them", async () => {
  const storage = new MemoryStorage();
  // "a" and "b" are this node's own keys; "x" and "y" it holds as a stand-in for node2 (and node3).
  await storage.apply(["a", "b", "x", "y"].map((k, i) => record(k, 10 * (i + 1))));
  await storage.apply([{ ...record("y", 50), value: new Uint8Array(0), tombstone: true }]);
  const hints = new HintStore({ limit: 100, maxAgeMs: 60_000, log });
  const peer = fakePeer();
  const loop = new HandoffLoop({
    hints,
    storage,
    transport: peer.transport,
    log,
    canStore: (id) => id === "node2",
    holdsNaturally: (key) => key === "a" || key === "b",
    replicasOf: () => ["node2", "node3"],
    onUnreachable: () => {},
    batchSize: 10,
    intervalMs: 60_000,
  });
  assert.equal(await loop.rebuild(1), 4, "one hint per replica of each stand-in copy (pages of 1)");
  assert.equal(hints.pendingFor("node2"), 2);
  assert.equal(hints.pendingFor("node3"), 2);
  await round(loop);
  assert.deepEqual(
    peer.received.map((r) => [r.key, r.timestamp, r.tombstone]).sort(),
    [["x", 30, false], ["y", 50, true]],
    "the held versions, the tombstone included",
  );
  assert.equal((await storage.get(["x"]))[0]?.timestamp, 30, "kept while node3 (down) still waits for it");
});
