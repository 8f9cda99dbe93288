/**
 * NodeService.ForwardStream on real node processes (the cluster secret on,
 * as the harness runs by default):
 * - a node answers frames by id: puts, gets, deletes and replication
 *   batches, a bad item on its own, an empty frame INVALID_ARGUMENT, and
 *   ends the stream once the peer half-closes;
 * - a node forwards plain clients' calls as frames of that stream (its
 *   peer counts ForwardMulti* frames and no unary ForwardPut/Get/Delete);
 * - under load through one node, the owner killed with SIGKILL: the broken
 *   stream's requests fail over, and no acknowledged write is lost.
 * And the sending end (GrpcPeerTransport) against stub peers in this
 * process, over real gRPC: a peer without ForwardStream (an older node)
 * gets the unary Forward* calls; a frame the peer never answers fails
 * DEADLINE_EXCEEDED after the timeout and is sent once only; a stream the
 * peer breaks fails its pending forwards UNAVAILABLE and the next forward
 * opens a new stream; small replication batches go on the stream, large
 * ones (and any to a peer without it) as ReplicateBatch calls.
 * That a caller without the secret cannot open the stream is part of
 * node_auth_test.ts (every NodeService method).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  clusterTest,
  keysOwnedBy,
  keysPlacedOn,
  ringOf,
  sleep,
  TestCluster,
  text,
} from "./helpers/cluster.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";
import type { ForwardFrameMsg, ForwardReplyMsg } from "../lib/grpc/messages.ts";
import { GrpcPeerTransport } from "../lib/grpc/peer_client.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import type { NodeConfig } from "../lib/config.ts";
import { KvError, PeerUnavailableError } from "../lib/errors.ts";
import { freePort } from "./helpers/ports.ts";

/** A counter of the node's /metrics for one method, summed over status codes. */
async function callsOf(cluster: TestCluster, id: string, method: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${cluster.node(id).adminPort}/metrics`);
  const body = await res.text();
  let total = 0;
  for (const line of body.split("\n")) {
    if (line.startsWith("kvstore_grpc_server_calls_total{") && line.includes(`method="${method}"`)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

clusterTest(
  "a node answers ForwardStream frames by id, each batch on its own, and ends when the peer does",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1 });
    try {
      const [a, b] = keysOwnedBy(ringOf(cluster), "node2", "fs:", 2);
      const peer = new NodeStub(cluster, "node2", { as: "node1" });
      const v = (s: string) => text.encode(s);
      const replies = await peer.exchange<ForwardReplyMsg>("ForwardStream", [
        {
          id: 7,
          put: { items: [{ key: a, value: v("A"), timestamp: 0 }, { key: "", value: v("x"), timestamp: 0 }] },
        },
        { id: 8, put: { items: [{ key: b, value: v("B"), timestamp: 0 }] } },
        { id: 9 },
      ]);
      const byId = new Map(replies.map((r) => [r.id, r]));
      assert.deepEqual([...byId.keys()].sort(), [7, 8, 9]);
      const [good, bad] = byId.get(7)!.put!.results;
      assert.equal(good.success, true, good.message);
      assert.equal(good.node_id, "node2");
      assert.equal(bad.success, false);
      assert.equal(bad.error_code, grpc.status.INVALID_ARGUMENT, "the bad item fails on its own");
      assert.equal(byId.get(8)!.put!.results[0].success, true);
      assert.equal(byId.get(9)!.error_code, grpc.status.INVALID_ARGUMENT);
      assert.match(byId.get(9)!.error_message, /no put, get, del or repl/);

      const [read, del] = await Promise.all([
        peer.exchange<ForwardReplyMsg>("ForwardStream", [{ id: 1, get: { keys: [a, b, "fs:never"] } }]),
        peer.exchange<ForwardReplyMsg>("ForwardStream", [{ id: 2, del: { keys: [b] } }]),
      ]);
      const got = read[0].get!.results;
      assert.deepEqual(got.map((g) => g.found ? text.decode(g.value) : "-").slice(0, 1), ["A"]);
      assert.equal(got[2].found, false);
      assert.equal(del[0].id, 2);
      assert.equal(del[0].del!.results[0].success, true);
      const after = await peer.exchange<ForwardReplyMsg>("ForwardStream", [{ id: 3, get: { keys: [b] } }]);
      assert.equal(after[0].get!.results[0].found, false, "deleted");

      // A replication batch: node2 stores the copy as a replica would, and says how many were newer.
      const copy = replicateItem({ key: "fs:copy", value: "C", timestamp: Date.now() * 1000, from: "node1" });
      const repl = await peer.exchange<ForwardReplyMsg>("ForwardStream", [
        { id: 4, repl: { items: [copy], primary_node: "node1" } },
      ]);
      assert.equal(repl[0].error_code, 0, repl[0].error_message);
      assert.equal(repl[0].repl!.applied, 1);
      const client = await cluster.client();
      const held = await client.get("fs:copy", { fromReplica: true, address: cluster.node("node2").address });
      assert.equal(text.decode(held.value), "C");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "plain clients' calls through a node that does not own the keys go as ForwardStream frames",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2 });
    try {
      const keys = keysOwnedBy(ringOf(cluster), "node2", "plain:", 12);
      const viaNode1 = await cluster.client({ via: "node1", route: false });
      for (const [i, key] of keys.entries()) assert.equal((await viaNode1.put(key, `v${i}`)).ok, true);
      for (const [i, key] of keys.entries()) {
        assert.equal(
          text.decode((await viaNode1.get(key)).value),
          `v${i}`,
        );
      }
      for (const key of keys.slice(0, 4)) assert.equal((await viaNode1.delete(key)).ok, true);
      for (const key of keys.slice(0, 4)) assert.equal((await viaNode1.get(key)).found, false);
      const counts = Object.fromEntries(
        await Promise.all(
          [
            "ForwardPut",
            "ForwardGet",
            "ForwardDelete",
            "ForwardMultiPut",
            "ForwardMultiGet",
            "ForwardMultiDelete",
          ]
            .map(async (m) => [m, await callsOf(cluster, "node2", m)]),
        ),
      );
      console.log("node2 served:", counts);
      assert.equal(counts.ForwardPut + counts.ForwardGet + counts.ForwardDelete, 0, "no unary forward");
      assert.ok(counts.ForwardMultiPut >= keys.length, "every put arrived as a frame");
      assert.ok(counts.ForwardMultiGet >= keys.length + 4, "every get arrived as a frame");
      assert.ok(counts.ForwardMultiDelete >= 4, "every delete arrived as a frame");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "under load through one node, the owner killed with SIGKILL: forwards fail over and no acknowledged write is lost",
  async () => {
    // write_quorum 2: a write is acknowledged once on both copies, so losing
    // one node must not lose it (with 1, an unreplicated write may be lost).
    const cluster = await TestCluster.start({
      nodes: 3,
      replicationFactor: 2,
      writeQuorum: 2,
      failureMs: 60_000,
    });
    try {
      const ring = ringOf(cluster);
      const viaNode1 = await cluster.client({ via: "node1", route: false });
      const acked = new Map<string, string>();
      const failed: string[] = [];
      let stop = false;
      let killedAt = Infinity;
      let ackedAfterKill = 0;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const key = `load:${w}:${i}`;
          const value = `w${w}i${i}`;
          const started = performance.now();
          const r = await viaNode1.put(key, value).catch((err) => ({ ok: false, message: String(err) }));
          if (r.ok) {
            acked.set(key, value);
            if (started > killedAt) ackedAfterKill++;
          } else failed.push(`${key}: ${r.message}`);
        }
      };
      const workers = Array.from({ length: 16 }, (_, w) => worker(w));
      await sleep(800);
      killedAt = performance.now();
      await cluster.kill("node2");
      await sleep(1500);
      stop = true;
      await Promise.all(workers);
      const onNode2 = keysPlacedOn(ring, acked.keys(), "node2", 2).length;
      console.log(
        `acknowledged ${acked.size} writes (${onNode2} with a copy on node2, ${ackedAfterKill} begun after the kill), ${failed.length} failed`,
      );
      if (failed.length > 0) console.log("failed, first few:", failed.slice(0, 5));
      // Writes may miss their quorum while node2 is a required copy; none may
      // fail for want of a coordinator: the broken stream's requests fail over.
      const noCoordinator = failed.filter((f) => /unreachable|no live node/.test(f));
      assert.deepEqual(noCoordinator, [], "every forward failed over to a live coordinator");
      assert.ok(onNode2 > 0, "some acknowledged writes had node2 as a copy");
      assert.ok(ackedAfterKill > 0, "writes kept being acknowledged after the kill");
      const lost: string[] = [];
      const entries = [...acked];
      for (let i = 0; i < entries.length; i += 64) {
        const chunk = entries.slice(i, i + 64);
        const reads = await Promise.all(chunk.map(([k]) => viaNode1.get(k)));
        reads.forEach((r, j) => {
          const [k, v] = chunk[j];
          if (!r.found || text.decode(r.value) !== v) {
            lost.push(`${k}=${v} read ${r.found ? text.decode(r.value) : "-"}`);
          }
        });
      }
      assert.deepEqual(lost, [], "every acknowledged write reads back");
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 60_000 },
);

// The sending end against stub peers (servers in this process).

function nodeAt(id: string, port: number): NodeConfig {
  return {
    id,
    host: "127.0.0.1",
    port,
    bindHost: "127.0.0.1",
    adminPort: 0,
    respPort: 0,
    redisHost: "",
    redisPort: 0,
    description: "",
  };
}

/** A NodeService server with only the methods of `impl` (the others answer UNIMPLEMENTED), and node1's transport to it. */
async function stubPeer(impl: grpc.UntypedServiceImplementation, timeoutMs = 5000) {
  const server = new grpc.Server();
  server.addService(kvstorePackage().NodeService.service, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${freePort()}`,
      grpc.ServerCredentials.createInsecure(),
      (err, p) => err ? reject(err) : resolve(p),
    )
  );
  const transport = new GrpcPeerTransport({
    self: nodeAt("node1", 1),
    peers: [nodeAt("peer", port)],
    timeoutMs,
    maxMessageBytes: 4 << 20,
  });
  const stop = () => (transport.close(), server.forceShutdown());
  return { transport, stop };
}

