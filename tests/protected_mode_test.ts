/**
 * Protected mode with real node processes: a node with neither a secret nor
 * TLS, in a network namespace of its own, refuses NodeService calls from
 * another namespace (a non-loopback source) and takes them from its own
 * loopback; `--insecure` lets them through with a warning; a cluster file
 * naming peers on other machines with no protection stops the node before
 * it listens. The outside calls are made with Python's grpcio, a client
 * nobody here wrote. Needs root and `ip` (the chaos suite's namespaces).
 */
import assert from "node:assert/strict";
import { ChaosNetwork, unavailableReason } from "./chaos/netns.ts";
import { clusterTest, endCluster, MAIN, runMain, TestCluster } from "./helpers/cluster.ts";
import { waitSettled } from "./helpers/membership.ts";
import { freePort } from "./helpers/ports.ts";
import { attemptStart } from "./helpers/refused_start.ts";
import { havePythonGrpc, pythonCalls, type RawCall } from "./helpers/python_grpc.ts";
import { isLoopbackHost, peerHost, securityMode, unreachablePeers } from "../lib/security/protected_mode.ts";
import { Buffer } from "node:buffer";

const reason = (await unavailableReason()) ??
  (havePythonGrpc() ? undefined : "python3-grpcio is not installed");
const ignore = reason !== undefined && !Deno.env.get("CI");

/** The port the node listens on inside its namespace (its own network stack). */
const PORT = 7500;

const NODE_CALLS: RawCall[] = [
  // ReadRecordsRequest { keys: ["k"] }.
  { method: "/kvstore.NodeService/ReadRecords", body: "0a016b" },
  { method: "/kvstore.NodeService/Heartbeat" },
  { method: "/kvstore.NodeService/PushMembership" },
  { method: "/kvstore.NodeService/GetMembership" },
  // PutRequest { key: "k", value: "v" }: client traffic is not node traffic.
  { method: "/kvstore.KeyValueStore/Put", body: "0a016b120176" },
];

Deno.test("loopback is 127.0.0.0/8, ::1 and ::ffff:127.x (and localhost); a peer string's host is its address", () => {
  for (const h of ["127.0.0.1", "127.255.3.4", "::1", "[::1]", "::ffff:127.0.0.1", "localhost"]) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (
    const h of ["10.0.0.1", "0.0.0.0", "128.0.0.1", "::ffff:10.0.0.1", "::", "db.internal", "127.example.com"]
  ) {
    assert.equal(isLoopbackHost(h), false, h);
  }
  assert.equal(peerHost("ipv4:10.213.0.12:53422"), "10.213.0.12");
  assert.equal(peerHost("ipv6:[::1]:53422"), "::1");
  assert.equal(peerHost("[::ffff:127.0.0.1]:53422"), "::ffff:127.0.0.1");
});

Deno.test("the mode follows the settings; only a protected node with a remote peer may not start", () => {
  const secret = Buffer.from("0123456789abcdef");
  assert.equal(securityMode({}), "protected");
  assert.equal(securityMode({ insecure: true }), "insecure");
  assert.equal(securityMode({ secret, insecure: true }), "authenticated");
  const nodes = [{ id: "a", host: "10.0.0.1" }, { id: "b", host: "127.0.0.1" }];
  assert.equal(unreachablePeers({}, "a", nodes), undefined, "its own address is no peer");
  assert.match(unreachablePeers({}, "b", nodes)!, /non-loopback addresses \(a \(10\.0\.0\.1\)\)/);
  assert.equal(unreachablePeers({ insecure: true }, "b", nodes), undefined);
  assert.equal(unreachablePeers({ secret }, "b", nodes), undefined);
});

/** A single node running in namespace "node", on all its addresses. */
class NsNode {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #pumped: Promise<void>;

