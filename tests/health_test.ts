/**
 * The grpc.health.v1 service of real nodes: NOT_SERVING while a node is
 * JOINING, SERVING once ACTIVE, NOT_SERVING while its Redis is down and again
 * once it is back, and NOT_SERVING as soon as it starts shutting down (seen on
 * a Watch stream before the process exits). Reflection lists every service.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, sleep, TestCluster } from "./helpers/cluster.ts";
import {
  healthCheck,
  healthClient,
  healthWatch,
  reflectedFiles,
  reflectedServices,
} from "./helpers/grpc_tools.ts";
import { redisServerPath, startRedisServer } from "../lib/redis_server.ts";
import { freePort } from "./helpers/ports.ts";

const redisAvailable = redisServerPath() !== undefined;

/** Polls Check until it answers `want`; returns how long that took. */
async function until(
  client: ReturnType<typeof healthClient>,
  want: string,
  ms: number,
  service = "",
): Promise<number> {
  const t0 = Date.now();
  let last = "";
  while (Date.now() - t0 < ms) {
    last = await healthCheck(client, service);
    if (last === want) return Date.now() - t0;
    await sleep(50);
  }
  throw new Error(`health of "${service}" still ${last} after ${ms} ms, wanted ${want}`);
}

clusterTest(
  "a node is NOT_SERVING while JOINING, then SERVING once ACTIVE, for the server and for kvstore.KeyValueStore",
  async () => {
    // node1 starts alone: its recovery waits for its peers for failure_timeout_ms (JOINING).
    const failureMs = 3000;
    const cluster = await TestCluster.start({ startOnly: [], failureMs });
    const client = healthClient(cluster.node("node1").address);
    try {
      await cluster.startNode("node1");
      const seen: string[] = [];
      healthWatch(client, seen);
      assert.equal(await healthCheck(client), "NOT_SERVING");
      assert.equal(await healthCheck(client, "kvstore.KeyValueStore"), "NOT_SERVING");
      assert.match(await healthCheck(client, "no.such.Service"), /^error 5:/, "unknown service: NOT_FOUND");
      const waited = await until(client, "SERVING", 4 * failureMs);
      console.log(`  SERVING ${waited} ms after node1 listened (its recovery waits up to ${failureMs} ms)`);
      assert.equal(await healthCheck(client, "kvstore.KeyValueStore"), "SERVING");
      await sleep(300);
      assert.deepEqual(seen, ["NOT_SERVING", "SERVING"], "the Watch stream saw the transition");
    } finally {
      await endCluster(cluster);
      client.close();
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "health turns NOT_SERVING as soon as the node starts shutting down, before it exits",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1 });
    const client = healthClient(cluster.node("node1").address);
    try {
      const seen: string[] = [];
      healthWatch(client, seen);
      await until(client, "SERVING", 10_000);
      await sleep(200);
      await cluster.signal("node1", "SIGTERM");
      assert.equal(seen[0], "SERVING");
      assert.equal(seen[1], "NOT_SERVING", `Watch saw ${seen.join(", ")}`);
    } finally {
      await endCluster(cluster);
      client.close();
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "a node whose Redis is killed is NOT_SERVING until Redis is back",
  async () => {
    if (!redisAvailable) throw new Error("redis-server is required in CI: apt-get install -y redis-server");
    const dir = await Deno.makeTempDir({ prefix: "kvstore-health-redis-" });
    const port = freePort();
    let redis = await startRedisServer({ port, dir, appendOnly: false });
    const cluster = await TestCluster.start({ nodes: 1, storage: "redis", redisPorts: [port] });
    const client = healthClient(cluster.node("node1").address);
    try {
      await until(client, "SERVING", 10_000);
      await redis.kill9();
      const down = await until(client, "NOT_SERVING", 20_000);
      console.log(`  NOT_SERVING ${down} ms after Redis was killed`);
      const ready = await fetch(`http://127.0.0.1:${cluster.node("node1").adminPort}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /storage unavailable/);
      redis = await startRedisServer({ port, dir, appendOnly: false });
      const up = await until(client, "SERVING", 30_000);
      console.log(`  SERVING again ${up} ms after Redis restarted`);
    } finally {
      await endCluster(cluster);
      client.close();
      await redis.kill9();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  { timeoutMs: 90_000, ignore: !redisAvailable && !Deno.env.get("CI") },
);

clusterTest(
  "reflection lists the store's services and the health service",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1 });
    try {
      assert.deepEqual(await reflectedServices(cluster.node("node1").address), [
        "grpc.health.v1.Health",
        "kvstore.KeyValueStore",
        "kvstore.NodeService",
      ]);
      // What a tool needs to call a method without the .proto: its file's descriptor.
      const text = new TextDecoder();
      for (const symbol of ["kvstore.KeyValueStore", "grpc.health.v1.Health"]) {
        const files = await reflectedFiles(cluster.node("node1").address, symbol);
        const method = symbol.endsWith("Health") ? "Check" : "Put";
        assert.ok(
          files.some((f) => text.decode(f).includes(method)),
          `${symbol}: descriptor names ${method}`,
        );
      }
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);