const putResult = (node: string) => ({
  success: true,
  message: "",
  node_id: node,
  replicas_count: 1,
  error_code: 0,
  timestamp: 1,
});
const write = (key: string, tombstone = false) => ({
  key,
  value: text.encode(`v-${key}`),
  timestamp: 0,
  tombstone,
});
type Unary = (call: { request: Record<string, unknown> }, cb: (err: null, res: unknown) => void) => void;

clusterTest(
  "a peer without ForwardStream (an older node) gets the unary forwards, one item or many",
  async () => {
    const calls: string[] = [];
    const counted =
      (name: string, answer: (req: Record<string, unknown>) => unknown): Unary => (call, cb) => {
        calls.push(name);
        cb(null, answer(call.request));
      };
    const { transport, stop } = await stubPeer({
      ForwardPut: counted("ForwardPut", () => ({ ...putResult("old"), handler_node_id: "old" })),
      ForwardDelete: counted("ForwardDelete", () => ({ ...putResult("old"), handler_node_id: "old" })),
      ForwardMultiPut: counted("ForwardMultiPut", (r) => ({
        results: (r.items as unknown[]).map(() => putResult("old")),
      })),
      ForwardGet: counted(
        "ForwardGet",
        (r) => ({ found: true, value: text.encode(`v-${r.key}`), handler_node_id: "old" }),
      ),
      ForwardMultiGet: counted("ForwardMultiGet", (r) => ({
        results: (r.keys as string[]).map((k) => ({
          found: true,
          value: text.encode(`v-${k}`),
          node_id: "old",
        })),
      })),
    });
    try {
      const [one] = await transport.forwardWrites("peer", [write("a")]);
      assert.equal(one.ok, true, one.message);
      assert.equal(one.nodeId, "old");
      const many = await transport.forwardWrites("peer", [write("b"), write("c"), write("d")]);
      assert.deepEqual(many.map((w) => [w.key, w.ok]), [["b", true], ["c", true], ["d", true]]);
      assert.equal((await transport.forwardWrites("peer", [write("e", true)]))[0].ok, true);
      const reads = await transport.forwardReads("peer", ["x", "y"]);
      assert.deepEqual(reads.map((r) => text.decode(r.value)), ["v-x", "v-y"]);
      const [lone] = await transport.forwardReads("peer", ["z"]);
      assert.equal(text.decode(lone.value), "v-z");
      assert.deepEqual(calls, [
        "ForwardPut",
        "ForwardMultiPut",
        "ForwardDelete",
        "ForwardMultiGet",
        "ForwardGet",
      ]);
    } finally {
      stop();
    }
  },
);

