/**
 * Nodes join and leave a running cluster (real processes): node4 joins,
 * node2 decommissions, a dead node is removed, two joins at once, and a
 * restarted node comes back with the current membership. A mixed workload
 * runs throughout; afterwards every key must sit on exactly
 * replication_factor nodes of the new ring, with no stray copies once the
 * cleanup grace period has passed. KV_MEMBERSHIP_KEYS sets the key count.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, logLines, runMain, sleep, TestCluster } from "./helpers/cluster.ts";
import {
  joinCall,
  KEY_COUNT,
  misplaced,
  preload,
  preValue,
  removeNode,
  unreadable,
  waitSettled,
  Workload,
} from "./helpers/membership.ts";
import { HashRing } from "../lib/ring.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import type { JoinResponseMsg } from "../lib/grpc/messages.ts";
import { freePort } from "./helpers/ports.ts";
import { type RedisProcess, redisServerPath, startRedisServer } from "../lib/redis_server.ts";

const redisAvailable = redisServerPath() !== undefined;

const RF = 2;
const GRACE_MS = 1500;

function startCluster(nodes = 3): Promise<TestCluster> {
  return TestCluster.start({
    nodes,
    replicationFactor: RF,
    extra: { membership: { cleanup_grace_ms: GRACE_MS } },
  });
}

function expected(live: string[], deleted: string[], w: Workload): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>(live.map((k) => [k, preValue(k)]));
  for (const k of deleted) m.set(k, undefined);
  for (const [k, v] of w.written) m.set(k, v);
  return m;
}

/** Placement and reads after the change, once the grace period has passed. */
async function checkAfter(
  cluster: TestCluster,
  client: KvClient,
  ids: string[],
  want: Map<string, string | undefined>,
): Promise<void> {
  const liveKeys = [...want].filter(([, v]) => v !== undefined).map(([k]) => k);
  let wrong: string[] = [];
  // Cleanup runs GRACE_MS after the change, then scans: allow a few rounds.
  await cluster.waitFor(
    async () => (wrong = await misplaced(cluster, client, ids, liveKeys, RF)).length === 0,
    GRACE_MS * 20,
    "every key on exactly its replication_factor nodes",
  ).catch((err) => {
    throw new Error(`${err.message}: ${wrong.length} wrong, e.g.\n${wrong.slice(0, 5).join("\n")}`);
  });
  const bad = await unreadable(client, want);
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} keys read wrong`);
}

clusterTest("node4 joins under load: no failed call, keys readable, exact placement, no strays", async () => {
  const cluster = await startCluster();
  try {
    const client = await cluster.client();
    const { live, deleted } = await preload(client, KEY_COUNT);
    const load = new Workload(client, live);
    load.start();
    cluster.addNode("node4");
    const started = Date.now();
    await cluster.startJoiner("node4", ["node2"]);
    await waitSettled(cluster, client, "node1", (ids) => ids.includes("node4"), 120_000);
    const joinMs = Date.now() - started;
    await load.stop();
    assert.deepEqual(load.failures.slice(0, 5), [], `${load.failures.length} failed calls of ${load.ops}`);
    const ids = ["node1", "node2", "node3", "node4"];
    const share = new HashRing(ids, 150).shares().get("node4")!;
    assert.ok(share > 0.15 && share < 0.35, `node4 owns ${share} of the ring`);
    await checkAfter(cluster, client, ids, expected(live, deleted, load));
    const pulled = logLines(cluster, "node4", "ranges pulled for the membership change")[0] ?? "";
    const moved = Number(/records=(\d+)/.exec(pulled)?.[1] ?? 0);
    assert.ok(moved > 0, `node4 pulled no records: ${pulled}`);
    console.log(
      `join: ${KEY_COUNT} keys, ${moved} records moved to node4 in ${joinMs} ms ` +
        `(${Math.round(moved / (joinMs / 1000))} moved keys/s), ${load.ops} workload calls, ` +
        `node4 owns ${(share * 100).toFixed(1)}% of the ring`,
    );
  } finally {
    await endCluster(cluster);
  }
}, { timeoutMs: 240_000 });

clusterTest(
  "node2 decommissions under load: streams its ranges out, exits, exact placement after",
  async () => {
    const cluster = await startCluster(4);
    try {
      const client = await cluster.client({ via: "node1" });
      const { live, deleted } = await preload(client, KEY_COUNT);
      const load = new Workload(client, live);
      load.start();
      const started = Date.now();
      const exit = cluster.expectExit("node2");
      await removeNode(cluster, "node2", "node3");
      const status = await exit;
      const ms = Date.now() - started;
      assert.equal(status.code, 0, `node2 exited with ${status.code}`);
      assert.ok(logLines(cluster, "node2", "removed from the cluster").length > 0, cluster.logs("node2"));
      await load.stop();
      assert.deepEqual(load.failures.slice(0, 5), [], `${load.failures.length} failed calls of ${load.ops}`);
      await checkAfter(cluster, client, ["node1", "node3", "node4"], expected(live, deleted, load));
      console.log(`decommission of node2: ${KEY_COUNT} keys, ${ms} ms, ${load.ops} workload calls`);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 240_000 },
);

clusterTest(
  "a node killed for good is removed: replication_factor copies restored from the survivors",
  async () => {
    const cluster = await startCluster(4);
    try {
      const client = await cluster.client({ via: "node1" });
      const { live, deleted } = await preload(client, KEY_COUNT);
      // With write_quorum 1 a write is acknowledged before its second copy exists, and the
      // copy still queued on a node killed -9 is lost (see the README): let replication
      // finish first, so what is checked afterwards is what the removal restored.
      const all = ["node1", "node2", "node3", "node4"];
      await checkAfter(cluster, client, all, expected(live, deleted, new Workload(client, live)));
      await cluster.kill("node3");
      const load = new Workload(client, live);
      load.start();
      await removeNode(cluster, "node3", "node1");
      await load.stop();
      assert.deepEqual(load.failures.slice(0, 5), [], `${load.failures.length} failed calls of ${load.ops}`);
      await checkAfter(cluster, client, ["node1", "node2", "node4"], expected(live, deleted, load));
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 240_000 },
);

clusterTest("two joins proposed at the same moment: one is accepted, the other told to retry", async () => {
  const cluster = await startCluster();
  try {
    const client = await cluster.client();
    const claimant = (await client.membership()).claimant;
    assert.equal(claimant, "node1");
    // Proposed before every memory node has its voting floor, a join can leave the nodes that set
    // it late refusing that epoch for good (a known defect, docs/membership.md): not what this tests.
    await cluster.waitFor(
      () =>
        cluster.nodes.every((n) => logLines(cluster, n.id, "membership votes: voting on epochs").length > 0),
      15_000,
      "every node's membership voting floor",
    );
    // Nothing listens at these addresses: the accepted join stays under way until it is called off.
    // A member briefly not ACTIVE on a loaded machine makes both retry: then the pair is sent again.
    let [a, b] = [undefined, undefined] as (JoinResponseMsg | undefined)[];
    for (let attempt = 1; attempt <= 10 && !a?.accepted && !b?.accepted; attempt++) {
      if (attempt > 1) await sleep(500);
      [a, b] = await Promise.all(["nodeA", "nodeB"].map((id) => joinCall(cluster, "node3", id, freePort())));
      assert.ok(a.retry || a.accepted, a.message);
      assert.ok(b.retry || b.accepted, b.message);
    }
    const outcomes = [a!, b!].map((r) =>
      r.accepted ? "accepted" : r.retry ? "retry" : `refused: ${r.message}`
    );
    assert.deepEqual(outcomes.sort(), ["accepted", "retry"], `${a!.message} / ${b!.message}`);
    assert.match((a!.accepted ? b! : a!).message, /a membership change is under way \(node[AB] JOINING\)/);
    const joined = a!.accepted ? "nodeA" : "nodeB";
    const m = await client.membership(cluster.node("node2").address);
    assert.equal(m.members.find((x) => x.id === joined)?.memberState, "JOINING");
    // Removing a node is a node's (or an operator's) act: without the cluster secret it is refused.
    const open = await runMain(
      cluster.dir,
      "client",
      "remove-node",
      joined,
      "--addr",
      cluster.node("node2").address,
    );
    assert.equal(open.code, 2);
    assert.match(open.stdout + open.stderr, /UNAUTHENTICATED/);
    // A join that cannot finish is called off by removing the joiner.
    await removeNode(cluster, joined, "node2");
    await waitSettled(cluster, client, "node3", (ids) => ids.length === 3, 30_000);
  } finally {
    await endCluster(cluster);
  }
}, { timeoutMs: 120_000 });

clusterTest("two nodes started to join at once both become members", async () => {
  const cluster = await startCluster();
  try {
    const client = await cluster.client();
    await preload(client, Math.min(KEY_COUNT, 2000));
    cluster.addNode("node4");
    cluster.addNode("node5");
    await Promise.all([cluster.startJoiner("node4", ["node1"]), cluster.startJoiner("node5", ["node3"])]);
    await waitSettled(
      cluster,
      client,
      "node1",
      (ids) => ids.includes("node4") && ids.includes("node5"),
      120_000,
    );
    const m = await client.membership(cluster.node("node5").address);
    assert.deepEqual(m.members.map((x) => x.id).sort(), ["node1", "node2", "node3", "node4", "node5"]);
    const retried = ["node4", "node5"].filter((id) =>
      logLines(cluster, id, "join not accepted yet").length > 0
    );
    console.log(`told to retry meanwhile: ${retried.join(", ") || "none (the joins did not overlap)"}`);
  } finally {
    await endCluster(cluster);
  }
}, { timeoutMs: 240_000 });

clusterTest(
  "a node restarted from the cluster file comes back with the current membership (memory: from peers)",
  async () => {
    const cluster = await startCluster();
    try {
      const client = await cluster.client({ via: "node2" });
      cluster.addNode("node4");
      await cluster.startJoiner("node4", ["node2"]);
      await waitSettled(cluster, client, "node2", (ids) => ids.includes("node4"), 60_000);
      const epoch = (await client.membership(cluster.node("node2").address)).epoch;
      await cluster.kill("node1");
      await cluster.startNode("node1");
      await cluster.waitActive();
      const m = await client.membership(cluster.node("node1").address);
      assert.equal(m.epoch, epoch);
      assert.deepEqual(m.members.map((x) => x.id).sort(), ["node1", "node2", "node3", "node4"]);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000 },
);

clusterTest("with Redis a node restarts with the member list it kept, even with no peer to ask", async () => {
  if (!redisAvailable) throw new Error("redis-server is required in CI: apt-get install -y redis-server");
  const redises: RedisProcess[] = [];
  const dirs: string[] = [];
  let cluster: TestCluster | undefined;
  try {
    for (let i = 0; i < 4; i++) {
      dirs.push(await Deno.makeTempDir({ prefix: "kvstore-membership-redis-" }));
      redises.push(await startRedisServer({ port: freePort(), dir: dirs[i], appendOnly: false }));
    }
    cluster = await TestCluster.start({
      nodes: 3,
      replicationFactor: RF,
      storage: "redis",
      redisPorts: redises.slice(0, 3).map((r) => r.port),
    });
    const client = await cluster.client({ via: "node1" });
    await preload(client, 500);
    cluster.addNode("node4");
    await cluster.startJoiner("node4", ["node1"], ["--redis-port", String(redises[3].port)]);
    await waitSettled(cluster, client, "node1", (ids) => ids.includes("node4"), 60_000);
    const epoch = (await client.membership(cluster.node("node1").address)).epoch;
    for (const id of ["node1", "node2", "node3", "node4"]) await cluster.kill(id);
    await cluster.startNode("node1");
    const m = await client.membership(cluster.node("node1").address);
    assert.equal(m.epoch, epoch);
    assert.deepEqual(m.members.map((x) => x.id).sort(), ["node1", "node2", "node3", "node4"]);
    assert.ok(logLines(cluster, "node1", "member list restored from storage").length > 0);
    const keys = await client.listAllKeys(cluster.node("node1").address);
    assert.ok(
      keys.length > 0 && keys.every((k) => k.startsWith("key:")),
      "the member list shows up as a key",
    );
  } finally {
    if (cluster) await endCluster(cluster);
    await Promise.all(redises.map((r) => r.kill9()));
    await Promise.all(dirs.map((d) => Deno.remove(d, { recursive: true }).catch(() => {})));
  }
}, { timeoutMs: 120_000, ignore: !redisAvailable && !Deno.env.get("CI") });