  constructor(net: ChaosNetwork, configPath: string, extra: string[]) {
    const args = ["run", "-A", "--quiet", MAIN, "server", "--id", "node1", "--config", configPath, ...extra];
    const { cmd, args: full } = net.exec("node", Deno.execPath(), args);
    this.#child = new Deno.Command(cmd, { args: full, stdin: "null", stdout: "piped", stderr: "piped" })
      .spawn();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this.lines.push(chunk);
    };
    this.#pumped = Promise.all([pump(this.#child.stdout), pump(this.#child.stderr)]).then(() => {});
  }

  get log(): string {
    return this.lines.join("");
  }

  /** Waits for the line that follows "listening on" at startup: the security mode's. */
  async ready(line: RegExp): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!/listening on/.test(this.log) || !line.test(this.log)) {
      if (Date.now() > deadline) throw new Error(`node did not start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM by PID (ip netns exec execs into Deno), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
    const late = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.#child.status;
    clearTimeout(late);
    await this.#pumped;
  }
}

/** Runs `fn` with a namespace "node" (10.213.0.11) and one "outsider" (10.213.0.12), and a cluster file. */
async function withNetwork(fn: (net: ChaosNetwork, configPath: string) => Promise<void>): Promise<void> {
  const net = await ChaosNetwork.create(["node", "outsider"]);
  const dir = await Deno.makeTempDir({ prefix: "kvstore-protected-" });
  try {
    const configPath = `${dir}/cluster.json`;
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({
        nodes: [{
          id: "node1",
          host: net.member("node").ip,
          bind_host: "0.0.0.0",
          port: PORT,
          admin_port: 0,
        }],
        replication: { replication_factor: 1 },
      }),
    );
    await fn(net, configPath);
  } finally {
    await net.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

function codes(results: { method: string; code: string }[]): Record<string, string> {
  return Object.fromEntries(results.map((r) => [r.method.split("/").at(-1)!, r.code]));
}

Deno.test({
  name:
    "protected mode: NodeService calls from another machine are refused PERMISSION_DENIED naming the settings, " +
    "logged once; loopback, GetMembership and client calls are served",
  ignore,
  sanitizeResources: false,
  fn: () =>
    withNetwork(async (net, configPath) => {
      const node = new NsNode(net, configPath, []);
      try {
        await node.ready(/protected mode:/);
        assert.match(node.log, /INFO .*protected mode: .*accepted only from loopback addresses/);
        const target = `${net.member("node").ip}:${PORT}`;
        const outside = await pythonCalls(target, NODE_CALLS, (c, a) => net.exec("outsider", c, a));
        console.log(`  from ${net.member("outsider").ip}: ${JSON.stringify(codes(outside))}`);
        assert.deepEqual(codes(outside), {
          ReadRecords: "PERMISSION_DENIED",
          Heartbeat: "PERMISSION_DENIED",
          PushMembership: "PERMISSION_DENIED",
          GetMembership: "OK",
          Put: "OK",
        });
        const refusal = outside[0].details;
        assert.match(
          refusal,
          /ReadRecords refused: this node runs in protected mode .*the caller is 10\.213\.0\.12/,
        );
        assert.match(refusal, /security\.cluster_secret_file.*security\.tls.*security\.insecure: true/);
        // The same node calls from its own loopback are served.
        const inside = await pythonCalls(`127.0.0.1:${PORT}`, [NODE_CALLS[0], NODE_CALLS[3]], (c, a) =>
          net.exec("node", c, a));
        assert.deepEqual(codes(inside), { ReadRecords: "OK", GetMembership: "OK" });
        const logged = node.log.split("\n").filter((l) =>
          l.includes("protected mode: refused a NodeService call")
        );
        assert.equal(logged.length, 1, logged.join("\n"));
        assert.match(logged[0], /source=10\.213\.0\.12 method=ReadRecords/);
      } finally {
        await node.stop();
      }
    }),
});

Deno.test({
  name:
    "--insecure lets NodeService calls from another machine through, and the node warns what anyone can then do",
  ignore,
  sanitizeResources: false,
  fn: () =>
    withNetwork(async (net, configPath) => {
      const node = new NsNode(net, configPath, ["--insecure"]);
      try {
        await node.ready(/security\.insecure:/);
        assert.match(
          node.log,
          /WARN .*security\.insecure: .*anyone who reaches this port can replicate, forward, overwrite and delete data as a node, change the member list and remove nodes/,
        );
        assert.doesNotMatch(node.log, /protected mode:/);
        const target = `${net.member("node").ip}:${PORT}`;
        const outside = await pythonCalls(target, [NODE_CALLS[0], NODE_CALLS[3]], (c, a) =>
          net.exec("outsider", c, a));
        assert.deepEqual(codes(outside), { ReadRecords: "OK", GetMembership: "OK" });
      } finally {
        await node.stop();
      }
    }),
});

Deno.test({
  name:
    "a node whose cluster file names a peer on a non-loopback address, with no secret, no TLS and no insecure, refuses to start and says which to set",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-protected-" });
    try {
      const port = freePort();
      const nodes = [
        { id: "node1", host: "127.0.0.1", port, admin_port: 0 },
        { id: "node2", host: "10.250.0.2", port: 7501, admin_port: 0 },
      ];
      await Deno.writeTextFile(`${dir}/cluster.json`, JSON.stringify({ nodes }));
      const args = ["server", "--id", "node1", "--config", "cluster.json"];
      const refused = await attemptStart(dir, args);
      console.log(`  exit ${refused.code}: ${refused.output.trim().split("\n").at(-1)}`);
      assert.equal(refused.code, 2, refused.output);
      assert.match(
        refused.output,
        /ERROR .*not starting: the cluster names nodes on non-loopback addresses \(node2 \(10\.250\.0\.2\)\)/,
      );
      assert.match(
        refused.output,
        /set security\.cluster_secret_file .*security\.tls .*or security\.insecure: true \(server --insecure/,
      );
      assert.doesNotMatch(refused.output, /listening on/);
      // Each of the three ways out lets it start (it listens; the test stops it).
      await Deno.writeTextFile(`${dir}/secret`, "0123456789abcdef0123\n");
      for (const extra of [["--insecure"], ["--cluster-secret-file", "secret"]]) {
        const started = await attemptStart(dir, [...args, ...extra], 6000);
        assert.equal(started.code, "still running", `${extra[0]}: ${started.output}`);
        assert.match(started.output, /listening on/, extra[0]);
      }
      const local = await runMain(dir, "server", "--help");
      assert.match(local.stdout, /--insecure/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

clusterTest(
  "in protected mode, from loopback, a node joins with --join and client remove-node removes it, as the README shows",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 2, secret: false });
    try {
      const client = await cluster.client();
      assert.match(cluster.logs("node1"), /protected mode:/);
      assert.ok(
        (await client.multiPut([{ key: "a", value: "1" }, { key: "b", value: "2" }])).every((r) => r.ok),
      );
      cluster.addNode("node3");
      await cluster.startJoiner("node3", ["node1"]);
      await waitSettled(cluster, client, "node1", (ids) => ids.includes("node3"), 60_000);
      const exit = cluster.expectExit("node3");
      const removed = await runMain(
        cluster.dir,
        "client",
        "remove-node",
        "node3",
        "--addr",
        cluster.node("node1").address,
      );
      assert.equal(removed.code, 0, removed.stdout + removed.stderr);
      await waitSettled(cluster, client, "node1", (ids) => ids.length === 2, 60_000);
      assert.equal((await exit).code, 0, "node3 left by itself");
      assert.doesNotMatch(cluster.logs("node1") + cluster.logs("node2"), /protected mode: refused/);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 150_000 },
);