clusterTest(
  "a forward the peer never answers fails DEADLINE_EXCEEDED after the timeout and is sent once",
  async () => {
    const frames: ForwardFrameMsg[] = [];
    const timeoutMs = 300;
    const { transport, stop } = await stubPeer({
      ForwardStream: (call: grpc.ServerDuplexStream<ForwardFrameMsg, ForwardReplyMsg>) => {
        call.on("data", (f: ForwardFrameMsg) => frames.push(f)); // read, never answered
      },
    }, timeoutMs);
    try {
      const started = performance.now();
      const err = await transport.forwardWrites("peer", [write("slow")]).then(() => undefined, (e) => e);
      const ms = performance.now() - started;
      console.log(`failed after ${ms.toFixed(0)} ms (timeout ${timeoutMs} ms): ${err}`);
      assert.ok(err instanceof PeerUnavailableError, `expected an unreachable peer, got ${err}`);
      assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(ms >= timeoutMs - 5 && ms < 10 * timeoutMs, `failed after ${ms} ms`);
      await sleep(2 * timeoutMs);
      assert.equal(frames.length, 1, "the timed-out write was not sent again");
      assert.deepEqual(frames[0].put!.items.map((i) => i.key), ["slow"]);
    } finally {
      stop();
    }
  },
);

