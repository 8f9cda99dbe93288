/**
 * Graceful shutdown: lib/grpc/shutdown.ts on an in-process gRPC server, and
 * a node process stopped with SIGTERM while clients keep calling it.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, logLines, TestCluster } from "./helpers/cluster.ts";
import { shutdownServer } from "../lib/grpc/shutdown.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { serverStream } from "../lib/grpc/call.ts";
import { KvError } from "../lib/errors.ts";
import { codeName } from "../lib/cli/client_cmd.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";

/** A NodeService server whose StreamRecords never ends (a stream to a peer that froze). */
async function serverWithStuckStream(): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  server.addService(kvstorePackage().NodeService.service, {
    StreamRecords: () => {/* never writes, never ends */},
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { server, address: `127.0.0.1:${port}` };
}

clusterTest(
  "a server with no calls shuts down gracefully; one with a stuck stream is forced after the bound",
  async () => {
    const idle = await serverWithStuckStream();
    assert.equal(await shutdownServer(idle.server, 2000), "graceful");

    const stuck = await serverWithStuckStream();
    const client = new (kvstorePackage().NodeService)(stuck.address, grpc.credentials.createInsecure());
    try {
      const stream = serverStream(client, "StreamRecords", { requesting_node_id: "x" }, 60_000);
      const ended = (async () => {
        try {
          for await (const _ of stream) { /* nothing comes */ }
          return "ended without error";
        } catch (err) {
          return grpc.status[(err as grpc.ServiceError).code];
        }
      })();
      await new Promise((r) => setTimeout(r, 300)); // the call is open on the server
      const bound = 500;
      const started = Date.now();
      assert.equal(await shutdownServer(stuck.server, bound), "forced");
      const ms = Date.now() - started;
      const how = await ended;
      console.log(
        `stuck stream: forced after ${ms} ms (bound ${bound} ms); the client's stream ended ${how}`,
      );
      assert.ok(ms >= bound && ms < 4 * bound, `${ms} ms`);
      assert.ok(how === "CANCELLED" || how === "UNAVAILABLE", `the stream ended ${how}`);
    } finally {
      client.close();
    }
  },
);

/** Puts unique keys through `client` with `n` in flight until `stop()`; counts what came back. */
function writers(client: KvClient, n: number) {
  const acked: string[] = [];
  const errors = new Map<string, number>();
  let running = true;
  let seq = 0;
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      const key = `drain-${seq++}`;
      try {
        if ((await client.put(key, "v")).ok) acked.push(key);
      } catch (err) {
        const name = err instanceof KvError ? codeName(err.code) : "?";
        const what = `${name}: ${err instanceof Error ? err.message.slice(0, 60) : err}`;
        errors.set(what, (errors.get(what) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  });
  return {
    acked,
    errors,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

clusterTest(
  "SIGTERM under load: calls in flight finish, new calls are UNAVAILABLE, every acknowledged write survives, exit 0",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 2 });
    try {
      const via1 = await cluster.client({ via: "node1", route: false, timeoutMs: 5000 });
      const load = writers(via1, 16);
      await cluster.waitFor(() => load.acked.length >= 300, 30_000, "300 acknowledged writes");
      const started = Date.now();
      await cluster.signal("node1", "SIGTERM"); // the harness fails the test unless it exits 0
      const ms = Date.now() - started;
      await new Promise((r) => setTimeout(r, 200)); // calls that were refused, or found the port closed
      await load.stop();
      const errors = [...load.errors.entries()].map(([e, n]) => `${n} x ${e}`);
      console.log(`node1 exited ${ms} ms after SIGTERM; ${load.acked.length} writes acknowledged; errors:`);
      for (const e of errors) console.log(`  ${e}`);
      assert.match(logLines(cluster, "node1", "stopped").join("\n"), /grpc_shutdown=graceful/);
      for (const e of load.errors.keys()) assert.match(e, /^UNAVAILABLE: /, `a call failed otherwise: ${e}`);
      // Every write node1 acknowledged is on node2 (replication_factor 2: both hold every key).
      const via2 = await cluster.client({ via: "node2", route: false, timeoutMs: 5000 });
      const missing: string[] = [];
      for (const key of load.acked) {
        const r = await via2.get(key, { fromReplica: true, address: cluster.node("node2").address });
        if (!r.found) missing.push(key);
      }
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged writes are not on node2`);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 120_000 },
);

clusterTest("while a node finishes stopping, a new call is refused UNAVAILABLE with the reason", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 2 });
  try {
    const via1 = await cluster.client({ via: "node1", route: false, timeoutMs: 5000 });
    // With node2 frozen, node1's stop waits on its replication to node2 (up to
    // rpc_timeout_ms): the window in which it is up but refusing calls.
    await cluster.signal("node2", "SIGSTOP");
    assert.equal((await via1.put("queued-for-node2", "v")).ok, true);
    const stopping = cluster.signal("node1", "SIGTERM");
    await cluster.waitFor(
      () => /received SIGTERM/.test(cluster.logs("node1")),
      10_000,
      "node1 to start stopping",
    );
    await new Promise((r) => setTimeout(r, 400)); // past the 200 ms NOT_SERVING notice
    const err = await via1.put("too-late", "v").then(() => undefined, (e) => e);
    await cluster.signal("node2", "SIGCONT");
    await stopping;
    assert.ok(err instanceof KvError, `the call was not refused: ${err}`);
    assert.equal(codeName(err.code), "UNAVAILABLE");
    assert.match(err.message, /node node1 is shutting down/);
  } finally {
    await cluster.stop();
  }
});
