/**
 * Hostile callers against node authentication, with real node processes:
 * a client certificate from the cluster's CA cannot change, join or push
 * membership (TLS without a secret); a node's certificate cannot carry a
 * token naming another node; a captured control token replayed with
 * another payload, to another node, or a second time is refused; a data
 * token replayed, or older than its session's window, is refused; the
 * token window follows `security.token_window_ms` and a refusal for time
 * carries the receiver's clock; a removed node is refused once its drain
 * period (`security.removed_node_drain_ms`) is over. After each, every node
 * still runs and serves and the member list is unchanged.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, kvError, runMain, sleep, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { removeNodeRun } from "./helpers/membership.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import type { ClientTls } from "../lib/security/tls.ts";
import { signingInterceptor } from "../lib/security/call_signing.ts";
import { AUTH_METADATA_KEY, RECEIVER_TIME_KEY, requestDigest, TokenSigner } from "../lib/security/token.ts";
import type { KvError } from "../lib/errors.ts";

const HAVE_OPENSSL =
  new Deno.Command("sh", { args: ["-c", "command -v openssl"], stdout: "null" }).outputSync().success;
const noOpenssl = !HAVE_OPENSSL && !Deno.env.get("CI");

const path = (m: string) => `/kvstore.NodeService/${m}`;

/** Certificates for node1..3 and the client, made by `main.ts certs` as an operator would. */
async function makeCerts(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-hostile-" });
  const r = await runMain(
    dir,
    "certs",
    "--out",
    `${dir}/certs`,
    "--nodes",
    "node1,node2,node3",
    "--hosts",
    "127.0.0.1,127.0.0.1,127.0.0.1",
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return `${dir}/certs`;
}

function tlsOf(dir: string, who?: string): ClientTls {
  return {
    ca: readFileSync(`${dir}/ca.pem`),
    ...(who ? { cert: readFileSync(`${dir}/${who}.pem`), key: readFileSync(`${dir}/${who}.key`) } : {}),
  };
}

function tlsCluster(dir: string, secret: boolean) {
  return {
    nodes: 3,
    secret,
    extra: { security: { tls: { ca_file: `${dir}/ca.pem` } } },
    nodeExtra: Object.fromEntries(
      ["node1", "node2", "node3"].map((
        id,
      ) => [id, { tls_cert_file: `${dir}/${id}.pem`, tls_key_file: `${dir}/${id}.key` }]),
    ),
    clientTls: tlsOf(dir),
  };
}

/** Every node's membership epoch and member ids, as each sees them. */
async function listsSeen(cluster: TestCluster, ids = ["node1", "node2", "node3"]): Promise<string[]> {
  const client = await cluster.client({ route: false });
  return await Promise.all(ids.map(async (id) => {
    const m = await client.membership(cluster.node(id).address);
    return `${id}: epoch ${m.epoch} ${m.members.map((x) => x.id).join(",")}`;
  }));
}

/** Every node still runs and serves a write and a read. */
async function stillServing(cluster: TestCluster, ids = ["node1", "node2", "node3"]): Promise<void> {
  for (const id of ids) assert.ok(cluster.isRunning(id), `${id} still runs`);
  const client = await cluster.client();
  for (const id of ids) {
    await client.put(`after-${id}`, `v-${id}`);
    assert.equal(text.decode((await client.get(`after-${id}`)).value), `v-${id}`);
  }
}

/** Runs `fn` on a 3-node TLS cluster (with the secret or not) whose certificates `main.ts certs` made. */
async function withTlsCluster(secret: boolean, fn: (cluster: TestCluster, dir: string) => Promise<void>) {
  const dir = await makeCerts();
  const cluster = await TestCluster.start(tlsCluster(dir, secret));
  try {
    await fn(cluster, dir);
  } finally {
    await cluster.stop();
    await Deno.remove(dir.replace(/\/certs$/, ""), { recursive: true });
  }
}

const PUSH_EVIL = (port: number) => ({
  epoch: 1_000_000_000,
  members: [{ node_id: "ghost", host: "127.0.0.1", port, state: "NORMAL" }],
});

clusterTest(
  "TLS without a secret: a client certificate's ChangeMembership, JoinCluster and PushMembership are refused; the member list stays",
  async () => {
    await withTlsCluster(false, async (cluster, dir) => {
      const before = await listsSeen(cluster);
      const port = cluster.node("node2").port;
      const asClient = new NodeStub(cluster, "node1", {
        as: "kvstore-client",
        secret: null,
        tls: tlsOf(dir, "client"),
      });
      const calls: [string, unknown][] = [
        ["ChangeMembership", { kind: "CHANGE_REMOVE", node_id: "node2" }],
        ["JoinCluster", { node_id: "kvstore-client", host: "127.0.0.1", port: 1 }],
        ["JoinCluster", { node_id: "node9", host: "127.0.0.1", port: 1 }],
        ["PushMembership", PUSH_EVIL(port)],
        ["PrepareMembership", { epoch: 2, ballot: { round: 99, node_id: "kvstore-client" } }],
      ];
      for (const [method, req] of calls) {
        const err = await kvError(() => asClient.call(method, req));
        console.log(`  client certificate ${method}: ${grpc.status[err.code]}: ${err.message}`);
        assert.ok(
          [grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED].includes(err.code),
          err.message,
        );
        assert.match(
          err.message,
          /refused: .*(is not a node of this cluster|client certificate|only as itself)/,
        );
      }
      const removeVia = (who: string, id: string) =>
        runMain(
          dir,
          "client",
          "remove-node",
          id,
          "--addr",
          cluster.node("node1").address,
          "--ca",
          `${dir}/ca.pem`,
          "--cert",
          `${dir}/${who}.pem`,
          "--key",
          `${dir}/${who}.key`,
        );
      const cli = await removeVia("client", "node2");
      console.log(
        `  client remove-node with the client certificate: exit ${cli.code}: ${
          (cli.stdout + cli.stderr).trim()
        }`,
      );
      assert.notEqual(cli.code, 0);
      assert.match(cli.stdout + cli.stderr, /UNAUTHENTICATED.*\(credential: client certificate only/);
      assert.deepEqual(await listsSeen(cluster), before, "member list unchanged");
      await stillServing(cluster);
      // The operator's credential with TLS alone: a node's certificate, and the command says so.
      const exit = cluster.expectExit("node3");
      const op = await removeVia("node1", "node3");
      console.log(
        `  client remove-node with node1's certificate: exit ${op.code}: ${op.stdout.split("\n")[0]}`,
      );
      assert.equal(op.code, 0, op.stdout + op.stderr);
      assert.match(op.stdout, /credential: node certificate "node1"/);
      await exit;
    });
  },
  { ignore: noOpenssl, timeoutMs: 120_000 },
);

clusterTest(
  "TLS with a secret: node1's certificate with a token naming node2 is refused; under its own name it is accepted",
  async () => {
    await withTlsCluster(true, async (cluster, dir) => {
      const before = await listsSeen(cluster);
      const beat = (as: string) => ({
        node_id: as,
        host: "127.0.0.1",
        port: cluster.node(as).port,
        timestamp: Date.now(),
      });
      const posing = new NodeStub(cluster, "node3", { as: "node2", tls: tlsOf(dir, "node1") });
      const err = await kvError(() => posing.call("Heartbeat", beat("node2")));
      console.log(`  node1's certificate as node2: ${grpc.status[err.code]}: ${err.message}`);
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      assert.match(err.message, /the token names "node2" but the certificate "node1"/);
      const change = await kvError(() =>
        posing.call("ChangeMembership", { kind: "CHANGE_REMOVE", node_id: "node2" })
      );
      assert.equal(change.code, grpc.status.UNAUTHENTICATED);
      // A member may not name another member in its messages either.
      const self = new NodeStub(cluster, "node3", { as: "node1", tls: tlsOf(dir, "node1") });
      const named = await kvError(() => self.call("Heartbeat", beat("node2")));
      assert.equal(named.code, grpc.status.PERMISSION_DENIED);
      assert.match(named.message, /the request names "node2" but comes from "node1"/);
      await self.call("Heartbeat", beat("node1"));
      assert.deepEqual(await listsSeen(cluster), before);
      await stillServing(cluster);
    });
  },
  { ignore: noOpenssl, timeoutMs: 120_000 },
);

/** A NodeService channel with no token of its own: each call carries the token given. */
function rawChannel(cluster: TestCluster, to: string): grpc.Client {
  const NodeService = kvstorePackage().NodeService;
  return cluster.closeOnStop(new NodeService(cluster.node(to).address, grpc.credentials.createInsecure()));
}

/** One unary call with `token`; resolves to its status and trailers. */
function rawCall(client: grpc.Client, method: string, req: unknown, token: string) {
  const metadata = new grpc.Metadata();
  metadata.set(AUTH_METADATA_KEY, token);
  return new Promise<{ code: number; details: string; trailers: grpc.Metadata }>((resolve) => {
    const fn = (client as unknown as Record<string, CallFn>)[method];
    const call = fn.call(client, req, metadata, { deadline: Date.now() + 5000 }, () => {});
    call.on("status", (s) => resolve({ code: s.code, details: s.details, trailers: s.metadata }));
  });
}
type CallFn = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (e: unknown) => void,
) => grpc.ClientUnaryCall;

/** A client as node2 whose control calls' tokens are recorded as they leave. */
function recordingPeer(cluster: TestCluster, to: string, captured: string[]): grpc.Client {
  const record: grpc.Interceptor = (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(metadata, listener, go) {
        captured.push(metadata.get(AUTH_METADATA_KEY)[0] as string);
        go(metadata, listener);
      },
    });
  const signer = new TokenSigner(cluster.secret!, "node2");
  const NodeService = kvstorePackage().NodeService;
  return cluster.closeOnStop(
    new NodeService(cluster.node(to).address, grpc.credentials.createInsecure(), {
      interceptors: [signingInterceptor(signer, { target: () => to }), record],
    }),
  );
}

