/**
 * A range move with a peer that is frozen (SIGSTOP), or killed mid-move, on
 * real node processes over real gRPC, memory engine, three nodes, two copies.
 *
 * node4 joins right after node3 stops answering: the join is decided before
 * the failure detector suspects node3 (2 of 3 vote; a change waits while a
 * member is not ACTIVE, hence the long suspect timeout). node4 alone gains
 * ranges and pulls them from every live peer, node3 included. A frozen peer
 * accepts the connection and never answers, so that pull waited for the
 * stream's deadline (10 minutes) and node4 stayed JOINING: it must give node3
 * up once its detector holds it FAILED, join with the copies of node1 and
 * node2, say whom it gave up, and pull from node3 again once it answers
 * (before node3's cleanup could drop what only node3 had). Killed instead,
 * node3 refuses connections and the join completes once it is FAILED: the
 * figures of both are printed for comparison.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, heldBy, logLines, ringOf, TestCluster } from "./helpers/cluster.ts";
import { waitSettled } from "./helpers/membership.ts";
import { HashRing } from "../lib/ring.ts";

const SUSPECT_MS = 10_000;
const FAILURE_MS = 11_000;
const GRACE_MS = 5000;

function start(): Promise<TestCluster> {
  return TestCluster.start({
    nodes: 3,
    suspectMs: SUSPECT_MS,
    failureMs: FAILURE_MS,
    extra: { membership: { cleanup_grace_ms: GRACE_MS } },
  });
}

/**
 * node4 joins with node3 frozen and, with `kill`, killed once node4 pulls
 * from it; resolves with the ms from node4's start until the join completed.
 */
async function joinWithoutNode3(cluster: TestCluster, kill: boolean): Promise<number> {
  const ring = ringOf(cluster);
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const client = await cluster.client({ via: "node1" });
  const rs = await client.multiPut(keys.map((key) => ({ key, value: `${key}=v` })));
  assert.deepEqual(rs.filter((r) => !r.ok).map((r) => r.key), []);
  // write_quorum 1: the second copy is written after the answer; node3 must not be frozen before.
  for (const id of ["node1", "node2", "node3"]) {
    const mine = keys.filter((k) => ring.preferenceList(k, 2).includes(id));
    await cluster.waitFor(
      async () => (await heldBy(cluster, id, mine)).length === mine.length,
      15_000,
      `${id}'s copies`,
    );
  }
  cluster.addNode("node4");
  await cluster.signal("node3", "SIGSTOP");
  const started = Date.now();
  await cluster.startJoiner("node4", ["node1"]);
  if (kill) {
    await cluster.waitFor(
      () => logLines(cluster, "node4", "pulling the ranges this node gains").some((l) => l.includes("node3")),
      10_000,
      "node4 to pull from node3",
    );
    await cluster.kill("node3");
  }
  await waitSettled(cluster, client, "node1", (ids) => ids.includes("node4"), 5 * FAILURE_MS + 10_000)
    .catch((err) => {
      const tails = ["node1", "node4"].map((id) =>
        `--- ${id}:\n${cluster.logs(id).split("\n").slice(-8).join("\n")}`
      );
      throw new Error(`${err.message}\n${tails.join("\n")}`);
    });
  const ms = Date.now() - started;
  // node3 is out: every key is read from node1, node2 or node4 (read_quorum 1).
  let lost: string[] = [];
  await cluster.waitFor(
    async () => {
      const reads = await client.multiGet(keys);
      lost = reads.filter((r) => !r.found).map((r) =>
        `${r.key} (${ring.preferenceList(r.key, 2)}) via ${r.nodeId}`
      );
      return lost.length === 0;
    },
    15_000,
    "every key to be readable",
  ).catch((err) => {
    throw new Error(`${err.message}: ${lost.length} not found, e.g. ${lost.slice(0, 5).join(", ")}`);
  });
  console.log(`  every key readable ${Date.now() - started - ms} ms after the join completed`);
  return ms;
}

