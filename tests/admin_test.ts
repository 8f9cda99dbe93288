/**
 * The admin HTTP listener of real nodes: /healthz, /readyz (503 while
 * JOINING, 200 once ACTIVE), /metrics parsed as Prometheus text with its
 * counters moving with traffic, /status.json naming every node, and
 * `--admin-port 0` turning the listener off.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, ringOf, sleep, TestCluster } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";

/** One sample of a scrape: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset the store writes), checking every line. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    const value = m[4] === "+Inf" ? Infinity : Number(m[4]);
    assert.ok(!Number.isNaN(value), `bad value: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/** Sum of the samples of a metric whose labels include `where`. */
function total(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

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