clusterTest(
  "a stream the peer breaks fails its pending forwards UNAVAILABLE, and the next forward opens a new one",
  async () => {
    let streams = 0;
    const { transport, stop } = await stubPeer({
      ForwardStream: (call: grpc.ServerDuplexStream<ForwardFrameMsg, ForwardReplyMsg>) => {
        const n = ++streams;
        call.on("data", (f: ForwardFrameMsg) => {
          if (n === 1) call.emit("error", { code: grpc.status.UNAVAILABLE, details: "going away" });
          else {call.write({
              id: f.id,
              put: { results: f.put!.items.map(() => putResult("peer")) },
              error_code: 0,
              error_message: "",
            });}
        });
        call.on("end", () => call.end());
      },
    });
    try {
      const broken = await Promise.allSettled([
        transport.forwardWrites("peer", [write("a")]),
        transport.forwardWrites("peer", [write("b")]),
      ]);
      for (const r of broken) {
        assert.equal(r.status, "rejected");
        const err = (r as PromiseRejectedResult).reason;
        assert.ok(err instanceof KvError && err.code === grpc.status.UNAVAILABLE, `${err}`);
      }
      const [ok] = await transport.forwardWrites("peer", [write("c")]);
      assert.equal(ok.ok, true, ok.message);
      assert.equal(streams, 2);
    } finally {
      stop();
    }
  },
);

clusterTest(
  "small replication batches go on the stream; a large one, or one to a peer without the stream, as a ReplicateBatch call",
  async () => {
    const unary: number[] = [];
    const framed: number[] = [];
    const applied = (n: number) => ({ success: true, message: "", replica_node_id: "peer", applied: n });
    const replicateBatch: Unary = (call, cb) => {
      const n = (call.request.items as unknown[]).length;
      unary.push(n);
      cb(null, applied(n));
    };
    const item = (key: string, bytes: number) => ({
      record: { key, value: new Uint8Array(bytes), timestamp: 1, versionNode: "node1", tombstone: false },
    });
    const withStream = await stubPeer({
      ReplicateBatch: replicateBatch,
      ForwardStream: (call: grpc.ServerDuplexStream<ForwardFrameMsg, ForwardReplyMsg>) => {
        call.on("data", (f: ForwardFrameMsg) => {
          framed.push(f.repl!.items.length);
          call.write({ id: f.id, repl: applied(f.repl!.items.length), error_code: 0, error_message: "" });
        });
        call.on("end", () => call.end());
      },
    });
    try {
      assert.equal(await withStream.transport.replicate("peer", [item("a", 100), item("b", 100)]), 2);
      const large = Array.from({ length: 40 }, (_, i) => item(`big${i}`, 4096)); // 160 KiB
      assert.equal(await withStream.transport.replicate("peer", large), 40);
      assert.deepEqual(framed, [2], "the small batch went as a frame");
      assert.deepEqual(unary, [40], "the large batch went as a call");
    } finally {
      withStream.stop();
    }
    const old = await stubPeer({ ReplicateBatch: replicateBatch });
    try {
      assert.equal(await old.transport.replicate("peer", [item("c", 100)]), 1);
      assert.deepEqual(unary, [40, 1], "a peer without the stream gets the call");
    } finally {
      old.stop();
    }
  },
);
