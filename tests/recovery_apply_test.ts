/**
 * What recovery (lib/recovery.ts) does with the records a peer streams, with
 * a fake peer and no hints anywhere: the real-process tests of deleted keys
 * pass even if recovery skipped tombstones, because hinted handoff delivers
 * the deletes too. Here recovery is the only path.
 */
import assert from "node:assert/strict";
import { QUIET_MS, rangesNotPulled, recoverFromPeers } from "../lib/recovery.ts";
import { HashRing } from "../lib/ring.ts";
import type { RecordPull } from "../lib/transport.ts";
import { withTimeout } from "./helpers/cluster.ts";
import { HybridClock } from "../lib/hlc.ts";
import { Logger } from "../lib/log.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import type { KvRecord } from "../lib/record.ts";
import type { PeerTransport } from "../lib/transport.ts";

const log = new Logger({ level: "error", format: "text" });

function record(key: string, timestamp: number, tombstone = false): KvRecord {
  return {
    key,
    value: tombstone ? new Uint8Array(0) : new TextEncoder().encode(`${key}@${timestamp}`),
    timestamp,
    versionNode: "node1",
    tombstone,
  };
}

/** A peer that streams `chunks` to whoever asks. */
function streamingPeer(chunks: KvRecord[][]): PeerTransport {
  return {
    async *streamRecords() {
      for (const c of chunks) yield c;
    },
  } as unknown as PeerTransport;
}

Deno.test("recovery applies a streamed tombstone newer than the live copy held here, and keeps what is newer here", async () => {
  const storage = new MemoryStorage();
  await storage.apply([record("deleted", 10), record("kept", 30), record("rewritten", 10)]);
  const report = await recoverFromPeers({
    peers: ["node2"],
    transport: streamingPeer([
      [record("deleted", 20, true), record("kept", 25, true)],
      [record("rewritten", 40), record("new", 5)],
    ]),
    storage,
    clock: new HybridClock(Date.now, 60_000),
    log,
    limits: { maxRecords: 2, maxBytes: 1 << 20 },
  });
  assert.deepEqual(report.peersDone, ["node2"]);
  const [deleted, kept, rewritten, fresh] = await storage.get(["deleted", "kept", "rewritten", "new"]);
  assert.equal(deleted?.tombstone, true, "the newer tombstone replaced the older live record");
  assert.equal(deleted?.timestamp, 20);
  assert.equal(kept?.tombstone, false, "an older tombstone does not delete a newer write");
  assert.equal(rewritten?.timestamp, 40);
  assert.equal(fresh?.timestamp, 5);
  assert.equal(report.applied, 3);
  assert.equal(await storage.countLive(), 3);
});

/**
 * node2 streams `chunks`; node3 is frozen: its stream sends nothing and ends
 * only when the caller cancels it, as a gRPC call does (CANCELLED).
 */
function oneFrozenPeer(chunks: KvRecord[][]): PeerTransport {
  return {
    async *streamRecords(peer: string, opts: RecordPull) {
      if (peer === "node2") {
        for (const c of chunks) yield c;
        return;
      }
      await new Promise((resolve) => opts.signal?.addEventListener("abort", resolve, { once: true }));
      throw new Error("1 CANCELLED: Cancelled on client");
    },
  } as unknown as PeerTransport;
}

Deno.test("recovery gives up a frozen peer once the detector holds it down, and keeps what the others sent", async () => {
  const storage = new MemoryStorage();
  const started = Date.now();
  const downAt = started + 300;
  const report = await withTimeout(
    recoverFromPeers({
      peers: ["node2", "node3"],
      transport: oneFrozenPeer([[record("a", 10), record("b", 11)]]),
      storage,
      clock: new HybridClock(Date.now, 60_000),
      log,
      limits: { maxRecords: 2, maxBytes: 1 << 20 },
      peerDown: (peer) => peer === "node3" && Date.now() >= downAt,
    }),
    10_000,
    "recovery",
  );
  console.log(`  frozen node3 given up ${Date.now() - started} ms after the start (held down after 300 ms)`);
  assert.deepEqual(report.peersDone, ["node2"]);
  assert.deepEqual(report.peersFailed, ["node3"]);
  assert.equal(await storage.countLive(), 2);
});

