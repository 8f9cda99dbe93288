/**
 * Recovery with a peer that is frozen (SIGSTOP) or down (kill -9), on real
 * node processes over real gRPC, memory engine, three nodes, two copies.
 *
 * node1 is killed and restarted while node3 does not answer. A frozen peer
 * is the hard case: the kernel still accepts connections, so nothing is
 * refused and a recovery stream to it waits for its deadline (minutes).
 * node1 must give node3 up once its failure detector holds it FAILED, become
 * ACTIVE with what node2 has, say which ranges it could not pull and from
 * whom, and, once node3 is resumed, get what only node3 had: the keys it
 * held with node1 before the kill (anti-entropy) and the writes it took
 * while node1 was down (its hints).
 */
import assert from "node:assert/strict";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import type { HashRing } from "../lib/ring.ts";
import {
  clusterTest,
  endCluster,
  heldBy,
  logField,
  logLines,
  ringOf,
  statusSeenBy,
  TestCluster,
  waitForStatus,
} from "./helpers/cluster.ts";

const FAILURE_MS = 2000;

/** `count` keys `${prefix}N` whose two copies are on exactly `a` and `b`. */
function keysOn(ring: HashRing, a: string, b: string, prefix: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const nodes = ring.preferenceList(`${prefix}${i}`, 2);
    if (nodes.includes(a) && nodes.includes(b)) out.push(`${prefix}${i}`);
  }
  return out;
}

async function putAll(client: KvClient, keys: string[]): Promise<void> {
  const rs = await client.multiPut(keys.map((key) => ({ key, value: `${key}=v` })));
  assert.deepEqual(rs.filter((r) => !r.ok).map((r) => `${r.key}: ${r.message}`), []);
}

/** Waits until node1 says it is ACTIVE; resolves with the ms it took (fails with its log). */
async function waitOwnActive(cluster: TestCluster, admin: KvClient, since: number): Promise<number> {
  await cluster.waitFor(
    async () => await statusSeenBy(admin, cluster, "node1", "node1") === "ACTIVE",
    10 * FAILURE_MS + 10_000,
    "the restarted node1 to be ACTIVE",
  ).catch((err) => {
    throw new Error(
      `${err.message}; node1's log:\n${cluster.logs("node1").split("\n").slice(-15).join("\n")}`,
    );
  });
  return Date.now() - since;
}

/**
 * Kills node1; writes `hinted` through node3 while node1 is down and node2
 * frozen, so node3 keeps the only copy and the hint for node1 (with node2 up
 * it would also place a stand-in copy there); takes node3 out (`how`) and
 * restarts node1. Resolves with the ms node1 took to be ACTIVE.
 */
async function restartWithoutNode3(
  cluster: TestCluster,
  how: "SIGSTOP" | "SIGKILL",
  keys: { onNode2: string[]; onNode3: string[]; hinted: string[] },
): Promise<number> {
  const admin = await cluster.client({ via: "node2", route: false });
  const probe = await cluster.client({ via: "node3", route: false });
  const before = [...keys.onNode2, ...keys.onNode3];
  await putAll(await cluster.client({ via: "node2" }), before);
  await cluster.waitFor(
    async () => (await heldBy(cluster, "node1", before)).length === before.length,
    15_000,
    "node1 to hold its copies",
  );
  await cluster.kill("node1");
  await waitForStatus(cluster, probe, ["node3"], "node1", ["SUSPECTED", "FAILED"], 15_000);
  if (keys.hinted.length > 0) {
    await cluster.signal("node2", "SIGSTOP");
    try {
      await waitForStatus(cluster, probe, ["node3"], "node2", ["SUSPECTED", "FAILED"], 15_000);
      await putAll(probe, keys.hinted);
    } finally {
      await cluster.signal("node2", "SIGCONT");
    }
    await waitForStatus(cluster, probe, ["node3"], "node2", ["ACTIVE"], 15_000);
    assert.deepEqual(await heldBy(cluster, "node3", keys.hinted), keys.hinted, "node3 holds the hinted keys");
    assert.deepEqual(await heldBy(cluster, "node2", keys.hinted), [], "node2 holds none of them");
  }
  await cluster.signal("node3", how);
  const started = Date.now();
  await cluster.startNode("node1");
  return await waitOwnActive(cluster, admin, started);
}

function recoveryLines(cluster: TestCluster): string[] {
  return [
    ...logLines(cluster, "node1", "recovery from peer gave up"),
    ...logLines(cluster, "node1", "recovery could not pull"),
  ];
}

