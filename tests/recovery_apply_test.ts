/**
 * What recovery (lib/recovery.ts) does with the records a peer streams, with
 * a fake peer and no hints anywhere: the real-process tests of deleted keys
 * pass even if recovery skipped tombstones, because hinted handoff delivers
 * the deletes too. Here recovery is the only path.
 */
import assert from "node:assert/strict";
import { recoverFromPeers } from "../lib/recovery.ts";
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
