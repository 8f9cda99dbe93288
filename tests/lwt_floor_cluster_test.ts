/**
 * The vote floor of memory-engine nodes on real processes, with the default
 * limits.max_clock_skew_ms (60 s, so the start-time floor alone would refuse
 * every conditional operation for 2 minutes): a fresh cluster and a node
 * killed -9 and restarted vote again as soon as every member has told them
 * its highest ballot (lib/lwt/vote_floor.ts); with a member down, the
 * restarted node keeps refusing below its start-time floor.
 */
import assert from "node:assert/strict";
import { clusterTest, logLines, ringOf, TestCluster } from "./helpers/cluster.ts";
import { sleep } from "../lib/async.ts";
import { Code, KvError } from "../lib/errors.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";

/** Default limits (no max_clock_skew_ms), a short rpc timeout so a stopped peer fails fast. */
const EXTRA = { failure_detection: { rpc_timeout_ms: 1000 } };
const RF = 2;

/** Polls an increment of `key` until it applies; resolves with the ms it took. */
async function untilIncrement(
  client: KvClient,
  key: string,
  since: number,
  limitMs: number,
): Promise<number> {
  let last = "";
  while (Date.now() - since < limitMs) {
    try {
      await client.increment(key, 1);
      return Date.now() - since;
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      last = err.message;
      await sleep(100);
    }
  }
  throw new Error(`increment of ${key} never applied in ${limitMs} ms; last refusal: ${last}`);
}

/** How long after its start each node set its floor from its peers (its log line). */
function settled(cluster: TestCluster): string {
  return cluster.nodes.map((n) => {
    const line = logLines(cluster, n.id, "votes on conditional operations above").at(-1) ?? "";
    return `${n.id} ${/(\d+) ms after its start/.exec(line)?.[1] ?? "?"} ms`;
  }).join(", ");
}

/** A key whose `RF` replicas are exactly `a` and `b`. */
function keyOn(cluster: TestCluster, a: string, b: string): string {
  const ring = ringOf(cluster);
  for (let i = 0;; i++) {
    const list = ring.preferenceList(`floor:${i}`, RF);
    if (list.includes(a) && list.includes(b)) return `floor:${i}`;
  }
}

clusterTest(
  "default settings: a fresh memory cluster and a node killed -9 and restarted run increments within seconds",
  async () => {
    const started = Date.now();
    // Default failure detection too (heartbeats every 5 s), as `deno task cluster` runs.
    const cluster = await TestCluster.start({
      nodes: 3,
      replicationFactor: RF,
      heartbeatMs: 5000,
      failureMs: 15_000,
    });
    try {
      const serving = Date.now() - started;
      const client = await cluster.client({ via: "node2", route: false, timeoutMs: 4000 });
      // One key per pair of replicas: every node's vote is needed by one of them (rf 2).
      const pairs = [["node1", "node2"], ["node2", "node3"], ["node1", "node3"]];
      const took = [];
      for (const [a, b] of pairs) {
        took.push(await untilIncrement(client, keyOn(cluster, a, b), started, 20_000));
      }
      console.log(
        `fresh cluster: nodes served after ${serving} ms; first increments applied ${took} ms after start`,
      );
      console.log(`each node's floor set from its peers, after its own start: ${settled(cluster)}`);

      const key = keyOn(cluster, "node1", "node2");
      await cluster.kill("node1");
      const restarted = Date.now();
      await cluster.startNode("node1");
      const back = await untilIncrement(client, key, restarted, 20_000);
      console.log(
        `node1 killed -9 and restarted: an increment on its key applied ${back} ms after the restart`,
      );
      console.log(`after the restart: ${settled(cluster)}`);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 45_000 },
);

clusterTest(
  "default skew: a node restarted while a member is down refuses below its start-time floor until it is back",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: RF, extra: EXTRA });
    try {
      const client = await cluster.client({ via: "node2", route: false, timeoutMs: 4000 });
      // node3 holds no copy of the key, yet might hold node1's forgotten promises.
      const key = keyOn(cluster, "node1", "node2");
      await untilIncrement(client, key, Date.now(), 20_000);
      await cluster.kill("node3");
      await cluster.kill("node1");
      await cluster.startNode("node1");
      const restarted = Date.now();
      // Refused for the floor alone (recovered, voting otherwise), and for as long as node3 is down.
      let floorRefusals = 0;
      while (Date.now() - restarted < 15_000 && floorRefusals < 20) {
        const refused = await client.increment(key, 1).then(() => undefined, (err) => err);
        assert.ok(refused !== undefined, "an increment applied with node1 restarted and node3 down");
        assert.ok(refused instanceof KvError && refused.code === Code.UNAVAILABLE, `${refused}`);
        if (/start-time floor \(waiting for node3/.test(refused.message)) floorRefusals++;
        await sleep(250);
      }
      assert.equal(floorRefusals, 20, "node1 never refused for its start-time floor");
      console.log(`node3 down: ${floorRefusals} increments refused by node1's start-time floor`);
      const resumed = Date.now();
      await cluster.startNode("node3");
      const back = await untilIncrement(client, key, resumed, 20_000);
      console.log(`node3 restarted: an increment on node1's key applied ${back} ms after`);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 60_000 },
);
