/**
 * The admin HTTP listener of real nodes: /healthz, /readyz (503 while
 * JOINING, 200 once ACTIVE), /metrics parsed as Prometheus text with its
 * counters moving with traffic, /status.json naming every node, and
 * `--admin-port 0` turning the listener off. /status.json and the per-peer
 * metrics follow the live member list: a join under way shows as range
 * movement, a node that joined (`server --join`) appears with its state, and
 * a removed one disappears.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, ringOf, sleep, TestCluster } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";
import { parseMetrics, type Sample, total } from "./helpers/metrics.ts";
import { joinCall, removeNode, waitSettled } from "./helpers/membership.ts";
import type { ClusterStatus } from "../lib/admin/status.ts";

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") ?? "" };
}

function admin(cluster: TestCluster, id: string): string {
  return `http://127.0.0.1:${cluster.node(id).adminPort}`;
}

async function scrape(cluster: TestCluster, id: string): Promise<Sample[]> {
  const r = await get(`${admin(cluster, id)}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  return parseMetrics(r.body);
}

clusterTest(
  "/metrics parses as Prometheus text and its counters move with traffic",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3 });
    try {
      const before = await scrape(cluster, "node1");
      for (const s of before) {
        assert.match(s.name, /^kvstore_/, `prefix of ${s.name}`);
        assert.deepEqual(
          Object.keys(s.labels).filter((k) => !["method", "code", "peer", "le"].includes(k)),
          [],
        );
      }
      // Through node1 without routing: every call lands on node1, which forwards to owners.
      const client = await cluster.client({ via: "node1", route: false });
      const n = 60;
      for (let i = 0; i < n; i++) await client.put(`m-${i}`, `v${i}`);
      for (let i = 0; i < n; i++) await client.get(`m-${i}`);
      await client.get("never-written");
      await sleep(1500); // key counts refresh every second
      const after = await scrape(cluster, "node1");
      const calls = "kvstore_grpc_server_calls_total";
      assert.equal(
        total(after, calls, { method: "Put", code: "OK" }) - total(before, calls, { method: "Put" }),
        n,
      );
      // A Get of a missing key is OK with found=false, not an error status.
      assert.equal(
        total(after, calls, { method: "Get", code: "OK" }) - total(before, calls, { method: "Get" }),
        n + 1,
      );
      const latency = "kvstore_grpc_server_call_duration_seconds_count";
      assert.equal(total(after, latency, { method: "Put" }), n);
      // node1 coordinates the keys it owns and forwards the others (once for the put, once for the get).
      const ring = ringOf(cluster);
      const elsewhere = Array.from({ length: n }, (_, i) => `m-${i}`).filter((k) =>
        ring.owner(k) !== "node1"
      );
      const ownerOfMissing = ring.owner("never-written") !== "node1" ? 1 : 0;
      const forwardedKeys = total(after, "kvstore_forwarded_keys_total") -
        total(before, "kvstore_forwarded_keys_total");
      console.log(
        `  node1 forwarded ${forwardedKeys} keys to their owners (${elsewhere.length} of ${n} owned elsewhere)`,
      );
      assert.equal(forwardedKeys, 2 * elsewhere.length + ownerOfMissing);
      assert.ok(total(after, "kvstore_peer_calls_total", { method: "forwardWrites", code: "OK" }) > 0);
      assert.ok(total(after, "kvstore_peer_calls_total", { method: "replicate", code: "OK" }) > 0);
      assert.ok(total(after, "kvstore_stored_bytes") > total(before, "kvstore_stored_bytes"));
      let keys = 0;
      for (const id of ["node1", "node2", "node3"]) keys += total(await scrape(cluster, id), "kvstore_keys");
      assert.equal(keys, 2 * n, "each key held twice (replication_factor 2)");
      assert.equal(total(after, "kvstore_peer_up"), 2);
      assert.equal(total(after, "kvstore_node_active"), 1);
      assert.equal(total(after, "kvstore_storage_up"), 1);
      assert.ok(total(after, "kvstore_process_resident_memory_bytes") > 1e6);
      for (
        const name of [
          "kvstore_replication_queue_records",
          "kvstore_replication_lag_seconds",
          "kvstore_hints_held",
        ]
      ) {
        assert.equal(after.filter((s) => s.name === name).length, 2, `${name}: one series per peer`);
      }
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 90_000 },
);

clusterTest(
  "/healthz answers while the process runs; /readyz is 503 while JOINING and 200 once ACTIVE",
  async () => {
    const failureMs = 3000;
    const cluster = await TestCluster.start({ startOnly: [], failureMs });
    try {
      await cluster.startNode("node1"); // alone: recovery waits for its peers (JOINING)
      const base = admin(cluster, "node1");
      assert.deepEqual(await get(`${base}/healthz`).then((r) => [r.status, r.body]), [200, "ok\n"]);
      const joining = await get(`${base}/readyz`);
      assert.equal(joining.status, 503);
      assert.match(joining.body, /not ready: node is JOINING/);
      const t0 = Date.now();
      while ((await get(`${base}/readyz`)).status !== 200) {
        assert.ok(Date.now() - t0 < 4 * failureMs, "ready within 4x failure_timeout_ms");
        await sleep(100);
      }
      console.log(`  ready ${Date.now() - t0} ms after the first 503 (failure_timeout_ms ${failureMs})`);
      const status = JSON.parse((await get(`${base}/status.json`)).body);
      assert.deepEqual(status.nodes.map((n: { id: string; state: string }) => [n.id, n.state]), [
        ["node1", "up"],
        ["node2", "down"],
        ["node3", "down"],
      ]);
      assert.equal((await get(`${base}/nope`)).status, 404);
      const page = await get(`${base}/`);
      assert.match(page.type, /text\/html/);
      assert.match(page.body, /<svg/);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "--admin-port 0 turns the listener off, and --admin-port moves it",
  async () => {
    const cluster = await TestCluster.start({ startOnly: [] });
    try {
      await cluster.startNode("node1", ["--admin-port", "0"]);
      await assert.rejects(fetch(`${admin(cluster, "node1")}/healthz`));
      const port = freePort();
      await cluster.startNode("node2", ["--admin-port", String(port)]);
      assert.equal((await get(`http://127.0.0.1:${port}/healthz`)).status, 200);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

async function statusOf(cluster: TestCluster, id: string): Promise<ClusterStatus> {
  const r = await get(`${admin(cluster, id)}/status.json`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as ClusterStatus;
}

/** The status page's nodes as [id, state, member] triples. */
const cards = (s: ClusterStatus) => s.nodes.map((n) => [n.id, n.state, n.member]);

