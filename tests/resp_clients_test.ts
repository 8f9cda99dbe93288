/**
 * Real Redis clients nobody here wrote, against a real 3-node cluster's
 * Redis protocol gateway: ioredis (RESP2, INFO ready check), node-redis
 * (HELLO 3, RESP3), redis-py (Debian python3-redis) and redis-benchmark,
 * each writing through one node and reading through another.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { createClient, RESP_TYPES } from "redis";
import { clusterTest } from "./helpers/cluster.ts";
import { runRedisPy, startRespCluster } from "./helpers/resp.ts";

const PY = `
import sys, redis
a = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
b = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]))
assert b.get("from-node-redis") == b"node-redis wrote this", b.get("from-node-redis")
a.set("py:bin", bytes(range(256)))
assert b.get("py:bin") == bytes(range(256))
p = a.pipeline(transaction=False)
for i in range(50):
    p.set(f"py:{i}", str(i))
assert p.execute() == [True] * 50
assert b.mget([f"py:{i}" for i in range(50)]) == [str(i).encode() for i in range(50)]
assert sorted(k.decode() for k in b.scan_iter(match="py:*", count=5)) == sorted(["py:bin"] + [f"py:{i}" for i in range(50)])
print("python ok")
`;

clusterTest(
  "ioredis, node-redis (HELLO 3), redis-py and redis-benchmark through different nodes",
  async () => {
    const { cluster, ports } = await startRespCluster({ nodes: 3, replicationFactor: 2 });
    const io = new Redis({ host: "127.0.0.1", port: ports[0], lazyConnect: true, maxRetriesPerRequest: 1 });
    const nr = createClient({ url: `redis://127.0.0.1:${ports[1]}`, RESP: 3 });
    nr.on("error", () => {});
    try {
      // ioredis: its INFO ready check, a pipeline, binary values.
      await io.connect();
      assert.equal(await io.set("io:key", "ioredis wrote this"), "OK");
      const piped = await io.pipeline().set("io:a", "1").set("io:b", "2").get("io:a").mget("io:a", "io:b")
        .exec();
      assert.deepEqual(piped!.map(([e, v]: [Error | null, unknown]) => [e, v]), [[null, "OK"], [null, "OK"], [
        null,
        "1",
      ], [null, ["1", "2"]]]);
      await io.set("io:bin", Buffer.from([0, 13, 10, 255, 0]));

      // node-redis over RESP3 (HELLO 3), reading what ioredis wrote through another node.
      await nr.connect();
      assert.equal(await nr.get("io:key"), "ioredis wrote this");
      const bin = await nr.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get("io:bin");
      assert.deepEqual([...(bin as unknown as Buffer)], [0, 13, 10, 255, 0]);
      assert.equal(await nr.set("from-node-redis", "node-redis wrote this"), "OK");
      assert.equal(await nr.exists(["io:a", "io:b", "missing"]), 2);
      assert.equal(await nr.dbSize() >= 4, true);

      // redis-py (RESP2), through node 3 then node 1.
      await runRedisPy(PY, [ports[2], ports[0]]);
      assert.equal(await io.get("py:49"), "49");

      // redis-benchmark: a short bounded run, without and with pipelining.
      for (const extra of [[], ["-P", "16"]]) {
        const run = await new Deno.Command("redis-benchmark", {
          args: [
            "-p",
            String(ports[2]),
            "-t",
            "set,get",
            "-n",
            "2000",
            "-c",
            "10",
            "-r",
            "1000",
            "-q",
            ...extra,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
        assert.equal(run.code, 0, out);
        assert.doesNotMatch(out, /error|ERR|WARNING/i, out);
        const rates = [...out.matchAll(/(SET|GET): ([0-9.]+) requests per second/g)].map((m) =>
          `${m[1]} ${m[2]}/s`
        );
        assert.equal(rates.length, 2, out);
        console.log(`  redis-benchmark -n 2000 -c 10 ${extra.join(" ")}: ${rates.join(", ")}`);
      }
      assert.equal(await io.exists("key:__rand_int__"), 0);
    } finally {
      io.disconnect();
      await nr.close().catch(() => {});
      await cluster.stop();
    }
  },
);
