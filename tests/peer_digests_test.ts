/**
 * A digest request (anti-entropy's GetDigests, lib/grpc/peer_client.ts)
 * runs on the streams' deadline, not rpc_timeout_ms: the peer scans every
 * key it holds to answer, which takes seconds at a million keys, and a slow
 * answer must not fail the exchange and mark a live peer unreachable. The
 * test process plays node1 against a real node2 process holding 30 000 keys,
 * with an rpc timeout far below the time the scan takes.
 */
import assert from "node:assert/strict";
import { clusterTest, TestCluster } from "./helpers/cluster.ts";
import type { ReplicaItem } from "../lib/transport.ts";

const KEYS = 30_000;
/** Far below a scan of KEYS keys (tens of milliseconds at best). */
const RPC_TIMEOUT_MS = 5;

clusterTest("a digest request outlasts rpc_timeout_ms while the peer scans its keys", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 2, startOnly: ["node2"] });
  const loader = cluster.peerTransport("node1", "node2", { timeoutMs: 60_000 });
  const transport = cluster.peerTransport("node1", "node2", { timeoutMs: RPC_TIMEOUT_MS });
  try {
    const value = new Uint8Array(100).fill(7);
    const ts = Date.now() * 1000;
    for (let b = 0; b < KEYS / 500; b++) {
      const items: ReplicaItem[] = Array.from({ length: 500 }, (_, i) => ({
        record: { key: `k${b * 500 + i}`, value, timestamp: ts, versionNode: "node1", tombstone: false },
      }));
      assert.equal(await loader.replicate("node2", items), 500);
    }
    const t0 = performance.now();
    const digests = await transport.digests("node2", 4);
    const ms = Math.round(performance.now() - t0);
    console.log(`digests of ${KEYS} keys answered in ${ms} ms (rpc timeout ${RPC_TIMEOUT_MS} ms)`);
    assert.equal(digests.length, 16);
    assert.ok(digests.some((d) => d !== 0), "the keys node2 shares with node1 were digested");
    assert.ok(ms > RPC_TIMEOUT_MS, `answered in ${ms} ms: the rpc timeout was never at stake`);
  } finally {
    loader.close();
    transport.close();
    await cluster.stop();
  }
});
