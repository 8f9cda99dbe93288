/**
 * The gateway's expiry commands against a real 3-node cluster: SET with
 * EX/PX/EXAT/PXAT, SETEX, PSETEX, TTL/PTTL/EXPIRETIME/PEXPIRETIME, EXPIRE
 * and its kin, PERSIST and plain GETEX, through redis-cli, ioredis and
 * redis-py, each written through one node and observed through another and
 * over gRPC (an expired key reads absent there too). Replies and errors
 * are compared word for word with a real redis-server 7.0 given the same
 * commands.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { clusterTest } from "./helpers/cluster.ts";
import { type Decoded, RawResp, redisCli, runRedisPy, startLwtRespCluster } from "./helpers/resp.ts";
import { ignoreRedis, redisAvailable, startRedises, stopRedises } from "./helpers/redis.ts";

/** Polls `check` every 100 ms until it holds, at most `maxMs`; whether it did. */
async function eventually(check: () => Promise<boolean>, maxMs: number): Promise<boolean> {
  for (const end = Date.now() + maxMs; Date.now() < end;) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return await check();
}

const cli = async (port: number, ...args: string[]) => (await redisCli(port, args)).out.trimEnd();

clusterTest(
  "SET EX, SETEX, PSETEX, TTL, EXPIRE, PERSIST through different nodes, redis-cli and gRPC",
  async () => {
    const { cluster, ports } = await startLwtRespCluster({ nodes: 3, replicationFactor: 2 });
    try {
      const grpc = await cluster.client();
      // SET k v EX 1 through node 1: its expiry is seen through node 2, node 3 and gRPC, then it expires everywhere.
      assert.equal(await cli(ports[0], "SET", "s:ex", "v", "EX", "1"), "OK");
      assert.equal(await cli(ports[1], "TTL", "s:ex"), "1");
      const pttl = Number(await cli(ports[2], "PTTL", "s:ex"));
      assert.ok(pttl > 0 && pttl <= 1000, `PTTL ${pttl}`);
      const viaGrpc = await grpc.get("s:ex");
      assert.ok(viaGrpc.found && viaGrpc.expiresAtMs! > 0, "gRPC Get returns the expiry");
      assert.equal(await cli(ports[1], "PEXPIRETIME", "s:ex"), String(viaGrpc.expiresAtMs));
      const t0 = Date.now();
      assert.ok(
        await eventually(async () => !(await grpc.get("s:ex")).found, 5000),
        "gRPC still finds the key 5 s after its 1 s expiry",
      );
      console.log(`  SET EX 1: gRPC Get not found ${Date.now() - t0} ms after the TTL check`);
      assert.equal(await cli(ports[1], "GET", "s:ex"), "");
      assert.equal(await cli(ports[2], "TTL", "s:ex"), "-2");
      assert.equal(await cli(ports[0], "EXISTS", "s:ex"), "0");

      // SETEX and PSETEX; a plain SET afterwards drops the expiry, as in Redis.
      assert.equal(await cli(ports[2], "SETEX", "s:setex", "100", "v"), "OK");
      assert.equal(await cli(ports[0], "TTL", "s:setex"), "100");
      assert.equal(await cli(ports[1], "PSETEX", "s:psetex", "800", "pv"), "OK");
      const left = Number(await cli(ports[2], "PTTL", "s:psetex"));
      assert.ok(left > 0 && left <= 800, `PTTL ${left}`);
      assert.equal(await cli(ports[2], "GET", "s:psetex"), "pv");
      assert.ok(await eventually(async () => (await cli(ports[0], "GET", "s:psetex")) === "", 5000));
      assert.equal((await grpc.get("s:psetex")).found, false);
      assert.equal(await cli(ports[1], "SET", "s:setex", "w"), "OK");
      assert.equal(await cli(ports[0], "TTL", "s:setex"), "-1");

      // EXAT / PXAT: absolute; one already past stores the key expired.
      const at = Math.floor(Date.now() / 1000) + 3600;
      assert.equal(await cli(ports[0], "SET", "s:exat", "v", "EXAT", String(at)), "OK");
      assert.equal(await cli(ports[1], "EXPIRETIME", "s:exat"), String(at));
      assert.equal(await cli(ports[1], "PEXPIRETIME", "s:exat"), String(at * 1000));
      assert.equal(await cli(ports[2], "SET", "s:pxat", "v", "PXAT", "1"), "OK");
      assert.equal(await cli(ports[0], "GET", "s:pxat"), "");

      // EXPIRE on a key written over gRPC, TTL through another node; PERSIST; a past time deletes.
      await grpc.put("s:grpc", "from gRPC");
      assert.equal(await cli(ports[0], "TTL", "s:grpc"), "-1");
      assert.equal(await cli(ports[0], "EXPIRE", "s:grpc", "50"), "1");
      assert.equal(await cli(ports[2], "TTL", "s:grpc"), "50");
      assert.ok((await grpc.get("s:grpc")).expiresAtMs! > Date.now());
      assert.equal(await cli(ports[1], "PEXPIRE", "s:grpc", "90000"), "1");
      assert.equal(await cli(ports[0], "TTL", "s:grpc"), "90");
      assert.equal(await cli(ports[1], "PERSIST", "s:grpc"), "1");
      assert.equal(await cli(ports[2], "TTL", "s:grpc"), "-1");
      assert.equal(await cli(ports[2], "PERSIST", "s:grpc"), "0");
      assert.equal((await grpc.get("s:grpc")).expiresAtMs ?? 0, 0);
      assert.equal(await cli(ports[0], "GET", "s:grpc"), "from gRPC", "EXPIRE and PERSIST keep the value");
      assert.equal(await cli(ports[0], "EXPIREAT", "s:grpc", String(at)), "1");
      assert.equal(await cli(ports[1], "EXPIRETIME", "s:grpc"), String(at));
      assert.equal(await cli(ports[0], "EXPIRE", "s:missing", "10"), "0");
      assert.equal(await cli(ports[0], "PERSIST", "s:missing"), "0");
      assert.equal(await cli(ports[0], "EXPIRE", "s:grpc", "0"), "1");
      assert.equal(await cli(ports[1], "EXISTS", "s:grpc"), "0");
      assert.equal((await grpc.get("s:grpc")).found, false);
      assert.equal(await cli(ports[0], "EXPIRE", "s:grpc", "-5"), "0");
      // A short PEXPIRE through one node: the key expires over gRPC and through the others.
      await grpc.put("s:short", "v");
      assert.equal(await cli(ports[2], "PEXPIRE", "s:short", "400"), "1");
      assert.ok(await eventually(async () => !(await grpc.get("s:short")).found, 5000));
      assert.equal(await cli(ports[0], "GET", "s:short"), "");
      assert.equal(await cli(ports[1], "PTTL", "s:short"), "-2");

      // GETEX without options is a GET.
      await grpc.put("s:getex", "g");
      assert.equal(await cli(ports[1], "GETEX", "s:getex"), "g");
      assert.equal(await cli(ports[0], "TTL", "s:getex"), "-1");
    } finally {
      await cluster.stop();
    }
  },
);

