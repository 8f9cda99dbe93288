/**
 * A single real node process driven over gRPC with the project's client
 * (issue 2): the four operations with their response fields, ListKeys, every
 * kind of bad input, binary values, 50 concurrent clients, a client whose
 * proto declares values as `string`, per-operation debug logs, JSON logs,
 * clean shutdown on SIGTERM and SIGINT, and a node and a client started from
 * a directory other than the repository root.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  clusterTest,
  kvError,
  logLines,
  MAIN,
  runMain,
  sleep,
  TestCluster,
  text,
} from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { kvstorePackage, loadKvstorePackage } from "../lib/grpc/proto.ts";
import { unary } from "../lib/grpc/call.ts";
import { Code, KvError } from "../lib/errors.ts";

const PROTO = new URL("../proto/kvstore.proto", import.meta.url).pathname;

/** A raw KeyValueStore stub, for requests the client library never sends (empty batches). */
function rawKv(address: string): grpc.Client {
  return new (kvstorePackage().KeyValueStore)(address, grpc.credentials.createInsecure());
}

clusterTest("a single node stores, reads, deletes and lists keys with truthful response fields", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  try {
    const client = await cluster.client();
    const address = cluster.node("node1").address;

    const put = await client.put("alpha", "first value");
    assert.equal(put.ok, true);
    assert.equal(put.nodeId, "node1");
    assert.equal(put.replicas, 1);
    assert.ok(put.timestamp > 0, `put timestamp ${put.timestamp}`);

    const got = await client.get("alpha");
    assert.equal(got.found, true);
    assert.equal(text.decode(got.value), "first value");
    assert.equal(got.nodeId, "node1");
    assert.equal(got.timestamp, put.timestamp, "GET answers the version the PUT stored");

    const put2 = await client.put("alpha", "second value");
    assert.ok(put2.timestamp > put.timestamp, "a later write gets a later version");
    assert.equal(text.decode((await client.get("alpha")).value), "second value");

    await client.put("beta", "b");
    await client.put("gamma", "c");
    const page = await client.listKeys(address);
    assert.deepEqual([...page.keys].sort(), ["alpha", "beta", "gamma"]);
    assert.equal(page.count, 3);
    assert.equal(page.nodeId, "node1");

    const del = await client.delete("alpha");
    assert.equal(del.ok, true);
    assert.equal(del.nodeId, "node1");
    assert.equal(del.replicas, 1);
    assert.ok(del.timestamp > put2.timestamp, "the tombstone is newer than the value");

    const after = await client.get("alpha");
    assert.equal(after.found, false);
    assert.equal(after.value.length, 0);
    assert.equal(after.nodeId, "node1");
    const pageAfter = await client.listKeys(address);
    assert.deepEqual([...pageAfter.keys].sort(), ["beta", "gamma"], "ListKeys never shows a deleted key");
    assert.equal(pageAfter.count, 2);

    const missing = await client.get("never-written");
    assert.equal(missing.found, false);

    // A put after the delete brings the key back with a newer version.
    const again = await client.put("alpha", "third");
    assert.ok(again.timestamp > del.timestamp);
    assert.equal(text.decode((await client.get("alpha")).value), "third");
  } finally {
    await cluster.stop();
  }
});

