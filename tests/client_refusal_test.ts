/**
 * A routing client keeps sending requests to a node that refused a
 * conditional operation: the refusal (UNAVAILABLE: too few of the key's
 * replicas) is that node's answer, so it is up. Found by the chaos suite
 * (rf2-w2-sloppy/kill-9-memory): with one node down every conditional
 * operation on its keys is refused by a live node; the client took each
 * refusal for a node that did not answer and avoided the live nodes, and
 * with all of them avoided it sent plain writes to the dead one (8 to 30 %
 * of write-once puts failed). Plain writes refused by a strict quorum did the
 * same. Real nodes over real gRPC, one killed -9.
 */
import assert from "node:assert/strict";
import { Code, KvError } from "../lib/errors.ts";
import { answeredByServer } from "../lib/grpc/call.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import { clusterTest, ringOf, waitForStatus } from "./helpers/cluster.ts";
import { startConditionalCluster } from "./helpers/lwt.ts";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";

/** The first key `${prefix}${i}` whose two replicas are exactly `pair` (in any order). */
function keyOn(ring: ReturnType<typeof ringOf>, pair: [string, string], prefix: string): string {
  for (let i = 0;; i++) {
    const list = ring.preferenceList(`${prefix}${i}`, 2);
    if (pair.every((id) => list.includes(id))) return `${prefix}${i}`;
  }
}

/**
 * Kills node1 (the client's first address, where a client that avoids every
 * node falls back), gets one refusal from each live node for a key node1 is a
 * replica of, then puts a key of the two live nodes, which must succeed.
 */
async function refusalsThenPut(
  writeQuorum: number,
  refuse: (client: KvClient, key: string) => Promise<unknown>,
  refusal?: RegExp,
): Promise<void> {
  const cluster = await startConditionalCluster({ nodes: 3, replicationFactor: 2, writeQuorum });
  try {
    const client = await cluster.client({ via: "node1", timeoutMs: 4000 });
    const ring = ringOf(cluster);
    await cluster.kill("node1");
    await waitForStatus(cluster, client, ["node2", "node3"], "node1", ["FAILED"], 15_000);
    await client.refresh();
    for (const peer of ["node2", "node3"]) {
      const key = keyOn(ring, ["node1", peer], `refused-${peer}-`);
      const err = await refuse(client, key).then(() => undefined, (e) => e);
      assert.ok(err instanceof KvError && err.code === Code.UNAVAILABLE, `${key}: ${err}`);
      if (refusal) assert.match(err.message, refusal, "the refusal should be a live node's answer");
    }
    const plain = keyOn(ring, ["node2", "node3"], "plain-");
    const started = performance.now();
    const put = await client.put(plain, "v").catch((e) => e);
    console.log(`plain put after two refusals: ${put instanceof Error ? put.message : "ok"}`);
    console.log(`  in ${(performance.now() - started).toFixed(0)} ms`);
    assert.ok(!(put instanceof Error) && put.ok, `plain put of ${plain} failed: ${put}`);
  } finally {
    await cluster.stop();
  }
}

clusterTest(
  "rf 2, one node killed: refused conditional operations do not steer a routing client's plain writes to it",
  () => refusalsThenPut(1, (client, key) => client.increment(key), /not applied/),
);

clusterTest(
  "rf 2 strict W 2, one node killed: refused plain writes do not steer the client's other writes to it",
  // Refused by node2 and node3, the put is also tried on node1 (down): its last error is that one.
  () => refusalsThenPut(2, (client, key) => client.put(key, "x")),
);

Deno.test("answeredByServer: a status the server sent, not one the transport made up", async () => {
  const server = new grpc.Server();
  const service = {
    Ping: {
      path: "/t.T/Ping",
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Uint8Array) => b,
      requestDeserialize: (b: Uint8Array) => b,
      responseSerialize: (b: Uint8Array) => b,
      responseDeserialize: (b: Uint8Array) => b,
    },
  } as unknown as grpc.ServiceDefinition;
  server.addService(service, {
    Ping: (_: unknown, cb: grpc.sendUnaryData<Uint8Array>) =>
      cb({ code: grpc.status.UNAVAILABLE, details: "refused" }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  const Client = grpc.makeGenericClientConstructor(service, "T");
  const call = (address: string) =>
    new Promise<grpc.ServiceError>((resolve) => {
      const c = new Client(address, grpc.credentials.createInsecure());
      c.makeUnaryRequest(
        "/t.T/Ping",
        (b: Uint8Array) => Buffer.from(b),
        (b: Uint8Array) => b,
        new Uint8Array(),
        { deadline: Date.now() + 2000 },
        (err) => {
          c.close();
          resolve(err!);
        },
      );
    });
  try {
    const refused = await call(`127.0.0.1:${port}`);
    assert.equal(refused.code, grpc.status.UNAVAILABLE);
    assert.equal(answeredByServer(refused), true, "the server's own UNAVAILABLE");
  } finally {
    server.forceShutdown();
  }
  const down = await call(`127.0.0.1:${port}`);
  assert.equal(down.code, grpc.status.UNAVAILABLE);
  assert.equal(answeredByServer(down), false, `no server: ${down.details}`);
});