clusterTest(
  "/status.json and the per-peer metrics follow the member list: join under way, node4 joined, node4 removed",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, extra: { membership: { cleanup_grace_ms: 1000 } } });
    try {
      const client = await cluster.client();
      for (let i = 0; i < 300; i++) await client.put(`s-${i}`, "x");
      const start = await statusOf(cluster, "node1");
      assert.equal(start.epoch, 0);
      assert.equal(start.moving, undefined);

      // A join nobody completes (nothing listens at its address) stays under way: range movement shown.
      const ghost = await joinCall(cluster, "node2", "nodeX", freePort());
      assert.ok(ghost.accepted, ghost.message);
      const during = await statusOf(cluster, "node1");
      assert.equal(during.epoch, 1);
      assert.deepEqual(cards(during).find((c) => c[0] === "nodeX"), ["nodeX", "down", "JOINING"]);
      assert.equal(during.moving?.node, "nodeX");
      assert.equal(during.moving?.state, "JOINING");
      assert.deepEqual(during.moving?.waiting, ["nodeX"]);
      await removeNode(cluster, "nodeX", "node1");

      // node4 joins with its own admin listener: every node's page lists it, ACTIVE once settled.
      const node4 = cluster.addNode("node4");
      node4.adminPort = freePort();
      await cluster.startJoiner("node4", ["node3"], ["--admin-port", String(node4.adminPort)]);
      await waitSettled(cluster, client, "node1", (ids) => ids.includes("node4"), 60_000);
      let joined = await statusOf(cluster, "node1");
      await cluster.waitFor(
        async () => JSON.stringify(cards(joined = await statusOf(cluster, "node1"))).includes('"node4","up"'),
        20_000,
        "node1's /status.json to show node4 up",
      );
      assert.deepEqual(cards(joined), [
        ["node1", "up", "NORMAL"],
        ["node2", "up", "NORMAL"],
        ["node3", "up", "NORMAL"],
        ["node4", "up", "NORMAL"],
      ]);
      assert.equal(joined.epoch, 4, "join of nodeX, its call-off, node4 joining, node4 joined");
      assert.equal(joined.moving, undefined);
      const n4 = joined.nodes.find((n) => n.id === "node4")!;
      assert.ok(n4.reachable && n4.ring_share > 0.1, JSON.stringify(n4));
      assert.ok((n4.moved_records ?? 0) > 0, `node4 moved records in: ${n4.moved_records}`);
      assert.deepEqual(cards(await statusOf(cluster, "node4")), cards(joined), "node4's own page agrees");
      const m1 = await scrape(cluster, "node1");
      assert.equal(total(m1, "kvstore_peer_up", { peer: "node4" }), 1);
      assert.equal(total(m1, "kvstore_membership_epoch"), 4);

      // node4 decommissions: it leaves every page and every per-peer series.
      const exit = cluster.expectExit("node4");
      await removeNode(cluster, "node4", "node2");
      assert.equal((await exit).code, 0);
      await cluster.waitFor(
        async () => {
          const s = await statusOf(cluster, "node1");
          return !s.nodes.some((n) => n.id === "node4") && s.moving === undefined;
        },
        30_000,
        "node4 to leave node1's /status.json",
      );
      const after = await statusOf(cluster, "node2");
      assert.deepEqual(cards(after).map((c) => c[0]), ["node1", "node2", "node3"]);
      assert.ok(after.epoch >= 6, `epoch ${after.epoch}`);
      // The events list keeps the story: node4 joined, then was removed (as node2 saw it).
      const story = after.events.filter((e) => e.node === "node4" && e.seen_by === "node2").map((e) =>
        e.kind
      );
      assert.deepEqual(
        story.filter((k) => k === "join" || k === "removal"),
        ["removal", "join"],
        "newest first",
      );
      const m2 = await scrape(cluster, "node1");
      // Gauges of node4 are gone (counters of calls made to it keep their history).
      const gauges = [
        "kvstore_peer_up",
        "kvstore_peer_status",
        "kvstore_replication_queue_records",
        "kvstore_hints_held",
      ];
      assert.deepEqual(m2.filter((s) => s.labels.peer === "node4" && gauges.includes(s.name)), []);
      assert.equal(total(m2, "kvstore_peer_up"), 2);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 150_000 },
);
