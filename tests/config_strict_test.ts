/**
 * Real processes meeting a setting they do not know: a node started from a
 * cluster file with a mistyped key, or with a mistyped flag, refuses to start
 * and says what it meant (exit 2); a node joining with `--join` through a peer
 * that sends settings it does not know (a newer version) warns and starts.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  clusterTest,
  endCluster,
  logLines,
  MAIN,
  type MainRun,
  TestCluster,
  text,
} from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { type FakeNode, fakeNodeService } from "./helpers/fake_node.ts";
import { freePort } from "./helpers/ports.ts";

const show = (r: MainRun) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

/** `main.ts ARGS` from `cwd`, killed after 20 s: a server that wrongly starts fails the test, not hangs it. */
async function runServer(cwd: string, ...args: string[]): Promise<MainRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "server", ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

clusterTest(
  "a cluster file or flag naming an unknown setting stops the server with exit 2 and a hint",
  async () => {
    const cwd = await Deno.makeTempDir({ prefix: "kvstore-strict-" });
    try {
      const node = { id: "n1", host: "127.0.0.1", port: freePort(), admin_port: 0 };
      const write = (name: string, raw: unknown) => Deno.writeTextFile(`${cwd}/${name}`, JSON.stringify(raw));
      await write("section.json", { nodes: [node], replication: { replication_factor: 1, write_quorom: 1 } });
      await write("node.json", {
        nodes: [{ ...node, redis_prot: 6390 }],
        replication: { replication_factor: 1 },
      });

      const section = await runServer(cwd, "--config", "section.json");
      assert.equal(section.code, 2, show(section));
      assert.match(
        section.stderr,
        /^error: .*section\.json: unknown setting replication\.write_quorom; did you mean replication\.write_quorum\?$/m,
      );
      assert.doesNotMatch(section.stderr, /\bat .*\.ts:\d+/, "no stack trace for a user error");

      const inNode = await runServer(cwd, "--config", "node.json");
      assert.equal(inNode.code, 2, show(inNode));
      assert.match(
        inNode.stderr,
        /unknown setting nodes\[0\]\.redis_prot; did you mean nodes\[0\]\.redis_port\?/,
      );

      const flag = await runServer(cwd, "--prot", "9");
      assert.equal(flag.code, 2, show(flag));
      assert.match(flag.stderr, /^error: unknown flag --prot; did you mean --port\?$/m);
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  },
);

/**
 * A seed that answers GetMembership as `real` does, with settings a newer
 * version would send, and JoinCluster with UNAVAILABLE (so the joiner goes on
 * to the real node).
 */
async function newerSeed(real: NodeStub): Promise<FakeNode> {
  const answer = await real.call<Record<string, unknown>>("GetMembership", {});
  const settings = JSON.parse(answer.settings_json as string);
  settings.consensus = { leaseMs: 500 };
  settings.replication.writeQuorom = 2;
  return await fakeNodeService({
    GetMembership: (_: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { ...answer, settings_json: JSON.stringify(settings) }),
    JoinCluster: (_: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb({ code: grpc.status.UNAVAILABLE, details: "a seed that only hands out settings" }),
  });
}

clusterTest("a joiner given settings it does not know warns, naming them, and starts", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1, secret: false });
  const seed = await newerSeed(new NodeStub(cluster, "node1"));
  try {
    const joiner = cluster.addNode("node2");
    const join = `${seed.address},${cluster.node("node1").address}`;
    // startNode waits until the joiner answers GetMembership: it started.
    await cluster.startNode("node2", ["--host", "127.0.0.1", "--port", String(joiner.port), "--join", join], {
      withConfig: false,
    });
    // It joins through the real node (first: a joiner still joining is slow to stop).
    await cluster.waitFor(
      () => logLines(cluster, "node2", "joined the cluster").length > 0,
      30_000,
      "node2 joins",
    );
    const warned = logLines(cluster, "node2", "unknown setting");
    assert.equal(warned.length, 1, cluster.logs("node2"));
    assert.match(warned[0], /WARN/i);
    assert.match(warned[0], /unknown setting consensus\b/);
    assert.match(
      warned[0],
      /unknown setting replication\.writeQuorom; did you mean replication\.writeQuorum\?/,
    );
    assert.ok(cluster.isRunning("node2"), "the joiner runs");
  } finally {
    await seed.stop();
    await endCluster(cluster);
  }
});