clusterTest(
  "a captured control token replayed with another payload, to another node or again is refused; data tokens once and within their window; the token window is the setting's",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, extra: { security: { token_window_ms: 5000 } } });
    try {
      const before = await listsSeen(cluster);
      const { members } = await new NodeStub(cluster, "node1").call<{ member_list: unknown }>(
        "GetMembership",
        {},
      )
        .then((m) => ({ members: m.member_list }));
      const captured: string[] = [];
      const peer = recordingPeer(cluster, "node1", captured);
      const pushed = await rawCallVia(peer, "PushMembership", members);
      console.log(`  node2's own push of the current list: ${grpc.status[pushed.code]} ${pushed.details}`);
      assert.notEqual(pushed.code, grpc.status.UNAUTHENTICATED, pushed.details);
      const token = captured[0];
      assert.match(token, /^c~node2~node1~/);
      const node1 = rawChannel(cluster, "node1");
      const replays: [string, Promise<{ code: number; details: string }>, RegExp][] = [
        ["again", rawCall(node1, "PushMembership", members, token), /already used/],
        ["another payload", rawCall(node1, "PushMembership", PUSH_EVIL(1), token), /this request/],
        [
          "to node3",
          rawCall(rawChannel(cluster, "node3"), "PushMembership", members, token),
          /made for "node1"/,
        ],
      ];
      // A token never used, made with the secret for one list, sent with another.
      const def = kvstorePackage().NodeService.service.PushMembership;
      const unused = new TokenSigner(cluster.secret!, "node2").control(
        path("PushMembership"),
        "node1",
        requestDigest(def.requestSerialize(def.requestDeserialize(def.requestSerialize(members)))),
      );
      replays.push([
        "unused, another payload",
        rawCall(node1, "PushMembership", PUSH_EVIL(1), unused),
        /this request/,
      ]);
      for (const [what, call, reason] of replays) {
        const r = await call;
        console.log(`  control token replayed ${what}: ${grpc.status[r.code]}: ${r.details}`);
        assert.equal(r.code, grpc.status.UNAUTHENTICATED, what);
        assert.match(r.details, reason, what);
      }

      // Data tokens: one session's counters, each accepted once, none far below the newest.
      const signer = new TokenSigner(cluster.secret!, "node2");
      const beat = {
        node_id: "node2",
        host: "127.0.0.1",
        port: cluster.node("node2").port,
        timestamp: Date.now(),
      };
      const data = () => signer.data(path("Heartbeat"), "node1", "test");
      const stale = data(); // made, never sent: counter 1
      let last = "";
      for (let sent = 0; sent < 1100; sent += 50) {
        const batch = Array.from({ length: 50 }, data);
        last = batch[49];
        const answers = await Promise.all(batch.map((t) => rawCall(node1, "Heartbeat", beat, t)));
        assert.deepEqual(answers.filter((a) => a.code !== 0).map((a) => a.details), []);
      }
      const again = await rawCall(node1, "Heartbeat", beat, last);
      assert.match(again.details, /already used/);
      const old = await rawCall(node1, "Heartbeat", beat, stale);
      console.log(`  data token replayed: ${again.details}; 1100 calls later, the first: ${old.details}`);
      assert.equal(old.code, grpc.status.UNAUTHENTICATED);
      assert.match(old.details, /too old for this session/);

      // The window is security.token_window_ms (5 s here), and a refusal for time says the receiver's clock.
      const at = (ms: number) => new TokenSigner(cluster.secret!, "node2", () => Date.now() + ms);
      const late = await rawCall(node1, "Heartbeat", beat, at(-7000).data(path("Heartbeat"), "node1"));
      console.log(`  a token 7 s old: ${late.details}`);
      assert.equal(late.code, grpc.status.UNAUTHENTICATED);
      assert.match(late.details, /outside the 5000 ms window/);
      const told = Number(late.trailers.get(RECEIVER_TIME_KEY)[0]);
      assert.ok(Math.abs(told - Date.now()) < 60_000, `receiver time ${told}`);
      assert.equal(
        (await rawCall(node1, "Heartbeat", beat, at(-3000).data(path("Heartbeat"), "node1"))).code,
        0,
      );

      assert.deepEqual(await listsSeen(cluster), before);
      await stillServing(cluster);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 120_000 },
);

