/**
 * The built-in `virtual_nodes` default (150), on real processes: every other
 * test's cluster file, and config/cluster.json, set the key, so a changed
 * default would go unseen. Here the cluster file leaves it out, and where
 * the nodes put keys must match the interface page's rule with 150 points a
 * node (checked by an independent reimplementation of the rule).
 */
import assert from "node:assert/strict";
import { clusterTest, TestCluster } from "./helpers/cluster.ts";
import { allPoints, bruteList } from "./helpers/ring_reference.ts";

clusterTest(
  "a cluster file without virtual_nodes places keys by the interface's rule with 150 points a node",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2, defaultVirtualNodes: true });
    try {
      const file = await Deno.readTextFile(cluster.configPath);
      assert.ok(!file.includes("virtual_nodes"), "the cluster file names no virtual_nodes");
      const node1 = await cluster.client({ via: "node1", route: false });
      assert.equal((await node1.membership()).virtualNodes, 150);

      const points = allPoints(cluster.nodes.map((n) => n.id), 150);
      const keys = Array.from({ length: 300 }, (_, i) => `vnodes-${i}`);
      const rs = await node1.multiPut(keys.map((key) => ({ key, value: key })));
      const owners = rs.map((r) => r.nodeId);
      assert.deepEqual(
        owners,
        keys.map((k) => bruteList(points, k, 1)[0]),
        "each write coordinated by its owner",
      );

      // Each node's own copies (read_from_replica) are the keys whose two replicas name it.
      for (const n of cluster.nodes) {
        const direct = await cluster.client({ via: n.id, route: false });
        const expected = keys.filter((k) => bruteList(points, k, 2).includes(n.id));
        let held: string[] = [];
        await cluster.waitFor(
          async () => {
            held = (await direct.multiGet(keys, { fromReplica: true })).filter((r) => r.found).map((r) =>
              r.key
            );
            return held.length >= expected.length;
          },
          10_000,
          `${n.id}'s copies to land`,
        ).catch(() => {});
        assert.deepEqual(held, expected, `${n.id} holds exactly the keys the rule gives it`);
      }
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 60_000 },
);