Deno.test("recovery keeps pulling from a peer held down while its stream still sends chunks", async () => {
  const storage = new MemoryStorage();
  const count = Math.ceil((2 * QUIET_MS) / 100);
  const slow = {
    async *streamRecords(_peer: string, opts: RecordPull) {
      for (let i = 0; i < count; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (opts.signal?.aborted) throw new Error("1 CANCELLED: Cancelled on client");
        yield [record(`k${i}`, 10 + i)];
      }
    },
  } as unknown as PeerTransport;
  const report = await withTimeout(
    recoverFromPeers({
      peers: ["node3"],
      transport: slow,
      storage,
      clock: new HybridClock(Date.now, 60_000),
      log,
      limits: { maxRecords: 1, maxBytes: 1 << 20 },
      peerDown: () => true,
    }),
    10_000,
    "recovery",
  );
  assert.deepEqual(report.peersDone, ["node3"]);
  assert.equal(await storage.countLive(), count);
});

Deno.test("the ranges not pulled are those whose every other copy is on a peer that did not answer", () => {
  const ring = new HashRing(["node1", "node2", "node3"], 150);
  const sample = Array.from({ length: 20_000 }, (_, i) => `key-${i}`);
  const fraction = (pred: (nodes: string[]) => boolean) =>
    sample.filter((k) => pred(ring.preferenceList(k, 2))).length / sample.length;
  const without3 = rangesNotPulled(ring, "node1", 2, ["node3"]);
  const expected = fraction((n) => n.includes("node1") && n.includes("node3"));
  assert.ok(without3.ranges > 0);
  assert.ok(Math.abs(without3.share - expected) < 0.02, `share ${without3.share}, sampled ${expected}`);
  assert.deepEqual(rangesNotPulled(ring, "node1", 2, []), { ranges: 0, share: 0 });
  const both = rangesNotPulled(ring, "node1", 2, ["node2", "node3"]);
  assert.ok(Math.abs(both.share - fraction((n) => n.includes("node1"))) < 0.02);
  // With three copies of three nodes one peer that answered has every range.
  assert.equal(rangesNotPulled(ring, "node1", 3, ["node3"]).ranges, 0);
});

Deno.test("in a range move the ranges not pulled are those gained whose every old copy is on a peer that did not answer", () => {
  const before = new HashRing(["node1", "node2", "node3"], 150);
  const after = new HashRing(["node1", "node2", "node3", "node4"], 150);
  const sample = Array.from({ length: 20_000 }, (_, i) => `key-${i}`);
  const fraction = (pred: (was: string[]) => boolean) =>
    sample.filter((k) => after.preferenceList(k, 2).includes("node4") && pred(before.preferenceList(k, 2)))
      .length / sample.length;
  // Two copies: one peer that did not answer leaves every gained range another old copy.
  assert.deepEqual(rangesNotPulled(after, "node4", 2, ["node3"], before), { ranges: 0, share: 0 });
  const two = rangesNotPulled(after, "node4", 2, ["node2", "node3"], before);
  const expected = fraction((was) => was.includes("node2") && was.includes("node3"));
  assert.ok(two.ranges > 0);
  assert.ok(Math.abs(two.share - expected) < 0.02, `share ${two.share}, sampled ${expected}`);
  const all = rangesNotPulled(after, "node4", 2, ["node1", "node2", "node3"], before);
  assert.ok(Math.abs(all.share - fraction(() => true)) < 0.02, `share ${all.share}`);
  // node4 leaves: node1 gains some of its ranges; those node1 held already do not count.
  const left = rangesNotPulled(before, "node1", 2, ["node3", "node4"], after);
  const gainedFrom34 = sample.filter((k) => {
    const was = after.preferenceList(k, 2);
    return before.preferenceList(k, 2).includes("node1") && was.includes("node3") && was.includes("node4");
  }).length / sample.length;
  assert.ok(left.ranges > 0);
  assert.ok(Math.abs(left.share - gainedFrom34) < 0.02, `share ${left.share}, sampled ${gainedFrom34}`);
});
