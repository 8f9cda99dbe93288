/**
 * The ioredis rate limiter (examples/rate_limiter_ioredis.ts): against a
 * real redis-server, showing the program is plain Redis, and against
 * kvstore's Redis-protocol gateway on real nodes, with the same output as
 * the library's rate limiter.
 * The example's INCR and SET ... PX ... NX are conditional writes, so the
 * gateway's cluster is one ready for them (startLwtRespCluster).
 */
import assert from "node:assert/strict";
import { startRedisServer } from "../lib/redis_server.ts";
import { clusterTest, endCluster } from "./helpers/cluster.ts";
import { linesOf, RATE_LIMITER_OUTPUT, runDenoExample } from "./helpers/examples.ts";
import { freePort } from "./helpers/ports.ts";
import { ignoreRedis } from "./helpers/redis.ts";
import { startLwtRespCluster } from "./helpers/resp.ts";

clusterTest("examples: the ioredis rate limiter against a real redis-server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-example-redis-" });
  const redis = await startRedisServer({ port: freePort(), dir, appendOnly: false });
  try {
    const out = linesOf(await runDenoExample("rate_limiter_ioredis.ts", `127.0.0.1:${redis.port}`));
    assert.deepEqual(out, RATE_LIMITER_OUTPUT);
  } finally {
    await redis.kill9();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}, { ignore: ignoreRedis });

clusterTest("examples: the ioredis rate limiter against the RESP gateway of three nodes", async () => {
  const { cluster, ports } = await startLwtRespCluster({ nodes: 3 });
  try {
    const out = linesOf(await runDenoExample("rate_limiter_ioredis.ts", `127.0.0.1:${ports[1]}`));
    assert.deepEqual(out, RATE_LIMITER_OUTPUT);
  } finally {
    await endCluster(cluster);
  }
});
