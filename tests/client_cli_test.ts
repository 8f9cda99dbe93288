/**
 * The command-line client (`main.ts client ...`) as scripts run it: a
 * subprocess started from a temporary directory, against a test cluster of
 * three real nodes. The demonstration, exit codes 0 / 1 / 2, `--json`,
 * `status`, `list`, `--help` of each mode and unknown flags.
 */
import assert from "node:assert/strict";
import {
  clusterTest,
  keysPlacedOn,
  MAIN,
  type MainRun,
  ringOf,
  runMain,
  TestCluster,
} from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";

function show(r: MainRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** A three-node cluster (every node ACTIVE) and a scratch working directory for the CLI. */
/** `runMain`, but a process still running after `ms` is killed (SIGKILL) rather than waited for. */
async function runMainWithin(ms: number, cwd: string, ...args: string[]): Promise<MainRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const out = await child.output();
  clearTimeout(timer);
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function withCluster(
  fn: (cluster: TestCluster, cwd: string) => Promise<void>,
  extra?: Record<string, Record<string, unknown>>,
): Promise<void> {
  const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2, extra });
  const cwd = await Deno.makeTempDir({ prefix: "kvstore-cli-" });
  try {
    await fn(cluster, cwd);
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
}

clusterTest(
  "the client demonstration prints its four steps and exits 0 through node 1 and node 2",
  async () => {
    await withCluster(async (cluster, cwd) => {
      for (const id of ["node1", "node2"]) {
        const node = cluster.node(id);
        const viaAddr = await runMain(cwd, "client", "--addr", node.address);
        const viaPort = await runMain(cwd, "client", "--node-port", String(node.port));
        for (const r of [viaAddr, viaPort]) {
          assert.equal(r.code, 0, show(r));
          assert.match(r.stdout, new RegExp(`connected to 127\\.0\\.0\\.1:${node.port} \\(${id}, `), show(r));
          const steps = r.stdout.split("\n").filter((l) => /^(PUT|GET|DELETE) demo:greeting/.test(l));
          assert.equal(steps.length, 4, show(r));
          assert.match(steps[0], /^PUT demo:greeting: ok/);
          assert.match(steps[1], /^GET demo:greeting: "hello from kvstore/);
          assert.match(steps[2], /^DELETE demo:greeting: ok/);
          assert.match(steps[3], /^GET demo:greeting: not found/);
          assert.match(r.stdout, /demonstration OK/);
        }
        // The demonstration leaves nothing behind.
        const client = await cluster.client();
        assert.equal((await client.get("demo:greeting")).found, false);
      }
      // With --json each step is one JSON object.
      const json = await runMain(
        cwd,
        "client",
        "--addr",
        cluster.node("node2").address,
        "--json",
        "--no-route",
      );
      assert.equal(json.code, 0, show(json));
      const objs = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(objs.map((o) => o.op), ["PUT", "GET", "DELETE", "GET"]);
      assert.equal(objs[1].found, true);
      assert.equal(objs[3].found, false);
    });
  },
);

clusterTest(
  "client put --ttl, ttl, expire and persist: the time left, changed, removed; a past ttl reads as gone; UNAVAILABLE explained",
  async () => {
    await withCluster(async (cluster, cwd) => {
      const addr = cluster.node("node1").address;
      const run = async (...args: string[]) =>
        await runMain(cwd, "client", ...args, "--addr", addr, "--json");
      // expire and persist are conditional writes: fresh memory nodes vote 2 × max_clock_skew_ms after their start.
      await cluster.waitFor(
        async () => (await run("incr", "cli:warmup")).code === 0 && (await run("incr", "cli:ttl")).code === 0,
        10_000,
        "conditional writes",
      );
      const ttlOf = async (key: string) => {
        const r = await run("ttl", key);
        return { code: r.code, ttl: r.code === 0 ? JSON.parse(r.stdout).ttl_ms as number : undefined, r };
      };

      const put = await run("put", "cli:ttl", "v", "--ttl", "30s");
      assert.equal(put.code, 0, show(put));
      const t1 = await ttlOf("cli:ttl");
      assert.equal(t1.code, 0, show(t1.r));
      assert.ok(t1.ttl! > 0 && t1.ttl! <= 30_000, `ttl_ms ${t1.ttl}`);
      const get = await run("get", "cli:ttl");
      assert.ok(JSON.parse(get.stdout).expires_at_ms > 0, show(get));

      const persist = await run("persist", "cli:ttl");
      assert.equal(persist.code, 0, show(persist));
      assert.equal(JSON.parse(persist.stdout).outcome, "applied", show(persist));
      assert.equal((await ttlOf("cli:ttl")).ttl, -1, "no expiry after persist");
      const text = await runMain(cwd, "client", "ttl", "cli:ttl", "--addr", addr);
      assert.match(text.stdout, /TTL cli:ttl: no expiry/);
      const again = await runMain(cwd, "client", "persist", "cli:ttl", "--addr", addr);
      assert.equal(again.code, 0, show(again));
      assert.match(again.stdout, /PERSIST cli:ttl: no expiry \(nothing written\)/);

      const expire = await runMain(cwd, "client", "expire", "cli:ttl", "10m", "--addr", addr);
      assert.equal(expire.code, 0, show(expire));
      assert.match(
        expire.stdout,
        /EXPIRE cli:ttl: applied, expires in 600000 ms \(node node\d, version \d+@node\d\)/,
      );
      const t2 = (await ttlOf("cli:ttl")).ttl!;
      assert.ok(t2 > 30_000 && t2 <= 600_000, `ttl_ms ${t2} after expire 10m`);

      assert.equal((await run("expire", "cli:ttl", "300ms")).code, 0);
      await cluster.waitFor(
        async () => (await run("get", "cli:ttl")).code === 1,
        10_000,
        "cli:ttl to expire",
      );
      assert.equal((await ttlOf("cli:ttl")).code, 1, "ttl of an expired key: not found");
      const missing = await runMain(cwd, "client", "expire", "cli:ttl", "10m", "--addr", addr);
      assert.equal(missing.code, 1, `expire of a missing key writes nothing: ${show(missing)}`);
      assert.match(missing.stdout, /EXPIRE cli:ttl: not found \(nothing to expire\)/);
      assert.equal((await run("get", "cli:ttl")).code, 1);

      // With one of a key's 2 replicas down, a conditional write cannot get its majority. node2
      // coordinates the key, so it holds the value however soon node3 is killed.
      const ring = ringOf(cluster);
      const key = Array.from({ length: 100 }, (_, i) => `cli:down:${i}`)
        .find((k) => ring.preferenceList(k, 2).join() === "node2,node3")!;
      assert.equal((await run("put", key, "v")).code, 0);
      await cluster.kill("node3");
      const down = await runMain(cwd, "client", "expire", key, "10m", "--addr", addr, "--no-route");
      assert.equal(down.code, 2, show(down));
      assert.match(
        down.stdout + down.stderr,
        /UNAVAILABLE: .*EXPIRE is a conditional write: it needs a majority/,
      );

      for (const bad of ["0", "-5s", "10x", "1.5s"]) {
        const r = await runMain(cwd, "client", "put", "cli:bad", "v", `--ttl=${bad}`, "--addr", addr);
        assert.equal(r.code, 2, show(r));
        assert.match(r.stderr + r.stdout, /--ttl must be a positive duration/);
      }
    }, { limits: { max_clock_skew_ms: 1000 } });
  },
);

clusterTest("client put, get and delete exit 0 when done, 1 when not found and 2 on errors", async () => {
  await withCluster(async (cluster, cwd) => {
    const addr = cluster.node("node1").address;
    const ring = ringOf(cluster);

    const put = await runMain(cwd, "client", "put", "cli:key", "some value", "--addr", addr);
    assert.equal(put.code, 0, show(put));
    assert.match(put.stdout, /PUT cli:key: ok/);

    const get = await runMain(cwd, "client", "get", "cli:key", "--addr", addr);
    assert.equal(get.code, 0, show(get));
    assert.match(get.stdout, /"some value"/);

    const getJson = await runMain(cwd, "client", "get", "cli:key", "--addr", addr, "--json", "--no-route");
    assert.equal(getJson.code, 0, show(getJson));
    const g = JSON.parse(getJson.stdout);
    assert.equal(g.op, "GET");
    assert.equal(g.key, "cli:key");
    assert.equal(g.found, true);
    assert.equal(g.value, "some value");
    assert.equal(g.node, ring.owner("cli:key"), "the owner answered (forwarded by node1)");
    assert.ok(Number.isSafeInteger(g.timestamp) && g.timestamp > 0);

    const putJson = await runMain(cwd, "client", "put", "cli:json", "v2", "--addr", addr, "--json");
    assert.equal(putJson.code, 0, show(putJson));
    const p = JSON.parse(putJson.stdout);
    assert.equal(p.op, "PUT");
    assert.equal(p.key, "cli:json");
    assert.equal(p.success, true);
    assert.equal(p.node, ring.owner("cli:json"));
    assert.ok(p.replicas >= 1);
    assert.ok(p.timestamp > 0);

    // An explicit older timestamp is not applied: exit 2, with the reason.
    const older = await runMain(
      cwd,
      "client",
      "put",
      "cli:json",
      "stale",
      "--timestamp",
      "1",
      "--addr",
      addr,
      "--json",
    );
    assert.equal(older.code, 2, show(older));
    assert.equal(JSON.parse(older.stdout).success, false);
    assert.match(JSON.parse(older.stdout).message, /not applied/);

    const del = await runMain(cwd, "client", "delete", "cli:key", "--addr", addr, "--json");
    assert.equal(del.code, 0, show(del));
    const d = JSON.parse(del.stdout);
    assert.equal(d.op, "DELETE");
    assert.equal(d.success, true);

    const gone = await runMain(cwd, "client", "get", "cli:key", "--addr", addr);
    assert.equal(gone.code, 1, show(gone));
    assert.match(gone.stdout, /not found/);
    const goneJson = await runMain(cwd, "client", "get", "cli:key", "--addr", addr, "--json");
    assert.equal(goneJson.code, 1, show(goneJson));
    assert.equal(JSON.parse(goneJson.stdout).found, false);
    assert.equal(JSON.parse(goneJson.stdout).value, null);

    const empty = await runMain(cwd, "client", "put", "", "v", "--addr", addr, "--json");
    assert.equal(empty.code, 2, show(empty));
    assert.equal(JSON.parse(empty.stdout).error, "INVALID_ARGUMENT");
    assert.match(JSON.parse(empty.stdout).message, /empty/);
    const emptyGet = await runMain(cwd, "client", "get", "", "--addr", addr);
    assert.equal(emptyGet.code, 2, show(emptyGet));
    assert.match(emptyGet.stdout + emptyGet.stderr, /INVALID_ARGUMENT/);

    const dead = `127.0.0.1:${freePort()}`;
    const started = Date.now();
    const unreachable = await runMain(cwd, "client", "get", "x", "--addr", dead, "--timeout", "2000");
    console.log(`unreachable address: exit ${unreachable.code} after ${Date.now() - started} ms`);
    assert.equal(unreachable.code, 2, show(unreachable));
    assert.match(unreachable.stdout + unreachable.stderr, /UNAVAILABLE/);
    assert.ok(unreachable.stdout.includes(dead) || unreachable.stderr.includes(dead), show(unreachable));

    const missingArg = await runMain(cwd, "client", "put", "only-key", "--addr", addr);
    assert.equal(missingArg.code, 2, show(missingArg));
    assert.match(missingArg.stderr, /usage: client put KEY VALUE/);

    const badAddr = await runMain(cwd, "client", "get", "k", "--addr", "nowhere");
    assert.equal(badAddr.code, 2, show(badAddr));
    assert.match(badAddr.stderr, /"nowhere" is not host:port/);
  });
});

clusterTest(
  "client status --watch refreshes the table every second (--count bounds it)",
  async () => {
    await withCluster(async (cluster, cwd) => {
      const addr = cluster.node("node1").address;
      const t0 = Date.now();
      const json = await runMain(
        cwd,
        "client",
        "status",
        "--addr",
        addr,
        "--watch",
        "--count",
        "3",
        "--json",
      );
      const ms = Date.now() - t0;
      assert.equal(json.code, 0, show(json));
      const refreshes = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(refreshes.length, 3);
      for (const r of refreshes) {
        assert.deepEqual(r.nodes.map((n: { node: string }) => n.node), ["node1", "node2", "node3"]);
      }
      console.log(`  3 refreshes in ${ms} ms (one per second)`);
      assert.ok(ms >= 2 * 1000, "two 1 s pauses between three refreshes");
      const text = await runMain(cwd, "client", "status", "--addr", addr, "--watch", "--count", "2");
      assert.equal(text.code, 0, show(text));
      assert.equal(text.stdout.match(/^NODE\s+ADDRESS\s+STATUS/gm)?.length, 2, text.stdout);
      assert.equal(text.stdout.match(/\(every 1 s; Ctrl\+C stops\)/g)?.length, 2);
      const bad = await runMain(cwd, "client", "status", "--addr", addr, "--count", "0");
      assert.equal(bad.code, 2, show(bad));
    });
  },
);

clusterTest(
  "client status shows every node with its status and client list shows a node's keys",
  async () => {
    await withCluster(async (cluster, cwd) => {
      const addr = cluster.node("node3").address;
      const status = await runMain(cwd, "client", "status", "--addr", addr);
      assert.equal(status.code, 0, show(status));
      for (const n of cluster.nodes) {
        assert.match(
          status.stdout,
          new RegExp(`^${n.id}\\s+${n.address.replaceAll(".", "\\.")}\\s+ACTIVE\\s`, "m"),
        );
      }
      assert.match(status.stdout, /NODE\s+ADDRESS\s+STATUS\s+KEYS\s+RING/);
      assert.match(status.stdout, /as node3 sees it/);
      assert.match(status.stdout, /membership epoch 0, claimant node1\)/);
      assert.match(status.stdout, /no range movement under way/);

      const statusJson = await runMain(cwd, "client", "status", "--addr", addr, "--json");
      assert.equal(statusJson.code, 0, show(statusJson));
      const s = JSON.parse(statusJson.stdout);
      assert.equal(s.responder, "node3");
      assert.deepEqual(s.nodes.map((n: { node: string }) => n.node), ["node1", "node2", "node3"]);
      assert.ok(s.nodes.every((n: { status: string }) => n.status === "ACTIVE"));
      const share = s.nodes.reduce((a: number, n: { ring_share: number }) => a + n.ring_share, 0);
      assert.ok(Math.abs(share - 1) < 1e-9, `ring shares sum to ${share}`);

      // Keys land on their owners and replicas; `list` shows what the contacted node holds.
      const client = await cluster.client();
      const keys = Array.from({ length: 30 }, (_, i) => `list:${i}`);
      for (const k of keys) await client.put(k, "v");
      const ring = ringOf(cluster);
      await cluster.waitFor(
        async () => {
          for (const n of cluster.nodes) {
            const expected = keysPlacedOn(ring, keys, n.id, 2);
            if ((await client.listAllKeys(n.address)).length !== expected.length) return false;
          }
          return true;
        },
        10_000,
        "replication of the listed keys",
      );
      for (const n of cluster.nodes) {
        const expected = keysPlacedOn(ring, keys, n.id, 2).sort();
        const list = await runMain(cwd, "client", "list", "--addr", n.address);
        assert.equal(list.code, 0, show(list));
        assert.deepEqual(list.stdout.trim().split("\n").sort(), expected);
        const listJson = await runMain(cwd, "client", "list", "--node-port", String(n.port), "--json");
        const l = JSON.parse(listJson.stdout);
        assert.equal(l.count, expected.length);
        assert.deepEqual([...l.keys].sort(), expected);
      }
    });
  },
);