/**
 * Writes `count` keys straight into node3's storage (a replica write, as
 * node1 would send it): keys node3 alone holds, of the ranges it hands to
 * node4 in the join (node3 drops them once the change completes).
 */
async function onlyOnNode3(cluster: TestCluster, count: number): Promise<string[]> {
  const before = ringOf(cluster);
  const after = new HashRing(["node1", "node2", "node3", "node4"], 150);
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `only3-${i}`;
    if (before.preferenceList(key, 2).includes("node3") && !after.preferenceList(key, 2).includes("node3")) {
      keys.push(key);
    }
  }
  const peers = cluster.peerTransport("node1", "node3", { timeoutMs: 5000 });
  try {
    const items = keys.map((key) => ({
      record: {
        key,
        value: new TextEncoder().encode(`${key}=v`),
        timestamp: Date.now() * 1000,
        versionNode: "node1",
        tombstone: false,
      },
    }));
    await peers.replicate("node3", items);
  } finally {
    peers.close();
  }
  assert.deepEqual(await heldBy(cluster, "node3", keys), keys, "node3 holds them");
  assert.deepEqual(await heldBy(cluster, "node1", keys), [], "node1 does not");
  assert.deepEqual(await heldBy(cluster, "node2", keys), [], "node2 does not");
  return keys;
}

function moveLines(cluster: TestCluster): string[] {
  return [
    ...logLines(cluster, "node4", "recovery from peer gave up"),
    ...logLines(cluster, "node4", "range move gave up"),
    ...logLines(cluster, "node4", "ranges pulled for the membership change"),
  ].map((l) => `node4: ${l.replace(/^\S+ /, "")}`);
}

clusterTest(
  "a join completes when a peer it pulls from is frozen: the joiner gives it up once it is FAILED, and pulls from it again once it answers",
  async () => {
    const cluster = await start();
    let paused = false;
    try {
      const only3 = await onlyOnNode3(cluster, 20);
      paused = true;
      const ms = await joinWithoutNode3(cluster, false);
      console.log(`  node3 frozen: node4 joined ${ms} ms after its start (failure_timeout_ms ${FAILURE_MS})`);
      const lines = moveLines(cluster);
      for (const l of lines) console.log(`  ${l}`);
      assert.ok(
        lines.some((l) => l.includes("range move gave up") && l.includes("peers=node3")),
        "node4 says it gave node3 up",
      );
      // node3 held ranges node4 took: node4 pulls from it again before node3's cleanup drops them.
      await cluster.signal("node3", "SIGCONT");
      paused = false;
      const resumed = Date.now();
      // Once node3 has dropped the ranges it handed over, what it alone had must be on node4.
      const dropped = () => logLines(cluster, "node3", "dropped copies this node no longer holds");
      await cluster.waitFor(() => dropped().length > 0, 10 * GRACE_MS, "node3 to drop what it handed over");
      console.log(`  node3 resumed: it dropped the copies it handed over ${Date.now() - resumed} ms later`);
      assert.deepEqual(await heldBy(cluster, "node3", only3), [], "node3 dropped them");
      assert.deepEqual(await heldBy(cluster, "node4", only3), only3, "node4 holds what only node3 had");
      const again = logLines(cluster, "node4", "pulled again from peers a range move had given up");
      for (const l of again) console.log(`  node4: ${l.replace(/^\S+ /, "")}`);
      assert.ok(
        again.some((l) => l.includes("peers=node3") && !l.includes("failed=")),
        "node4 pulled from node3",
      );
    } finally {
      if (paused) await cluster.signal("node3", "SIGCONT").catch(() => {});
      await endCluster(cluster);
    }
  },
  { timeoutMs: 150_000 },
);

clusterTest(
  "a join whose frozen peer is killed mid-move (connection refused) completes once it is FAILED, for comparison",
  async () => {
    const cluster = await start();
    try {
      const ms = await joinWithoutNode3(cluster, true);
      console.log(
        `  node3 killed mid-move: node4 joined ${ms} ms after its start (failure_timeout_ms ${FAILURE_MS})`,
      );
      for (const l of moveLines(cluster)) console.log(`  ${l}`);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000 },
);
