/**
 * Node authentication with real node processes: with a cluster secret (the
 * test harness's default), calls to NodeService without a valid token are
 * UNAUTHENTICATED and change nothing on any node, whatever the method; a
 * wrong secret, an expired token and an unknown node id are refused, and the
 * right secret works. Without a secret a node says so at startup. Random
 * bytes to every method of both services are answered with a status.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, kvError, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { unary } from "../lib/grpc/call.ts";

const REFUSED_LOG = "refused an unauthenticated NodeService call";

/** What every node holds of some keys (its own copy), as "value" or "-" when absent. */
async function copies(cluster: TestCluster, keys: string[]): Promise<string[]> {
  const client = await cluster.client();
  const out: string[] = [];
  for (const n of cluster.nodes) {
    for (const key of keys) {
      const r = await client.get(key, { fromReplica: true, address: n.address });
      out.push(`${n.id}:${key}=${r.found ? text.decode(r.value) : "-"}`);
    }
  }
  return out;
}

/** Every forged NodeService call an outsider could make, by name. */
function forgeries(stub: NodeStub): Record<string, () => Promise<unknown>> {
  const soon = (Date.now() + 1000) * 1000;
  return {
    Replicate: () =>
      stub.call("Replicate", replicateItem({ key: "victim", value: "evil", timestamp: soon, from: "node2" })),
    ReplicateBatch: () =>
      stub.call("ReplicateBatch", {
        items: [
          replicateItem({ key: "victim", value: "evil", timestamp: soon, from: "node2" }),
          replicateItem({ key: "other", timestamp: soon, from: "node2", op: "DELETE" }),
        ],
        primary_node: "node2",
      }),
    ForwardPut: () =>
      stub.call("ForwardPut", {
        key: "victim",
        value: text.encode("evil"),
        timestamp: 0,
        origin_node_id: "node2",
      }),
    ForwardDelete: () => stub.call("ForwardDelete", { key: "other", origin_node_id: "node2" }),
    ForwardMultiPut: () =>
      stub.call("ForwardMultiPut", {
        items: [{ key: "victim", value: text.encode("evil"), timestamp: 0 }],
        origin_node_id: "node2",
      }),
    ForwardStream: () =>
      stub.exchange("ForwardStream", [
        {
          id: 1,
          put: {
            items: [{ key: "victim", value: text.encode("evil"), timestamp: 0 }],
            origin_node_id: "node2",
          },
        },
        { id: 2, del: { keys: ["other"], origin_node_id: "node2" } },
        {
          id: 3,
          repl: {
            items: [replicateItem({ key: "victim", value: "evil", timestamp: soon, from: "node2" })],
            primary_node: "node2",
          },
        },
      ]),
    StreamRecords: () =>
      stub.stream("StreamRecords", { requesting_node_id: "node2", max_records: 10, max_bytes: 0 }),
    StreamBuckets: () =>
      stub.stream("StreamBuckets", { requesting_node_id: "node2", bucket_bits: 1, buckets: [0, 1] }),
    GetDigests: () => stub.call("GetDigests", { requesting_node_id: "node2", bucket_bits: 1 }),
    ReadRecords: () => stub.call("ReadRecords", { keys: ["victim"], requesting_node_id: "node2" }),
    GetSnapshot: () => stub.call("GetSnapshot", { requesting_node_id: "node2" }),
    Heartbeat: () =>
      stub.call("Heartbeat", {
        node_id: "node2",
        host: "127.0.0.1",
        port: 1,
        timestamp: Date.now(),
        status: "JOINING",
        hints_pending: 99,
      }),
    JoinCluster: () => stub.call("JoinCluster", { node_id: "node2", host: "127.0.0.1", port: 1 }),
    // A forged vote could block every change (a huge ballot) or get a forged list chosen.
    PrepareMembership: () =>
      stub.call("PrepareMembership", { epoch: 1, ballot: { round: 1e9, node_id: "node2" } }),
    AcceptMembership: () =>
      stub.call("AcceptMembership", {
        epoch: 1,
        ballot: { round: 1e9, node_id: "node2" },
        member_list: {
          epoch: 1,
          claimant_id: "node2",
          members: [{ node_id: "evil", host: "127.0.0.1", port: 1, state: "MEMBER_NORMAL" }],
        },
      }),
    // Forged per-key Paxos could promise a huge ballot (freezing a key) or commit any record.
    PaxosPrepare: () =>
      stub.call("PaxosPrepare", { key: "victim", ballot: { round: 1e9, node_id: "node2" } }),
    PaxosAccept: () =>
      stub.call("PaxosAccept", {
        key: "victim",
        ballot: { round: 1e9, node_id: "node2" },
        record: { key: "victim", value: text.encode("evil"), timestamp: soon, version_node: "node2" },
      }),
    PaxosCommit: () =>
      stub.call("PaxosCommit", {
        record: { key: "victim", value: text.encode("evil"), timestamp: soon, version_node: "node2" },
      }),
    ForwardConditional: () =>
      stub.call("ForwardConditional", { kind: "COND_PUT", key: "victim", value: text.encode("evil") }),
  };
}

