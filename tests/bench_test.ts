/**
 * The bench mode and the batch path it drives: correctness, not speed.
 *
 * The bench runs as users run it (`main.ts bench --json` in its own
 * process) against real clusters; the histogram is checked on its own.
 */
import assert from "node:assert/strict";
import { clusterTest, logField, logLines, TestCluster } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";
import { Histogram } from "../lib/bench/histogram.ts";
import { benchKey, benchValue } from "../lib/bench/load.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface BenchJson {
  ops: number;
  keys: number;
  ops_per_s: number;
  keys_per_s: number;
  latency_ms: { count: number; p50: number; p95: number; p99: number; max: number };
  calls: { put: number; get: number; delete: number };
  reads: { found: number; not_found: number; mismatched: number };
  errors: Record<string, number>;
  error_count: number;
  preload: { keys: number; errors: Record<string, number> } | null;
}

/** Runs `main.ts bench` with these flags; the exit code and what it printed. */
async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "bench", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs the bench with --json; fails the test unless it exits 0 with one JSON line. */
async function benchJson(args: string[]): Promise<BenchJson> {
  const r = await bench([...args, "--json"]);
  assert.equal(r.code, 0, `bench ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `expected one JSON line, got:\n${r.stdout}`);
  return JSON.parse(lines[0]);
}

function addrs(cluster: TestCluster): string {
  return cluster.nodes.map((n) => n.address).join(",");
}

/** Starts a cluster and waits until every node sees every node ACTIVE (recovery on start is over). */
async function activeCluster(opts: Parameters<typeof TestCluster.start>[0]): Promise<TestCluster> {
  const cluster = await TestCluster.start(opts);
  try {
    const client = await cluster.client({ route: false });
    await cluster.waitFor(
      async () => {
        const views = await Promise.all(
          cluster.nodes.map((n) => client.membership(n.address).catch(() => undefined)),
        );
        return views.every((v) => v !== undefined && v.members.every((m) => m.status === "ACTIVE"));
      },
      30_000,
      "every node to be ACTIVE",
    );
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

Deno.test("the histogram reports percentiles within 1% and the exact maximum", () => {
  const h = new Histogram();
  for (let us = 1; us <= 100_000; us++) h.record(us);
  assert.equal(h.count, 100_000);
  assert.equal(h.max, 100_000);
  assert.equal(h.min, 1);
  for (const [p, want] of [[50, 50_000], [95, 95_000], [99, 99_000], [99.9, 99_900]]) {
    const got = h.percentile(p);
    assert.ok(Math.abs(got - want) / want < 0.01, `p${p}: got ${got}, want about ${want}`);
  }
  assert.equal(h.percentile(100), 100_000);
  assert.equal(h.summary().p50Ms, Math.round(h.percentile(50)) / 1000);
});

Deno.test("the histogram keeps small values exact and merges counts", () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 0; i < 90; i++) a.record(100);
  for (let i = 0; i < 10; i++) b.record(5_000_000);
  a.merge(b);
  assert.equal(a.count, 100);
  assert.equal(a.percentile(50), 100);
  assert.equal(a.percentile(90), 100);
  assert.ok(Math.abs(a.percentile(95) - 5_000_000) / 5_000_000 < 0.01);
  assert.equal(a.max, 5_000_000);
  assert.equal(new Histogram().percentile(99), 0);
});

Deno.test("bench rejects bad flags with exit code 2", async () => {
  for (
    const args of [
      ["--op", "scan"],
      ["--ops", "0"],
      ["--ops", "10", "--duration", "1"],
      ["--read-ratio", "1.5"],
      ["--batch", "x"],
      ["--addr", "nowhere"],
      ["--spread"],
      ["--bogus"],
    ]
  ) {
    const r = await bench(args);
    assert.equal(r.code, 2, `bench ${args.join(" ")} should exit 2, got ${r.code}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /error/);
  }
});

