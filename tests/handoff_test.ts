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
import { sleep } from "../lib/async.ts";

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

/** A peer whose replicate() records what it got, or fails as told. */
function fakePeer(fail?: () => Error) {
  const received: KvRecord[] = [];
  const transport = {
    replicate(_peer: string, items: readonly ReplicaItem[]): Promise<number> {
      if (fail) return Promise.reject(fail());
      received.push(...items.map((i) => i.record));
      return Promise.resolve(items.length);
    },
  } as unknown as PeerTransport;
  return { transport, received };
}

async function setUp(opts: { holdsNaturally: boolean; fail?: () => Error }) {
  const storage = new MemoryStorage();
  const hints = new HintStore({ limit: 100, maxAgeMs: 60_000, log });
  const records = [record("a", 10), record("b", 20), record("c", 30)];
  await storage.apply(records);
  for (const r of records) hints.add("node2", r.key, r);
  const peer = fakePeer(opts.fail);
  const loop = new HandoffLoop({
    hints,
    storage,
    transport: peer.transport,
    log,
    canStore: () => true,
    holdsNaturally: () => opts.holdsNaturally,
    onUnreachable: () => {},
    batchSize: 2,
    intervalMs: 60_000,
  });
  return { storage, hints, peer, loop };
}

/** Runs one delivery round and lets it finish. */
async function round(loop: HandoffLoop): Promise<void> {
  loop.deliverAll();
  await sleep(20);
}

Deno.test("hints are delivered in batches with the stored versions and then forgotten", async () => {
  const { hints, peer, loop, storage } = await setUp({ holdsNaturally: true });
  await round(loop);
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

Deno.test("an unreachable target keeps its hints for the next round", async () => {
  const { hints, loop, storage } = await setUp({
    holdsNaturally: false,
    fail: () => new PeerUnavailableError("node2", "connection refused"),
  });
  await round(loop);
  assert.equal(hints.pendingFor("node2"), 3);
  assert.equal(await storage.countLive(), 3, "nothing is erased before it is delivered");
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