/** A unary call through a client's own interceptors; resolves to its status. */
function rawCallVia(client: grpc.Client, method: string, req: unknown) {
  return new Promise<{ code: number; details: string }>((resolve) => {
    const fn = (client as unknown as Record<string, CallFn>)[method];
    const call = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, () => {});
    call.on("status", (s) => resolve({ code: s.code, details: s.details }));
  });
}

clusterTest(
  "a removed node is refused as a caller once its drain period is over, with no later change",
  async () => {
    const cluster = await TestCluster.start({
      nodes: 3,
      extra: { security: { removed_node_drain_ms: 2000 } },
    });
    try {
      const exit = cluster.expectExit("node3");
      const run = await removeNodeRun(cluster, "node3", "node1");
      console.log(`  ${run.stdout.trim().split("\n")[0]}`);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /credential: cluster secret \(as "operator"\)/);
      await exit;
      const asNode3 = new NodeStub(cluster, "node1", { as: "node3" });
      const beat = {
        node_id: "node3",
        host: "127.0.0.1",
        port: cluster.node("node3").port,
        timestamp: Date.now(),
      };
      await sleep(3000); // past the 2 s drain period
      const err: KvError = await kvError(() => asNode3.call("Heartbeat", beat));
      console.log(`  node3 after its drain period: ${grpc.status[err.code]}: ${err.message}`);
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      assert.match(err.message, /"node3" is not a node of this cluster/);
      assert.deepEqual(
        (await listsSeen(cluster, ["node1", "node2"])).map((l) => l.replace(/epoch \d+ /, "")),
        ["node1: node1,node2", "node2: node1,node2"],
      );
      await stillServing(cluster, ["node1", "node2"]);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 120_000 },
);