clusterTest("a single node answers each kind of bad input with its status and keeps serving", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  const raw = cluster.closeOnStop(rawKv(cluster.node("node1").address));
  try {
    const client = await cluster.client();
    await client.put("ok-key", "kept");

    const cases: { what: string; call: () => Promise<unknown>; code: number; mentions: RegExp }[] = [
      {
        what: "put with an empty key",
        call: () => client.put("", "v"),
        code: Code.INVALID_ARGUMENT,
        mentions: /empty/,
      },
      {
        what: "get with an empty key",
        call: () => client.get(""),
        code: Code.INVALID_ARGUMENT,
        mentions: /empty/,
      },
      {
        what: "delete with an empty key",
        call: () => client.delete(""),
        code: Code.INVALID_ARGUMENT,
        mentions: /empty/,
      },
      {
        what: "put with a key over 1 KiB",
        call: () => client.put("k".repeat(1025), "v"),
        code: Code.INVALID_ARGUMENT,
        mentions: /1025 bytes.*1024/,
      },
      {
        what: "get with a key over 1 KiB (multi-byte characters)",
        call: () => client.get("é".repeat(513)),
        code: Code.INVALID_ARGUMENT,
        mentions: /1026 bytes/,
      },
      {
        what: "put with a value over 1 MiB",
        call: () => client.put("big", new Uint8Array((1 << 20) + 1)),
        code: Code.RESOURCE_EXHAUSTED,
        mentions: /1048577 bytes.*1048576/,
      },
      {
        what: "put with a negative timestamp",
        call: () => client.put("neg", "v", { timestamp: -5 }),
        code: Code.INVALID_ARGUMENT,
        mentions: /timestamp/,
      },
      {
        what: "an empty MultiPut",
        call: () => unary(raw, "MultiPut", { items: [] }, 5000).catch((e) => Promise.reject(toKv(e))),
        code: Code.INVALID_ARGUMENT,
        mentions: /at least one/,
      },
      {
        what: "an empty MultiGet",
        call: () => unary(raw, "MultiGet", { keys: [] }, 5000).catch((e) => Promise.reject(toKv(e))),
        code: Code.INVALID_ARGUMENT,
        mentions: /at least one/,
      },
      {
        what: "a MultiPut over the batch limit",
        call: () => client.multiPut(Array.from({ length: 10_001 }, (_, i) => ({ key: `b${i}`, value: "x" }))),
        code: Code.RESOURCE_EXHAUSTED,
        mentions: /10001 items.*10000/,
      },
      {
        what: "a MultiDelete over the batch limit",
        call: () => client.multiDelete(Array.from({ length: 10_001 }, (_, i) => `b${i}`)),
        code: Code.RESOURCE_EXHAUSTED,
        mentions: /10001 items/,
      },
    ];
    for (const c of cases) {
      const err = await kvError(c.call);
      assert.equal(err.code, c.code, `${c.what}: status ${err.code} (${err.message})`);
      assert.match(err.message, c.mentions, `${c.what}: message "${err.message}"`);
    }

    // A value of exactly 1 MiB and a key of exactly 1 KiB are accepted.
    const edge = "k".repeat(1024);
    assert.equal((await client.put(edge, new Uint8Array(1 << 20).fill(7))).ok, true);
    const back = await client.get(edge);
    assert.equal(back.value.length, 1 << 20);
    assert.equal(back.value[12345], 7);

    // Inside a batch a bad item fails alone; the good ones are stored.
    const mixed = await client.multiPut([
      { key: "m1", value: "one" },
      { key: "", value: "bad" },
      { key: "m2", value: new Uint8Array((1 << 20) + 1) },
      { key: "m3", value: "three" },
    ]);
    assert.deepEqual(mixed.map((r) => r.ok), [true, false, false, true]);
    assert.equal(mixed[1].code, Code.INVALID_ARGUMENT);
    assert.equal(mixed[2].code, Code.RESOURCE_EXHAUSTED);

    // Nothing bad was stored, and the node still serves.
    assert.equal(text.decode((await client.get("ok-key")).value), "kept");
    assert.equal((await client.get("big")).found, false);
    assert.equal((await client.get("neg")).found, false);
    assert.equal((await client.get("b0")).found, false, "a refused batch stores nothing");
    const keys = (await client.listAllKeys(cluster.node("node1").address)).sort();
    assert.deepEqual(keys, [edge, "m1", "m3", "ok-key"].sort());
    assert.equal((await client.put("after", "still serving")).ok, true);
    // isRunning reads the process: a node that crashed on any of the bad inputs would show here.
    assert.equal(cluster.isRunning("node1"), true);
    assert.deepEqual(cluster.failures(), []);
  } finally {
    await cluster.stop();
  }
});