clusterTest(
  "a restarted node gives up a frozen peer once it is FAILED, serves what the others had, and gets the frozen peer's data after it resumes",
  async () => {
    const cluster = await TestCluster.start({
      nodes: 3,
      suspectMs: 1000,
      failureMs: FAILURE_MS,
      extra: { recovery: { anti_entropy_interval_ms: 1000 } },
    });
    let paused = false;
    try {
      const ring = ringOf(cluster);
      const keys = {
        onNode2: keysOn(ring, "node1", "node2", "n12-", 40),
        onNode3: keysOn(ring, "node1", "node3", "n13-", 40),
        hinted: keysOn(ring, "node1", "node3", "hint-", 20),
      };
      paused = true;
      const ms = await restartWithoutNode3(cluster, "SIGSTOP", keys);
      console.log(
        `  node3 frozen: node1 ACTIVE ${ms} ms after its restart (failure_timeout_ms ${FAILURE_MS})`,
      );
      const lines = recoveryLines(cluster);
      for (const l of lines) console.log(`  node1: ${l.replace(/^\S+ /, "")}`);
      assert.ok(
        lines.some((l) => l.includes("gave up") && l.includes("peer=node3")),
        "node1 says it gave node3 up",
      );
      assert.ok(
        lines.some((l) => l.includes("could not pull") && l.includes("peers=node3")),
        "and which ranges",
      );
      assert.deepEqual(
        await heldBy(cluster, "node1", keys.onNode2),
        keys.onNode2,
        "node1 recovered node2's copies",
      );
      const before = [...keys.onNode3, ...keys.hinted];
      assert.deepEqual(
        await heldBy(cluster, "node1", before),
        [],
        "what only node3 holds is not on node1 yet",
      );
      // It serves meanwhile: a read it coordinates.
      const viaNode1 = await cluster.client({ via: "node1", route: false });
      assert.equal((await viaNode1.get(keys.onNode2[0])).found, true);
      // read_quorum 1: node1 answers keys whose other copy is on the frozen node from its own storage, which lacks them.
      const unpulled = await viaNode1.multiGet(keys.onNode3);
      console.log(
        `  while node3 is frozen node1 answers ${unpulled.filter((r) => r.found).length} of ` +
          `${keys.onNode3.length} keys whose other copy is only on node3 as found`,
      );

      await cluster.signal("node3", "SIGCONT");
      paused = false;
      const resumed = Date.now();
      let missing = before;
      await cluster.waitFor(
        async () => {
          const held = new Set(await heldBy(cluster, "node1", before));
          missing = before.filter((k) => !held.has(k));
          return missing.length === 0;
        },
        30_000,
        "node1 to get what only node3 had",
      ).catch((err) => {
        throw new Error(`${err.message}; still missing ${missing.length}: ${missing.slice(0, 5).join(", ")}`);
      });
      const handed = logLines(cluster, "node3", "hints handed off").filter((l) => l.includes("target=node1"));
      const repaired = logLines(cluster, "node1", "anti-entropy repaired");
      const rejoined = logLines(cluster, "node1", "this node is now JOINING").length;
      const records = handed.reduce((n, l) => n + Number(logField(l, "records")), 0);
      console.log(
        `  node3 resumed: node1 held all ${before.length} of node3's keys after ${Date.now() - resumed} ms ` +
          `(${records} hinted records handed off by node3, ${repaired.length} anti-entropy repair lines on node1, ` +
          `node1 back to JOINING ${rejoined} times while node3 handed its hints over)`,
      );
      assert.equal(records, keys.hinted.length, "node3 handed its hints for node1 over");
      await waitForStatus(cluster, viaNode1, ["node1", "node2", "node3"], "node1", ["ACTIVE"], 15_000);
    } finally {
      if (paused) await cluster.signal("node3", "SIGCONT").catch(() => {});
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000 },
);

clusterTest(
  "a restarted node whose peer is down (connection refused) recovers from the other and is ACTIVE, for comparison",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, suspectMs: 1000, failureMs: FAILURE_MS });
    try {
      const ring = ringOf(cluster);
      const keys = {
        onNode2: keysOn(ring, "node1", "node2", "n12-", 40),
        onNode3: keysOn(ring, "node1", "node3", "n13-", 40),
        hinted: [],
      };
      const ms = await restartWithoutNode3(cluster, "SIGKILL", keys);
      console.log(`  node3 down: node1 ACTIVE ${ms} ms after its restart (failure_timeout_ms ${FAILURE_MS})`);
      for (const l of recoveryLines(cluster)) console.log(`  node1: ${l.replace(/^\S+ /, "")}`);
      assert.deepEqual(
        await heldBy(cluster, "node1", keys.onNode2),
        keys.onNode2,
        "node1 recovered node2's copies",
      );
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 90_000 },
);
