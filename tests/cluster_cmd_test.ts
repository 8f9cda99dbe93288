/**
 * `main.ts cluster`: the one command that runs a local cluster starts every
 * node as its own process, says when they are up, reports a node that dies,
 * and stops everything it started on SIGTERM.
 */
import assert from "node:assert/strict";
import { clusterTest, MAIN, sleep, text } from "./helpers/cluster.ts";
import { freePort, freePortRun } from "./helpers/ports.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { redisServerPath } from "../lib/redis_server.ts";

const redisAvailable = redisServerPath() !== undefined;

interface RunningCluster {
  child: Deno.ChildProcess;
  lines: string[];
  dir: string;
  ports: number[];
  /** The `nth` (1-based) line matching `re`, once it has been printed. */
  waitForLine(re: RegExp, ms: number, nth?: number): Promise<RegExpMatchArray>;
  pids(): number[];
}

async function startClusterCommand(
  extraArgs: string[],
  redisPorts?: number[],
  ports = [freePort(), freePort(), freePort()],
): Promise<RunningCluster> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-cluster-cmd-" });
  const config = {
    cluster_name: "cmd-test",
    nodes: ports.map((port, i) => ({
      id: `node${i + 1}`,
      host: "127.0.0.1",
      port,
      redis_host: "127.0.0.1",
      redis_port: redisPorts?.[i] ?? 1,
      admin_port: ports.length === 1 ? 0 : freePort(),
      resp_port: ports.length === 1 ? 0 : freePort(),
    })),
    replication: { replication_factor: 2 },
    // Nodes start a second or more apart on a loaded machine: the cold-start
    // window (failure_timeout_ms) must cover that for a quiet start.
    failure_detection: { heartbeat_interval_ms: 200, failure_timeout_ms: 5000 },
    consistent_hashing: { virtual_nodes: 150 },
  };
  await Deno.writeTextFile(`${dir}/cluster.json`, JSON.stringify(config));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "cluster",
      "--config",
      "cluster.json",
      "--data-dir",
      "data",
      ...extraArgs,
    ],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = (s: ReadableStream<Uint8Array>) =>
    s.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (c) => void lines.push(...c.split("\n").filter((l) => l)) }),
    );
  pump(child.stdout).catch(() => {});
  pump(child.stderr).catch(() => {});
  return {
    child,
    lines,
    dir,
    ports,
    async waitForLine(re, ms, nth = 1) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const matches = lines.map((l) => l.match(re)).filter((m) => m !== null);
        if (matches.length >= nth) return matches[nth - 1];
        await sleep(50);
      }
      throw new Error(`no line matching ${re} within ${ms} ms:\n${lines.join("\n")}`);
    },
    pids() {
      return lines.flatMap((l) => [...l.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1])));
    },
  };
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