clusterTest("every mode answers --help, and unknown flags or modes exit 2 with a clear message", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "kvstore-cli-" });
  try {
    const nowhere = `127.0.0.1:${freePort()}`;
    const top = await runMain(cwd, "--help");
    assert.equal(top.code, 0, show(top));
    assert.match(top.stdout, /kvstore server/);
    assert.match(top.stdout, /kvstore client/);

    const server = await runMain(cwd, "server", "--help");
    assert.equal(server.code, 0, show(server));
    assert.match(server.stdout, /--config FILE/);
    assert.match(server.stdout, /--log-format/);

    const client = await runMain(cwd, "client", "--help");
    assert.equal(client.code, 0, show(client));
    assert.match(client.stdout, /put KEY VALUE/);
    assert.match(client.stdout, /Exit codes: 0 ok or found, 1 not found, 2 error/);
    const clientShort = await runMain(cwd, "client", "-h");
    assert.equal(clientShort.code, 0);
    assert.equal(clientShort.stdout, client.stdout);

    const unknownClientFlag = await runMain(cwd, "client", "get", "k", "--frobnicate", "--addr", nowhere);
    assert.equal(unknownClientFlag.code, 2, show(unknownClientFlag));
    assert.match(unknownClientFlag.stderr, /^error: .*--frobnicate/m);
    assert.doesNotMatch(unknownClientFlag.stderr, /\bat .*\.ts:\d+/, "no stack trace for a user error");

    const unknownServerFlag = await runMain(cwd, "server", "--prot", "9");
    assert.equal(unknownServerFlag.code, 2, show(unknownServerFlag));
    assert.match(unknownServerFlag.stderr, /^error: .*--prot/m);

    const unknownCommand = await runMain(cwd, "client", "frob", "--addr", nowhere);
    assert.equal(unknownCommand.code, 2, show(unknownCommand));
    assert.match(unknownCommand.stderr, /unknown client command "frob"/);

    const unknownMode = await runMain(cwd, "serve");
    assert.equal(unknownMode.code, 2, show(unknownMode));
    assert.match(unknownMode.stderr, /unknown mode "serve"/);

    const badTimeout = await runMain(cwd, "client", "get", "k", "--timeout", "soon", "--addr", nowhere);
    assert.equal(badTimeout.code, 2, show(badTimeout));
    assert.match(badTimeout.stderr, /--timeout must be/);

    // A valid cluster file, so the level is the only thing wrong: were it not
    // checked, the node would start serving (and be stopped after 15 s).
    const configPath = `${cwd}/cluster.json`;
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({
        nodes: [{ id: "node1", host: "127.0.0.1", port: freePort(), redis_host: "127.0.0.1", redis_port: 1 }],
        replication: { replication_factor: 1 },
      }),
    );
    const badLevel = await runMainWithin(
      15_000,
      cwd,
      "server",
      "--log-level",
      "loud",
      "--config",
      configPath,
    );
    assert.equal(badLevel.code, 2, show(badLevel));
    assert.match(badLevel.stderr, /^error: --log-level must be debug, info, warn or error, not "loud"/m);
    const badFormat = await runMainWithin(
      15_000,
      cwd,
      "server",
      "--log-format",
      "xml",
      "--config",
      configPath,
    );
    assert.equal(badFormat.code, 2, show(badFormat));
    assert.match(badFormat.stderr, /^error: --log-format must be text or json, not "xml"/m);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
