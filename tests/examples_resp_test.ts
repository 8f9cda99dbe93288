/**
 * The ioredis rate limiter (examples/rate_limiter_ioredis.ts): against a
 * real redis-server, showing the program is plain Redis, and against
 * kvstore's Redis-protocol gateway on real nodes, with the same output as
 * the library's rate limiter.
 *
 * The gateway run is ignored (visibly) while the gateway's command table
 * says INCR or SETEX still needs something: the example needs INCR
 * (conditional writes, wired) and SET ... NX PX, which needs expiry and
 * conditional writes carrying a TTL. Once SETEX runs, a gateway still
 * answering "'SET ... PX' needs ..." makes this test fail, saying so.
 */
import assert from "node:assert/strict";
import { CommandTable } from "../lib/resp/table.ts";
import { startRedisServer } from "../lib/redis_server.ts";
import { clusterTest, endCluster } from "./helpers/cluster.ts";
import { linesOf, RATE_LIMITER_OUTPUT, runDenoExample } from "./helpers/examples.ts";
import { freePort } from "./helpers/ports.ts";
import { ignoreRedis } from "./helpers/redis.ts";
import { startRespCluster } from "./helpers/resp.ts";

const table = new CommandTable();
const gatewayCounts = table.find("incr")?.needs === undefined && table.find("setex")?.needs === undefined;

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
  const { cluster, ports } = await startRespCluster({ nodes: 3 });
  try {
    const out = linesOf(await runDenoExample("rate_limiter_ioredis.ts", `127.0.0.1:${ports[1]}`));
    assert.deepEqual(out, RATE_LIMITER_OUTPUT);
  } finally {
    await endCluster(cluster);
  }
}, { ignore: !gatewayCounts });