async function stopAndCheck(c: RunningCluster): Promise<void> {
  const pids = c.pids();
  try {
    c.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const status = await c.child.status;
  assert.equal(status.code, 0, `cluster command exit code\n${c.lines.join("\n")}`);
  assert.ok(c.lines.some((l) => l.includes("[cluster] all stopped")));
  for (const pid of pids) {
    assert.equal(alive(pid), false, `process ${pid} still running after the cluster stopped`);
  }
  await Deno.remove(c.dir, { recursive: true }).catch(() => {});
}

/** Kills whatever is left, if an assertion failed before stopAndCheck. */
function cleanup(c: RunningCluster): void {
  for (const pid of [c.child.pid, ...c.pids()]) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** Runs `fn` on a started cluster command, then stops it and checks that everything it started is gone. */
async function withClusterCommand(
  extraArgs: string[],
  fn: (c: RunningCluster) => Promise<void>,
  redisPorts?: number[],
  ports?: number[],
): Promise<void> {
  const c = await startClusterCommand(extraArgs, redisPorts, ports);
  try {
    await fn(c);
    await stopAndCheck(c);
  } finally {
    cleanup(c);
  }
}

/** Puts `key` through the node on `port` and reads the value back. */
async function assertPutGet(port: number, key: string, value: string): Promise<void> {
  const client = await KvClient.connect([`127.0.0.1:${port}`]);
  try {
    assert.equal((await client.put(key, value)).ok, true);
    assert.equal(text.decode((await client.get(key)).value), value);
  } finally {
    client.close();
  }
}

clusterTest(
  "the cluster command starts every node, prefixes their logs and stops them all on SIGTERM",
  async () => {
    let secretFile = "";
    await withClusterCommand([], async (c) => {
      await c.waitForLine(/cluster "cmd-test" is up: 3 nodes/, 60_000);
      for (const id of ["node1", "node2", "node3"]) {
        assert.ok(
          c.lines.some((l) => l.startsWith(`[${id}] `) && l.includes("listening")),
          `${id} log prefixed`,
        );
      }
      await assertPutGet(c.ports[1], "via-cluster-command", "yes");
      // Each node's Redis protocol gateway is printed, and serves the same keys.
      const [, respPort] = await c.waitForLine(
        /\[cluster\]\s+node3 .*Redis protocol: redis-cli -p (\d+)/,
        1000,
      );
      const cli = await new Deno.Command("redis-cli", {
        args: ["-p", respPort, "GET", "via-cluster-command"],
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(cli.stdout).trim(), "yes");
      // A healthy cold start says nothing alarming (nodes start a little apart). The
      // cluster file sets no secret, so the command made one for the run: no node says
      // its node traffic is open.
      [, secretFile] = await c.waitForLine(/secret made for this run: (\S+)/, 1000);
      assert.equal((await Deno.stat(secretFile)).mode! & 0o077, 0, "secret readable by its owner only");
      assert.deepEqual(
        c.lines.filter((l) => / (WARN|ERROR) /.test(l) || l.includes("Resolution note")),
        [],
      );
    });
    await assert.rejects(Deno.stat(secretFile), Deno.errors.NotFound, "the run's secret is removed on stop");
  },
  { timeoutMs: 90_000 },
);

clusterTest(
  "the cluster command says so when one of its nodes dies",
  () =>
    withClusterCommand([], async (c) => {
      await c.waitForLine(/^\[cluster\] cluster "[^"]*" is up/, 60_000);
      const [, pid] = await c.waitForLine(/started node2 \(pid (\d+)\)/, 1000);
      Deno.kill(Number(pid), "SIGKILL");
      await c.waitForLine(new RegExp(`node2 \\(pid ${pid}\\) exited`), 10_000);
    }),
  { timeoutMs: 90_000 },
);

clusterTest(
  "the cluster command with --redis starts one redis-server per node and stops them too",
  async () => {
    if (!redisAvailable) throw new Error("redis-server is required in CI: apt-get install -y redis-server");
    const redisPorts = [freePort(), freePort(), freePort()];
    await withClusterCommand(["--redis"], async (c) => {
      await c.waitForLine(/is up: 3 nodes, storage redis/, 60_000);
      assert.equal(c.lines.filter((l) => l.includes("redis-server for")).length, 3);
      await assertPutGet(c.ports[0], "in-redis", "durable");
    }, redisPorts);
  },
  { timeoutMs: 90_000, ignore: !redisAvailable && !Deno.env.get("CI") },
);

/** The `[cluster] ERROR` report of a crash of `id` (pid `pid`), once printed in full. */
async function crashReport(c: RunningCluster, id: string, pid: string, signal: string): Promise<string[]> {
  const head = new RegExp(
    `^\\[cluster\\] ERROR ${id} \\(pid ${pid}\\) CRASHED \\(exit code \\d+, signal ${signal}\\)\\. ` +
      `A node must never crash: this is a bug`,
  );
  await c.waitForLine(head, 10_000);
  await c.waitForLine(new RegExp(`^\\[cluster\\] ERROR starting ${id} again`), 10_000);
  const from = c.lines.findIndex((l) => head.test(l));
  const to = c.lines.findIndex((l, i) => i > from && l.startsWith(`[cluster] ERROR starting ${id} again`));
  return c.lines.slice(from, to + 1);
}

clusterTest(
  "the cluster command reports each crash of a node as an ERROR with its status and last lines, and restarts it",
  () =>
    withClusterCommand([], async (c) => {
      await c.waitForLine(/^\[cluster\] cluster "[^"]*" is up/, 60_000);
      // Twice: it keeps restarting. (SIGABRT, as nghttp2's assertion raises; V8 ignores a SIGSEGV sent by kill.)
      for (const n of [1, 2]) {
        const [, pid] = await c.waitForLine(/started node3 \(pid (\d+)\)/, 10_000, n);
        await c.waitForLine(/^\[node3\] .*recovery finished/, 30_000, n);
        Deno.kill(Number(pid), "SIGABRT");
        const report = await crashReport(c, "node3", pid, "SIGABRT");
        console.log(report.join("\n"));
        const tail = report.filter((l) => l.startsWith("[cluster] ERROR   | "));
        assert.ok(tail.length > 0 && tail.length <= 20, `${tail.length} log lines in the report`);
        for (const l of tail) {
          const own = `[node3] ${l.slice("[cluster] ERROR   | ".length)}`;
          assert.ok(c.lines.includes(own), `not a line node3 printed: ${l}`);
        }
        assert.match(report.at(-1)!, new RegExp(`crash ${n} in the last 60 s`));
        const [, again] = await c.waitForLine(/started node3 \(pid (\d+)\)/, 10_000, n + 1);
        assert.notEqual(again, pid);
      }
      await c.waitForLine(/^\[node3\] .*recovery finished/, 30_000, 3);
      const client = await KvClient.connect([`127.0.0.1:${c.ports[2]}`], { route: false });
      try {
        assert.equal((await client.put("after-crash", "ok")).ok, true);
      } finally {
        client.close();
      }
    }),
  { timeoutMs: 120_000 },
);

clusterTest(
  "cluster --nodes 4 starts four nodes on consecutive ports from the file's first, all serving",
  () => {
    const base = freePortRun(4);
    return withClusterCommand(
      ["--nodes", "4"],
      async (c) => {
        await c.waitForLine(/cluster "cmd-test" is up: 4 nodes/, 60_000);
        const client = await KvClient.connect([`127.0.0.1:${base + 3}`], { route: false });
        try {
          const m = await client.membership();
          assert.deepEqual(
            m.members.map((n) => [n.id, n.address, n.status]),
            [0, 1, 2, 3].map((i) => [`node${i + 1}`, `127.0.0.1:${base + i}`, "ACTIVE"]),
          );
        } finally {
          client.close();
        }
        await assertPutGet(base + 2, "four-nodes", "yes");
      },
      undefined,
      [base],
    );
  },
  { timeoutMs: 90_000 },
);
