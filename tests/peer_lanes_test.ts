/**
 * Peer lanes (lib/grpc/peer_client.ts): heartbeats, forwards and bulk
 * traffic to a peer go on connections of their own, so megabytes of bulk
 * copies in flight cannot hold a heartbeat past its deadline, which made a
 * node suspect a live peer. The test process plays node1 with the
 * transport a node uses, against a real node2 process.
 */
import assert from "node:assert/strict";
import { clusterTest, TestCluster } from "./helpers/cluster.ts";
import type { GrpcPeerTransport } from "../lib/grpc/peer_client.ts";
import type { ReplicaItem } from "../lib/transport.ts";
import { sleep } from "../lib/async.ts";

const HEARTBEAT = { status: "ACTIVE" as const, keysCount: 0, hintsPending: 0 };
/** Long enough for every bulk copy: what is measured is how long heartbeats wait meanwhile. */
const DEADLINE_MS = 60_000;
/** Bulk copies sent: batches of 10 records of 100 KB, 8 batches a turn of the event loop. */
const BULK_BATCHES = 200;
const BATCHES_PER_TURN = 8;

function bulkBatch(b: number, value: Uint8Array, ts: number): ReplicaItem[] {
  return Array.from({ length: 10 }, (_, i) => ({
    record: { key: `bulk:${b}:${i}`, value, timestamp: ts + i, versionNode: "node1", tombstone: false },
  }));
}

/** Sends the bulk copies without holding up this process's own event loop for long. */
async function sendBulk(transport: GrpcPeerTransport): Promise<void> {
  const value = new Uint8Array(100_000).fill(7);
  const sent: Promise<number>[] = [];
  const ts = Date.now() * 1000;
  for (let b = 0; b < BULK_BATCHES; b++) {
    sent.push(transport.replicate("node2", bulkBatch(b, value, ts + b * 10)));
    if (b % BATCHES_PER_TURN === BATCHES_PER_TURN - 1) await sleep(0);
  }
  await Promise.all(sent);
}

clusterTest("a heartbeat does not wait behind bulk copies to the same peer", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1, startOnly: ["node2"] });
  const transport = cluster.peerTransport("node1", "node2", { timeoutMs: DEADLINE_MS });
  try {
    await transport.heartbeat("node2", HEARTBEAT);
    let bulkDone = false;
    const started = performance.now();
    const bulk = sendBulk(transport).finally(() => bulkDone = true);
    const latencies: number[] = [];
    const failures: string[] = [];
    while (!bulkDone) {
      const t0 = performance.now();
      await transport.heartbeat("node2", HEARTBEAT).then(
        () => latencies.push(Math.round(performance.now() - t0)),
        (err) => failures.push(String(err)),
      );
      await sleep(20);
    }
    await bulk;
    const bulkMs = Math.round(performance.now() - started);
    console.log(
      `${BULK_BATCHES} MB of copies in ${bulkMs} ms; ${latencies.length} heartbeats meanwhile, ` +
        `slowest ${Math.max(...latencies)} ms: ${latencies.join(",")}`,
    );
    assert.deepEqual(failures, [], `heartbeats failed while bulk copies flowed`);
    // On one shared connection the first heartbeat waited for nearly all of
    // the bulk (1 811 of 2 032 ms here): it was queued behind every byte.
    assert.ok(
      Math.max(...latencies) < bulkMs / 4,
      `a heartbeat waited ${Math.max(...latencies)} ms of the bulk's ${bulkMs} ms`,
    );
    assert.ok(latencies.length >= 3, `only ${latencies.length} heartbeats while the bulk copies flowed`);
  } finally {
    transport.close();
    await cluster.stop();
  }
});

clusterTest("control, bulk and data calls to a peer go on three connections", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1, startOnly: ["node2"] });
  const transport = cluster.peerTransport("node1", "node2", { timeoutMs: DEADLINE_MS });
  try {
    const before = connectionsTo(cluster.node("node2").port);
    await transport.heartbeat("node2", HEARTBEAT);
    assert.equal(connectionsTo(cluster.node("node2").port) - before, 1, "after a heartbeat");
    await transport.forwardReads("node2", ["some-key"]);
    assert.equal(connectionsTo(cluster.node("node2").port) - before, 2, "after a forward");
    await transport.digests("node2", 4);
    assert.equal(connectionsTo(cluster.node("node2").port) - before, 3, "after a digest request");
    await transport.heartbeat("node2", HEARTBEAT);
    await transport.forwardReads("node2", ["other-key"]);
    assert.equal(connectionsTo(cluster.node("node2").port) - before, 3, "the lanes are reused");
  } finally {
    transport.close();
    await cluster.stop();
  }
});

/** This process's established TCP connections to a port on 127.0.0.1 (from /proc). */
function connectionsTo(port: number): number {
  const mine = new Set<string>();
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      const link = Deno.readLinkSync(`/proc/self/fd/${fd.name}`);
      const m = link.match(/^socket:\[(\d+)\]$/);
      if (m) mine.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/self/net/tcp").split("\n").slice(1).filter((line) => {
    const f = line.trim().split(/\s+/);
    // f[2]: remote address:port, f[3]: state (01 = ESTABLISHED), f[9]: inode.
    return f.length > 9 && f[2].endsWith(`:${hexPort}`) && f[3] === "01" && mine.has(f[9]);
  }).length;
}