clusterTest(
  "with a cluster secret, an outsider's Replicate, ReplicateBatch, ForwardPut, ForwardStream, StreamRecords, Heartbeat and every other node call get UNAUTHENTICATED and change nothing",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3 });
    try {
      assert.ok(cluster.secret, "the harness runs authenticated by default");
      const client = await cluster.client();
      assert.equal((await client.put("victim", "honest")).ok, true);
      assert.equal((await client.put("other", "kept")).ok, true);
      await cluster.waitFor(
        async () => (await copies(cluster, ["victim"])).filter((c) => c.endsWith("=honest")).length === 2,
        5000,
        "victim on both copies",
      );
      const before = await copies(cluster, ["victim", "other"]);
      for (const n of cluster.nodes) {
        const outsider = new NodeStub(cluster, n.id, { as: "node2", secret: null });
        for (const [method, call] of Object.entries(forgeries(outsider))) {
          const err = await kvError(call);
          assert.equal(err.code, grpc.status.UNAUTHENTICATED, `${method} on ${n.id}: ${err.message}`);
          assert.match(err.message, new RegExp(`^${method} refused: no node credentials`));
        }
        // GetMembership stays open: clients route with it.
        const m = await outsider.call<{ cluster_size: number }>("GetMembership", {});
        assert.equal(m.cluster_size, 3);
      }
      assert.deepEqual(await copies(cluster, ["victim", "other"]), before, "nothing changed on any node");
      // Heartbeat claiming node2 was JOINING with hints pending changed no one's view either.
      const membership = await client.membership();
      assert.deepEqual(membership.members.map((m) => m.status), ["ACTIVE", "ACTIVE", "ACTIVE"]);
      for (const n of cluster.nodes) {
        const lines = cluster.logs(n.id).split("\n");
        const refusals = lines.filter((l) => l.includes(REFUSED_LOG));
        assert.equal(
          refusals.length,
          1,
          `${n.id}: one warning for 15 refusals from one source:\n${refusals.join("\n")}`,
        );
        assert.match(refusals[0], /source=127\.0\.0\.1 /);
        assert.ok(!lines.some((l) => /protected mode:|security\.insecure:/.test(l)), `${n.id} has a secret`);
      }
      // The cluster itself, authenticated, still replicates.
      assert.equal((await client.put("after", "v")).ok, true);
      await cluster.waitFor(
        async () => (await copies(cluster, ["after"])).filter((c) => c.endsWith("=v")).length === 2,
        5000,
        "after replicated",
      );
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "a wrong secret, an expired token or an unknown node id is refused; the cluster's secret is accepted",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2 });
    try {
      const soon = (Date.now() + 1000) * 1000;
      const replicate = (stub: NodeStub) =>
        stub.call<{ success: boolean }>(
          "Replicate",
          replicateItem({ key: "k", value: "x", timestamp: soon, from: stub.as }),
        );
      const cases: [string, NodeStub, RegExp][] = [
        [
          "wrong secret",
          new NodeStub(cluster, "node1", {
            as: "node2",
            secret: text.encode("another-secret-of-32-characters!"),
          }),
          /do not match the cluster secret/,
        ],
        [
          "expired",
          new NodeStub(cluster, "node1", { as: "node2", clock: () => Date.now() - 61_000 }),
          /expired or not yet valid/,
        ],
        [
          "from the future",
          new NodeStub(cluster, "node1", { as: "node2", clock: () => Date.now() + 61_000 }),
          /expired or not yet valid/,
        ],
        [
          "unknown node",
          new NodeStub(cluster, "node1", { as: "node9" }),
          /"node9" is not a node of this cluster/,
        ],
      ];
      for (const [what, stub, reason] of cases) {
        const err = await kvError(() => replicate(stub));
        assert.equal(err.code, grpc.status.UNAUTHENTICATED, `${what}: ${err.message}`);
        assert.match(err.message, reason, what);
      }
      const client = await cluster.client();
      assert.equal(
        (await client.get("k", { fromReplica: true, address: cluster.node("node1").address })).found,
        false,
      );
      assert.equal((await replicate(new NodeStub(cluster, "node1", { as: "node2" }))).success, true);
      const r = await client.get("k", { fromReplica: true, address: cluster.node("node1").address });
      assert.equal(text.decode(r.value), "x");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "without a secret or TLS a node says at startup that it runs in protected mode (node traffic from loopback only)",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, secret: false });
    try {
      assert.equal(cluster.secret, undefined);
      assert.match(cluster.logs("node1"), /INFO .*protected mode: .*accepted only from loopback addresses/);
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "random bytes sent to every method of both services are answered with a status, and the node lives on",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1 });
    try {
      const pkg = kvstorePackage();
      const raw = (path: string) => ({
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      });
      const codes = new Map<string, number>();
      for (const service of [pkg.KeyValueStore.service, pkg.NodeService.service]) {
        const methods = Object.fromEntries(Object.entries(service).map(([name, d]) => [name, raw(d.path)]));
        const Client = grpc.makeGenericClientConstructor(methods, "fuzz");
        const stub = new Client(cluster.nodes[0].address, grpc.credentials.createInsecure());
        for (const name of Object.keys(methods)) {
          for (let i = 0; i < 5; i++) {
            const junk = Buffer.from(
              crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 200))),
            );
            try {
              await unary(stub, name, junk, 5000);
              codes.set(`${name} ok`, (codes.get(`${name} ok`) ?? 0) + 1);
            } catch (err) {
              const code = (err as grpc.ServiceError).code;
              assert.equal(typeof code, "number", `${name}: ${err}`);
              assert.notEqual(code, grpc.status.DEADLINE_EXCEEDED, `${name} did not answer`);
              codes.set(`${name} ${grpc.status[code]}`, (codes.get(`${name} ${grpc.status[code]}`) ?? 0) + 1);
            }
          }
        }
      }
      console.log([...codes].map(([k, v]) => `${k} x${v}`).join(", "));
      assert.ok(cluster.isRunning("node1"), "the node is still running");
      const client = await cluster.client();
      assert.equal((await client.put("alive", "yes")).ok, true);
      assert.equal(text.decode((await client.get("alive")).value), "yes");
      // Without a token, no node method ran: each answered UNAUTHENTICATED or a parse error.
      for (const [k] of codes) {
        const [name, status] = k.split(" ");
        if (name in pkg.NodeService.service && name !== "GetMembership") {
          assert.ok(["UNAUTHENTICATED", "INTERNAL"].includes(status), k);
        }
      }
    } finally {
      await cluster.stop();
    }
  },
);