/** Bytes as a plain Uint8Array (the client hands back Buffers), for deepEqual. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function toKv(err: unknown): KvError {
  const e = err as grpc.ServiceError;
  return new KvError(e.code as never, e.details);
}

clusterTest(
  "ListKeys pages follow their cursors, and a foreign or stale cursor is INVALID_ARGUMENT",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
    try {
      const client = await cluster.client();
      const address = cluster.node("node1").address;
      const keys = Array.from({ length: 25 }, (_, i) => `page-${i}`);
      assert.ok((await client.multiPut(keys.map((key) => ({ key, value: "v" })))).every((r) => r.ok));
      const seen: string[] = [];
      let cursor = "";
      let pages = 0;
      do {
        const page = await client.listKeys(address, { limit: 10, cursor });
        assert.ok(page.keys.length <= 10, `a page holds at most the limit, got ${page.keys.length}`);
        assert.equal(page.count, 25, "count is the node's total, not the page's");
        seen.push(...page.keys);
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== "");
      assert.equal(pages, 3);
      assert.deepEqual(seen.sort(), [...keys].sort());
      for (const bad of ["not-a-cursor", "999999"]) {
        const err = await kvError(() => client.listKeys(address, { cursor: bad }));
        assert.equal(err.code, Code.INVALID_ARGUMENT, `cursor ${bad}: ${err.message}`);
      }
      const negative = await kvError(() => client.listKeys(address, { limit: -1 }));
      assert.equal(negative.code, Code.INVALID_ARGUMENT);
      assert.equal((await client.listKeys(address)).count, 25, "the node still serves");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest("binary values holding all 256 byte values round-trip unchanged", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  try {
    const client = await cluster.client();
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const reversed = all.slice().reverse();
    const invalidUtf8 = Uint8Array.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0x80]);
    await client.put("bin:all", all);
    await client.put("bin:rev", reversed);
    await client.put("bin:bad-utf8", invalidUtf8);
    await client.put("bin:empty", new Uint8Array(0));
    assert.deepEqual(plain((await client.get("bin:all")).value), all);
    assert.deepEqual(plain((await client.get("bin:rev")).value), reversed);
    assert.deepEqual(plain((await client.get("bin:bad-utf8")).value), invalidUtf8);
    const empty = await client.get("bin:empty");
    assert.equal(empty.found, true, "an empty value is a value, not a missing key");
    assert.equal(empty.value.length, 0);
    const batch = await client.multiGet(["bin:all", "bin:rev"]);
    assert.deepEqual(plain(batch[0].value), all);
    assert.deepEqual(plain(batch[1].value), reversed);
  } finally {
    await cluster.stop();
  }
});

clusterTest(
  "50 concurrent clients on shared and distinct keys read only written values and lose no acknowledged write",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
    const address = cluster.node("node1").address;
    const clients: KvClient[] = [];
    try {
      for (let i = 0; i < 50; i++) clients.push(await KvClient.connect([address], { timeoutMs: 15_000 }));
      const SHARED = ["shared:0", "shared:1", "shared:2", "shared:3", "shared:4"];
      const ROUNDS = 20;
      const written = new Map<string, Set<string>>(SHARED.map((k) => [k, new Set()]));
      const lastAcked = new Map<string, string>();
      const badReads: string[] = [];
      let reads = 0;
      let writes = 0;
      const started = Date.now();
      await Promise.all(clients.map(async (c, w) => {
        for (let r = 0; r < ROUNDS; r++) {
          const shared = SHARED[(w + r) % SHARED.length];
          const value = `w${w}-r${r}`;
          // Recorded before the write is sent: a concurrent reader may see it first.
          written.get(shared)!.add(value);
          const own = `own:${w}:${r % 5}`;
          const [a, b] = await Promise.all([c.put(shared, value), c.put(own, value)]);
          assert.ok(a.ok && b.ok);
          writes += 2;
          lastAcked.set(own, value);
          const [g1, g2] = await Promise.all([c.get(SHARED[(w * 7 + r) % SHARED.length]), c.get(own)]);
          reads += 2;
          if (g1.found && !written.get(g1.key)!.has(text.decode(g1.value))) {
            badReads.push(`${g1.key}=${text.decode(g1.value)}`);
          }
          if (!g2.found || text.decode(g2.value) !== value) {
            badReads.push(
              `${own} read back ${g2.found ? text.decode(g2.value) : "nothing"} after writing ${value}`,
            );
          }
        }
      }));
      const ms = Date.now() - started;
      console.log(`50 clients: ${writes} writes and ${reads} reads in ${ms} ms`);
      assert.deepEqual(badReads, [], "every read returns a value some writer wrote");

      // Afterwards, every acknowledged write to a distinct key is there with its last value.
      const keys = [...lastAcked.keys()];
      assert.equal(keys.length, 50 * 5);
      const final = await clients[0].multiGet(keys);
      const wrong = final.filter((r, i) => !r.found || text.decode(r.value) !== lastAcked.get(keys[i]));
      assert.deepEqual(wrong.map((r) => r.key), []);
      for (const k of SHARED) {
        const r = await clients[1].get(k);
        assert.ok(r.found && written.get(k)!.has(text.decode(r.value)), `${k} holds a written value`);
      }
      const listed = await clients[2].listAllKeys(address);
      assert.equal(listed.length, 250 + SHARED.length);
    } finally {
      for (const c of clients) c.close();
      await cluster.stop();
    }
  },
);

clusterTest(
  "a client whose proto declares value as string round-trips UTF-8 text and reads bytes clients' values",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
    try {
      const original = await Deno.readTextFile(PROTO);
      const stringProto = original.replaceAll(/\bbytes value\b/g, "string value");
      assert.notEqual(stringProto, original);
      assert.doesNotMatch(stringProto, /\bbytes value\b/);
      const address = cluster.node("node1").address;
      const textClient = await KvClient.connect([address], { protoText: stringProto });
      const bytesClient = await cluster.client();
      try {
        const samples = {
          "txt:ascii": "plain text",
          "txt:accents": "café, naïve, Zürich",
          "txt:cjk": "日本語のテキスト",
          "txt:emoji": "emoji 🎉🚀 and a zero-width joiner 👩‍💻",
          "txt:ключ": "значение",
        };
        for (const [key, value] of Object.entries(samples)) {
          assert.equal((await textClient.put(key, value)).ok, true);
        }
        for (const [key, value] of Object.entries(samples)) {
          const viaText = await textClient.get(key);
          assert.equal(viaText.found, true);
          assert.equal(typeof viaText.value, "string", "the string proto decodes values as strings");
          assert.equal(viaText.value as unknown as string, value);
          const viaBytes = await bytesClient.get(key);
          assert.deepEqual(
            plain(viaBytes.value),
            text.encode(value),
            "the stored bytes are the UTF-8 of the text",
          );
        }
        await bytesClient.put("txt:from-bytes", text.encode("écrit en octets ✓"));
        const read = await textClient.get("txt:from-bytes");
        assert.equal(read.value as unknown as string, "écrit en octets ✓");

        // A bare stub of the string proto, sending JS strings as existing clients do.
        const pkg = loadKvstorePackage(stringProto);
        const stub = new pkg.KeyValueStore(address, grpc.credentials.createInsecure());
        const put = await unary<{ success: boolean; node_id: string }>(stub, "Put", {
          key: "txt:raw",
          value: "Grüße aus dem Süden — ☀",
        }, 5000);
        assert.equal(put.success, true);
        assert.equal(put.node_id, "node1");
        const got = await unary<{ found: boolean; value: unknown }>(stub, "Get", { key: "txt:raw" }, 5000);
        assert.equal(got.found, true);
        assert.equal(got.value, "Grüße aus dem Süden — ☀");
        assert.equal(text.decode((await bytesClient.get("txt:raw")).value), "Grüße aus dem Süden — ☀");
      } finally {
        textClient.close();
      }
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest("at debug level every operation leaves a log line naming its key", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1, logLevel: "debug" });
  try {
    const client = await cluster.client();
    await client.put("logged-key", "v");
    await client.get("logged-key");
    await client.delete("logged-key");
    await client.get("logged-key");
    await cluster.waitFor(
      () => cluster.logs("node1").split("\n").filter((l) => /\bGET\b.*logged-key/.test(l)).length >= 2,
      5000,
      "the GET log lines",
    );
    const lines = logLines(cluster, "node1", "logged-key");
    assert.equal(lines.filter((l) => /DEBUG.*\bPUT\b/.test(l)).length, 1, lines.join("\n"));
    assert.equal(lines.filter((l) => /DEBUG.*\bDELETE\b/.test(l)).length, 1, lines.join("\n"));
    const gets = lines.filter((l) => /DEBUG.*\bGET\b/.test(l));
    assert.equal(gets.length, 2, lines.join("\n"));
    assert.match(gets[0], /found=true/);
    assert.match(gets[1], /found=false/);
  } finally {
    await cluster.stop();
  }
});

/** A node process this file starts itself, to see its exit code and raw output. */
interface SoloNode {
  child: Deno.ChildProcess;
  port: number;
  output: () => string;
  done: Promise<Deno.CommandStatus>;
}