const PY = `
import sys, time, redis
a = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
b = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]))
assert a.set("py:ttl", "v", ex=100) is True
assert b.ttl("py:ttl") == 100, b.ttl("py:ttl")
assert a.expire("py:ttl", 30) is True
assert b.ttl("py:ttl") == 30
assert 0 < b.pttl("py:ttl") <= 30000
assert a.persist("py:ttl") is True
assert b.ttl("py:ttl") == -1
assert a.setex("py:setex", 40, "x") is True
assert b.ttl("py:setex") == 40
assert a.psetex("py:psetex", 300, "y") is True
assert b.get("py:psetex") == b"y"
for _ in range(50):
    if b.get("py:psetex") is None: break
    time.sleep(0.1)
assert b.get("py:psetex") is None
assert b.expire("py:absent", 10) is False
try:
    a.set("py:ttl", "v", ex=0)
    raise SystemExit("EX 0 did not fail")
except redis.ResponseError as e:
    assert str(e) == "invalid expire time in 'set' command", str(e)
print("python ok")
`;

clusterTest(
  "ioredis and redis-py: SET EX, EXPIRE then TTL, PERSIST, SETEX, PSETEX through different nodes",
  async () => {
    const { cluster, ports } = await startLwtRespCluster({ nodes: 3, replicationFactor: 2 });
    const io = new Redis({ host: "127.0.0.1", port: ports[0], lazyConnect: true, maxRetriesPerRequest: 1 });
    const io2 = new Redis({ host: "127.0.0.1", port: ports[1], lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await io.connect();
      await io2.connect();
      assert.equal(await io.set("io:k", "v"), "OK");
      assert.equal(await io.expire("io:k", 60), 1);
      assert.equal(await io2.ttl("io:k"), 60);
      assert.equal(await io.set("io:px", "v", "PX", 5000), "OK");
      const px = await io2.pttl("io:px");
      assert.ok(px > 0 && px <= 5000, `PTTL ${px}`);
      assert.equal(await io.setex("io:sx", 70, "v"), "OK");
      assert.equal(await io2.ttl("io:sx"), 70);
      assert.equal(await io2.persist("io:sx"), 1);
      assert.equal(await io.ttl("io:sx"), -1);
      assert.equal(await io.pexpire("io:missing", 100), 0);
      await assert.rejects(
        io.setex("io:sx", 0, "v"),
        /^ReplyError: ERR invalid expire time in 'setex' command$/,
      );

      await runRedisPy(PY, [ports[2], ports[0]]);
    } finally {
      io.disconnect();
      io2.disconnect();
      await cluster.stop();
    }
  },
);

/** Commands whose replies (errors included) must match redis-server 7.0's exactly; `dk` exists, `dm` does not. */
const SAME_AS_REDIS: string[][] = [
  ["SET", "dk", "v", "EX", "0"],
  ["SET", "dk", "v", "EX", "-1"],
  ["SET", "dk", "v", "EX", "abc"],
  ["SET", "dk", "v", "EX", "1.5"],
  ["SET", "dk", "v", "ex", "01"],
  ["SET", "dk", "v", "EX", "1", "PX", "1"],
  ["SET", "dk", "v", "PXAT", "1", "EXAT", "1"],
  ["SET", "dk", "v", "KEEPTTL", "EX", "1"],
  ["SET", "dk", "v", "EX", "1", "KEEPTTL"],
  ["SET", "dk", "v", "NX", "XX"],
  ["SET", "dk", "v", "EX"],
  ["SET", "dk", "v", "PERSIST"],
  ["SET", "dk", "v", "EXAT", "0"],
  ["SET", "dk", "v", "PX", "9223372036854775807"],
  ["SET", "dk", "v", "EX", "9223372036854775807"],
  ["SET", "dk", "v", "EX", "9223372036854775808"],
  ["SET", "dk", "v", "EXAT", "9223372036854775807"],
  ["SET", "dk", "v", "NX", "EX", "0"],
  ["SETEX", "dk", "0", "v"],
  ["SETEX", "dk", "abc", "v"],
  ["PSETEX", "dk", "-5", "v"],
  ["SETEX", "dk", "1"],
  ["PSETEX", "dk", "1", "v", "x"],
  ["EXPIRE", "dk", "10", "FOO"],
  ["EXPIRE", "dk", "abc", "FOO"],
  ["EXPIRE", "dk", "10", "NX", "XX"],
  ["EXPIRE", "dk", "10", "nx", "gt"],
  ["PEXPIRE", "dk", "10", "GT", "LT"],
  ["EXPIRE", "dk", "abc"],
  ["EXPIRE", "dk", "9223372036854775807"],
  ["EXPIREAT", "dk", "-9223372036854775807"],
  ["PEXPIRE", "dk", "9223372036854775807"],
  ["EXPIRE", "dk"],
  ["PERSIST"],
  ["TTL", "dk", "x"],
  ["GETEX", "dk", "EX", "1", "PERSIST"],
  ["GETEX", "dk", "FOO"],
  ["GETEX", "dk", "NX"],
  ["TTL", "dm"],
  ["PTTL", "dm"],
  ["EXPIRETIME", "dm"],
  ["PEXPIRETIME", "dm"],
  ["TTL", "dk"],
  ["PEXPIRETIME", "dk"],
  ["EXPIRE", "dm", "10"],
  ["EXPIRE", "dm", "0"],
  ["PERSIST", "dk"],
  ["PERSIST", "dm"],
  ["GETEX", "dk"],
  ["GETEX", "dm"],
  ["EXPIRE", "dk", "100"],
  ["TTL", "dk"],
  ["PERSIST", "dk"],
  ["TTL", "dk"],
  ["SET", "dk", "v", "EX", "1", "EX", "200"],
  ["TTL", "dk"],
  ["SETEX", "dk", "300", "w"],
  ["TTL", "dk"],
  ["GET", "dk"],
  ["SET", "dk", "v"],
  ["TTL", "dk"],
  ["PEXPIRE", "dk", "-1"],
  ["EXISTS", "dk"],
  ["SET", "dk", "v", "PXAT", "1"],
  ["GET", "dk"],
  ["SET", "dk", "v"],
  ["EXPIREAT", "dk", "1"],
  ["EXISTS", "dk"],
  // SET's conditional options: NX, XX, GET (Redis 7.0: with NX too), KEEPTTL.
  ["SET", "dk", "v"],
  ["SET", "dk", "w", "NX"],
  ["SET", "dm", "w", "XX"],
  ["EXISTS", "dm"],
  ["SET", "dm", "w", "XX", "GET"],
  ["SET", "dk", "x", "XX", "GET"],
  ["SET", "dk", "y", "GET"],
  ["GET", "dk"],
  ["SET", "dm", "y", "NX", "GET"],
  ["GET", "dm"],
  ["SET", "dm", "z", "NX", "GET"],
  ["GET", "dm"],
  ["SET", "dk", "v", "EX", "100"],
  ["SET", "dk", "w", "KEEPTTL"],
  ["TTL", "dk"],
  ["GET", "dk"],
  ["SET", "dk", "w2", "XX", "KEEPTTL", "GET"],
  ["TTL", "dk"],
  ["SET", "dk", "w3", "XX", "PX", "300000"],
  ["TTL", "dk"],
  ["SET", "dk", "w4", "XX"],
  ["TTL", "dk"],
  ["SET", "dk", "v", "GET", "PERSIST"],
  ["SET", "dk", "v", "NX", "GET", "EX", "0"],
  ["SET", "dk", "v", "KEEPTTL", "GET", "NX"],
  // EXPIRE's flags: a key without an expiry counts as an infinite TTL for GT and LT.
  ["EXPIRE", "dk", "100", "XX"],
  ["EXPIRE", "dk", "100", "GT"],
  ["EXPIRE", "dk", "100", "LT"],
  ["TTL", "dk"],
  ["EXPIRE", "dk", "200", "NX"],
  ["EXPIRE", "dk", "200", "LT"],
  ["EXPIRE", "dk", "50", "GT"],
  ["EXPIRE", "dk", "200", "GT"],
  ["TTL", "dk"],
  ["PEXPIRE", "dk", "150000", "XX", "LT"],
  ["TTL", "dk"],
  ["EXPIRE", "dz", "10", "NX"],
  ["EXPIRE", "dz", "10", "LT"],
  ["EXPIRE", "dm", "10", "NX"],
  ["TTL", "dm"],
  ["EXPIRE", "dm", "20", "NX"],
  ["TTL", "dm"],
  ["EXPIRE", "dk", "0", "XX"],
  ["EXISTS", "dk"],
  ["SET", "dk", "v"],
  ["EXPIRE", "dk", "-1", "GT"],
  ["EXISTS", "dk"],
  ["EXPIRE", "dk", "-1", "LT"],
  ["EXISTS", "dk"],
  // GETEX's options: the value, its expiry changed.
  ["SET", "dk", "v"],
  ["GETEX", "dk", "EX", "100"],
  ["TTL", "dk"],
  ["GETEX", "dk", "PX", "200000"],
  ["TTL", "dk"],
  ["GETEX", "dk", "EXAT", String(Math.floor(Date.now() / 1000) + 3600)],
  ["EXPIRETIME", "dk"],
  ["GETEX", "dk", "PERSIST"],
  ["TTL", "dk"],
  ["GETEX", "dk", "PERSIST"],
  ["TTL", "dk"],
  ["GETEX", "dz", "EX", "10"],
  ["EXISTS", "dz"],
  ["GETEX", "dk", "EX", "0"],
  ["GETEX", "dk", "PXAT", "abc"],
  ["GETEX", "dk", "PXAT", "1"],
  ["EXISTS", "dk"],
  // APPEND and SETRANGE keep the TTL; GETSET drops it.
  ["SET", "dk", "v", "EX", "100"],
  ["APPEND", "dk", "x"],
  ["TTL", "dk"],
  ["SETRANGE", "dk", "0", "ab"],
  ["TTL", "dk"],
  ["GETSET", "dk", "q"],
  ["TTL", "dk"],
];

clusterTest("expiry commands answer as redis-server 7.0 does, word for word", async () => {
  if (!redisAvailable) throw new Error("redis-server is required in CI: apt-get install -y redis-server");
  const redis = await startRedises(1);
  const { cluster, ports } = await startLwtRespCluster({ nodes: 3, replicationFactor: 2 });
  const ours = await RawResp.connect(ports[1]);
  const theirs = await RawResp.connect(redis.procs[0].port);
  const show = (d: Decoded) => d instanceof Error ? `-${d.message}` : JSON.stringify(d);
  try {
    for (const c of [ours, theirs]) assert.equal(await c.call("SET", "dk", "v"), "OK");
    for (const cmd of SAME_AS_REDIS) {
      const [a, b] = [await ours.call(...cmd), await theirs.call(...cmd)];
      assert.equal(show(a), show(b), `${cmd.join(" ")}: ours ${show(a)}, redis-server ${show(b)}`);
    }
  } finally {
    ours.close();
    theirs.close();
    await cluster.stop();
    await stopRedises(redis.procs, redis.dirs);
  }
}, { ignore: ignoreRedis });