clusterTest("bench --ops N reports exactly N calls, unary and batched", async () => {
  const cluster = await activeCluster({ nodes: 3, replicationFactor: 2, logLevel: "warn" });
  try {
    const mixed = await benchJson([
      "--addr",
      addrs(cluster),
      "--op",
      "mixed",
      "--read-ratio",
      "0.7",
      "--ops",
      "137",
      "--concurrency",
      "8",
      "--keys",
      "50",
      "--preload",
    ]);
    console.log(`mixed: ${mixed.ops} calls, ${mixed.ops_per_s} ops/s, p50 ${mixed.latency_ms.p50} ms`);
    assert.equal(mixed.ops, 137);
    assert.equal(mixed.keys, 137);
    assert.equal(mixed.latency_ms.count, 137);
    assert.equal(mixed.calls.put + mixed.calls.get + mixed.calls.delete, 137);
    assert.ok(
      mixed.calls.put > 0 && mixed.calls.get > 0,
      `a 70/30 mix sends both: ${JSON.stringify(mixed.calls)}`,
    );
    assert.deepEqual(mixed.errors, {});
    assert.equal(mixed.preload?.keys, 50);
    // Every key was preloaded, so every get finds the bench's value for it.
    assert.deepEqual(mixed.reads, { found: mixed.calls.get, not_found: 0, mismatched: 0 });

    const batched = await benchJson([
      "--addr",
      addrs(cluster),
      "--op",
      "delete",
      "--batch",
      "7",
      "--ops",
      "11",
      "--concurrency",
      "3",
      "--keys",
      "50",
    ]);
    assert.equal(batched.ops, 11);
    assert.equal(batched.keys, 77);
    assert.equal(batched.calls.delete, 11);
    assert.equal(batched.latency_ms.count, 11);
    assert.deepEqual(batched.errors, {});

    // One caller through one node that forwards: still exactly N.
    const single = await benchJson([
      "--addr",
      cluster.nodes[1].address,
      "--no-route",
      "--op",
      "put",
      "--ops",
      "23",
      "--concurrency",
      "1",
    ]);
    assert.equal(single.ops, 23);
    assert.equal(single.calls.put, 23);
    assert.deepEqual(single.errors, {});
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 120_000 });

clusterTest("bench counts failed calls by gRPC code when the node it talks to is down", async () => {
  const cluster = await activeCluster({ nodes: 3, replicationFactor: 1, logLevel: "warn" });
  try {
    const dead = cluster.nodes[2];
    await cluster.kill(dead.id);
    const r = await benchJson([
      "--addr",
      dead.address,
      "--no-route",
      "--op",
      "put",
      "--ops",
      "40",
      "--concurrency",
      "4",
      "--timeout",
      "2000",
    ]);
    assert.equal(r.ops, 40);
    assert.deepEqual(r.errors, { UNAVAILABLE: 40 });
    assert.equal(r.error_count, 40);
    assert.equal(r.latency_ms.count, 40);

    // The human report names the code too, and the run still exits 0.
    const text = await bench([
      "--addr",
      dead.address,
      "--no-route",
      "--op",
      "get",
      "--ops",
      "5",
      "--timeout",
      "2000",
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /errors\s+UNAVAILABLE 5/);

    // A port nobody listens on is counted the same way.
    const nowhere = await benchJson(["--addr", `127.0.0.1:${freePort()}`, "--no-route", "--ops", "6"]);
    assert.deepEqual(nowhere.errors, { UNAVAILABLE: 6 });

    // Routed over the live nodes once the death is known, the same load fails nothing.
    const client = await cluster.client({ via: cluster.nodes[0].id });
    await cluster.waitFor(
      async () => {
        const m = await client.membership(cluster.nodes[0].address);
        return m.members.find((x) => x.id === dead.id)?.status !== "ACTIVE";
      },
      15_000,
      `${dead.id} to be noticed`,
    );
    const routed = await benchJson([
      "--addr",
      `${cluster.nodes[0].address},${cluster.nodes[1].address}`,
      "--op",
      "put",
      "--ops",
      "60",
      "--concurrency",
      "4",
    ]);
    assert.equal(routed.ops, 60);
    assert.deepEqual(routed.errors, {});
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 120_000 });

clusterTest("the batch path returns exactly what was put", async () => {
  const cluster = await activeCluster({ nodes: 3, replicationFactor: 2, logLevel: "warn" });
  try {
    const client = await cluster.client();
    // Binary values of many sizes, including bytes that are not UTF-8.
    const items = Array.from({ length: 300 }, (_, i) => {
      const value = crypto.getRandomValues(new Uint8Array((i * 37) % 2000));
      return { key: `batch-${i}-${crypto.randomUUID()}`, value };
    });
    const written = await client.multiPut(items);
    assert.equal(written.length, items.length);
    written.forEach((w, i) => {
      assert.equal(w.key, items[i].key);
      assert.equal(w.ok, true, `${w.key}: ${w.message}`);
      assert.ok(w.timestamp > 0);
    });
    // Read back in another order, with keys that were never written mixed in.
    const order = [...items].reverse();
    const missing = ["never-1", "never-2", "never-3"];
    const keys = [...order.map((i) => i.key), ...missing];
    const read = await client.multiGet(keys);
    assert.equal(read.length, keys.length);
    order.forEach((item, i) => {
      assert.equal(read[i].key, item.key);
      assert.equal(read[i].found, true, `${item.key} not found`);
      assert.deepEqual(new Uint8Array(read[i].value), item.value, `${item.key} came back different`);
    });
    for (const r of read.slice(order.length)) assert.equal(r.found, false);
    // Unary reads agree with the batch.
    for (const item of items.slice(0, 10)) {
      assert.deepEqual(new Uint8Array((await client.get(item.key)).value), item.value);
    }
    // And a batch delete removes exactly its keys.
    const gone = items.slice(0, 100).map((i) => i.key);
    assert.ok((await client.multiDelete(gone)).every((r) => r.ok));
    const after = await client.multiGet(items.map((i) => i.key));
    after.forEach((r, i) => assert.equal(r.found, i >= 100, `${r.key} found=${r.found}`));

    // The bench's batched gets after its preload see every value it wrote...
    const got = await benchJson([
      "--addr",
      addrs(cluster),
      "--op",
      "get",
      "--batch",
      "50",
      "--ops",
      "40",
      "--keys",
      "500",
      "--preload",
    ]);
    assert.equal(got.ops, 40);
    assert.deepEqual(got.errors, {});
    assert.deepEqual(got.reads, { found: 2000, not_found: 0, mismatched: 0 });
    // ...and what it wrote is the value it defines for each key, byte for byte.
    const benchKeys = Array.from({ length: 500 }, (_, i) => benchKey(i));
    const stored = await client.multiGet(benchKeys);
    stored.forEach((r, i) => {
      assert.equal(r.found, true, `${benchKeys[i]} missing`);
      assert.deepEqual(new Uint8Array(r.value), benchValue(benchKeys[i], 100));
    });

    // On keys nobody wrote, the same run finds nothing: reads are really checked.
    const fresh = await benchJson([
      "--addr",
      addrs(cluster),
      "--op",
      "get",
      "--batch",
      "10",
      "--ops",
      "5",
      "--keys",
      "1000000",
      "--concurrency",
      "1",
    ]);
    assert.equal(fresh.reads.found + fresh.reads.not_found, 50);
    assert.ok(fresh.reads.not_found >= 40, JSON.stringify(fresh.reads));
    assert.equal(fresh.reads.mismatched, 0);

    // A value that is not the one the bench defines for its key counts as mismatched:
    // half of the first 100 keys get another value, and two reads of all 100 see it.
    const wrong = benchKeys.slice(0, 100).filter((_, i) => i % 2 === 0);
    const overwritten = await client.multiPut(
      wrong.map((key) => ({ key, value: `not the bench value of ${key}` })),
    );
    assert.ok(overwritten.every((r) => r.ok));
    const checked = await benchJson([
      "--addr",
      addrs(cluster),
      "--op",
      "get",
      "--batch",
      "100",
      "--ops",
      "2",
      "--keys",
      "100",
      "--concurrency",
      "1",
    ]);
    assert.deepEqual(checked.errors, {});
    assert.deepEqual(checked.reads, { found: 100, not_found: 0, mismatched: 100 });
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 120_000 });

clusterTest(
  "bench --no-route --spread sends the calls round-robin to every node, which forward them",
  async () => {
    const cluster = await activeCluster({ nodes: 3, replicationFactor: 1, logLevel: "debug" });
    try {
      const r = await benchJson([
        ...["--addr", addrs(cluster), "--no-route", "--spread"],
        ...["--op", "put", "--ops", "30", "--concurrency", "1", "--keys", "500"],
      ]);
      assert.equal(r.ops, 30);
      assert.equal(r.error_count, 0);
      for (const n of cluster.nodes) {
        const fromClients = logLines(cluster, n.id, "PUT").filter((l) => logField(l, "via") === "client");
        assert.equal(fromClients.length, 10, `${n.id} took a third of the calls`);
      }
    } finally {
      await cluster.stop();
    }
  },
);