/** Starts a one-node cluster's node from `cwd` (relative --config) and waits until it answers. */
async function spawnNode(cwd: string, args: string[]): Promise<SoloNode> {
  const port = freePort();
  const config = {
    cluster_name: "solo",
    nodes: [{ id: "solo1", host: "127.0.0.1", port, redis_host: "127.0.0.1", redis_port: 1, admin_port: 0 }],
    replication: { replication_factor: 1 },
    failure_detection: { heartbeat_interval_ms: 200, failure_timeout_ms: 1000 },
    consistent_hashing: { virtual_nodes: 150 },
  };
  await Deno.writeTextFile(`${cwd}/solo.json`, JSON.stringify(config));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "server", String(port), "--config", "solo.json", ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  const pump = (s: ReadableStream<Uint8Array>) =>
    s.pipeThrough(new TextDecoderStream()).pipeTo(new WritableStream({ write: (c) => void chunks.push(c) }));
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const done = pumps.then(() => child.status);
  const output = () => chunks.join("");
  const deadline = Date.now() + 30_000;
  while (true) {
    const probe = await KvClient.connect([`127.0.0.1:${port}`], { route: false, timeoutMs: 500 });
    try {
      await probe.membership();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await done;
        throw new Error(`node did not start:\n${output()}`);
      }
      await sleep(100);
    } finally {
      probe.close();
    }
  }
  return { child, port, output, done };
}

/** Runs `fn` with a node spawned in a fresh temp dir, then kills the node (if running) and removes the dir. */
async function withSoloNode(
  prefix: string,
  args: string[],
  fn: (node: SoloNode) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  const node = await spawnNode(dir, args);
  try {
    await fn(node);
  } finally {
    try {
      node.child.kill("SIGKILL");
    } catch { /* already exited */ }
    await node.done;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Waits for a process to exit, killing it if it does not within `ms`. */
async function exitWithin(p: { child: Deno.ChildProcess; done: Promise<Deno.CommandStatus> }, ms: number) {
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  try {
    return await p.done;
  } finally {
    clearTimeout(timer);
  }
}

clusterTest("a node started with --log-format json writes every log line as a JSON object", async () => {
  await withSoloNode("kvstore-json-", ["--log-format", "json", "--log-level", "debug"], async (node) => {
    const client = await KvClient.connect([`127.0.0.1:${node.port}`], { route: false });
    await client.put("json-key", "v");
    await client.get("json-key");
    client.close();
    node.child.kill("SIGTERM");
    const status = await exitWithin(node, 10_000);
    assert.equal(status.code, 0);
    const lines = node.output().split("\n").filter((l) => l.trim() !== "");
    assert.ok(lines.length >= 4, node.output());
    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
    for (const p of parsed) {
      assert.equal(typeof p.time, "string");
      assert.ok(["debug", "info", "warn", "error"].includes(p.level), JSON.stringify(p));
      assert.equal(p.node, "solo1");
      assert.equal(typeof p.msg, "string");
    }
    assert.ok(parsed.some((p) => p.msg === "PUT" && p.key === "json-key" && p.level === "debug"));
    assert.ok(parsed.some((p) => p.msg === "GET" && p.key === "json-key" && p.found === true));
    assert.ok(parsed.some((p) => /listening/.test(p.msg)));
    assert.ok(parsed.some((p) => p.msg === "stopped"));
  });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  clusterTest(`${signal} shuts a node down cleanly with exit code 0`, async () => {
    await withSoloNode("kvstore-signal-", [], async (node) => {
      const client = await KvClient.connect([`127.0.0.1:${node.port}`], { route: false, timeoutMs: 2000 });
      await client.put("k", "v");
      node.child.kill(signal);
      const started = Date.now();
      const status = await exitWithin(node, 10_000);
      console.log(`${signal}: exited with code ${status.code} after ${Date.now() - started} ms`);
      assert.equal(status.signal, null, `killed by ${status.signal}, not a clean exit:\n${node.output()}`);
      assert.equal(status.code, 0, node.output());
      assert.match(node.output(), new RegExp(`received ${signal}; shutting down`));
      assert.match(node.output(), /\bstopped\b/);
      const err = await kvError(() => client.get("k"));
      assert.equal(err.code, Code.UNAVAILABLE, "the port is closed after shutdown");
      client.close();
    });
  });
}

clusterTest("SIGTERM through the test cluster stops a node and logs that it stopped", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  try {
    await cluster.signal("node1", "SIGTERM");
    assert.equal(cluster.isRunning("node1"), false);
    // The harness records a stop that did not end with exit code 0 (a crash while stopping).
    assert.deepEqual(cluster.failures(), [], "node1 did not exit cleanly");
    assert.match(cluster.logs("node1"), /received SIGTERM; shutting down/);
    assert.match(cluster.logs("node1"), /\bstopped\b/);
  } finally {
    await cluster.stop();
  }
});

clusterTest(
  "main.ts started from a directory other than the repository root serves, and so does its client",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-cwd-" });
    assert.notEqual(dir, Deno.cwd());
    const node = await spawnNode(dir, []);
    try {
      const addr = `127.0.0.1:${node.port}`;
      const put = await runMain(dir, "client", "put", "cwd-key", "from elsewhere", "--addr", addr);
      assert.equal(put.code, 0, put.stderr + put.stdout);
      const get = await runMain(dir, "client", "get", "cwd-key", "--addr", addr, "--json");
      assert.equal(get.code, 0, get.stderr);
      assert.equal(JSON.parse(get.stdout).value, "from elsewhere");
      const help = await runMain(dir, "server", "--help");
      assert.equal(help.code, 0);
      assert.match(help.stdout, /kvstore server/);
      // The node itself was started with cwd = the temp dir and a relative --config.
      assert.match(node.output(), /listening/);
      assert.deepEqual(
        Buffer.from(
          await (async () => {
            const c = await KvClient.connect([addr], { route: false });
            try {
              return (await c.get("cwd-key")).value;
            } finally {
              c.close();
            }
          })(),
        ).toString(),
        "from elsewhere",
      );
    } finally {
      node.child.kill("SIGTERM");
      await exitWithin(node, 10_000);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

clusterTest(
  "--clock-offset-ms runs the node's write clock ahead by that much; a bad value exits 2",
  async () => {
    const offsetMs = 600_000;
    await withSoloNode("kvstore-clock-", ["--clock-offset-ms", String(offsetMs)], async (node) => {
      const client = await KvClient.connect([`127.0.0.1:${node.port}`], { route: false, timeoutMs: 2000 });
      const before = Date.now();
      const put = await client.put("skewed", "v");
      const after = Date.now();
      client.close();
      const versionMs = put.timestamp / 1000;
      console.log(`version ${versionMs - after} ms ahead of the wall clock (offset ${offsetMs} ms)`);
      assert.ok(versionMs >= before + offsetMs && versionMs <= after + offsetMs + 1, `version ${versionMs}`);
      assert.match(node.output(), /clock offset/);
    });
    const dir = await Deno.makeTempDir({ prefix: "kvstore-clock-bad-" });
    try {
      const bad = await runMain(dir, "server", "--clock-offset-ms", "soon");
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--clock-offset-ms must be a number/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
