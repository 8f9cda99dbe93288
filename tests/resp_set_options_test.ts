/**
 * SET's NX/XX/GET/KEEPTTL, GETEX's options, EXPIRE's NX/XX/GT/LT and the
 * TTL kept by APPEND/SETRANGE, on a real 3-node cluster through redis-cli,
 * ioredis and redis-py, each written through one node and read through
 * another: SET NX racing through every node has exactly one winner, and
 * the expiries written by conditional writes are the ones read back.
 * Word-for-word replies against redis-server are in resp_expiry_test.ts.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { clusterTest } from "./helpers/cluster.ts";
import { redisCli, runRedisPy, startLwtRespCluster } from "./helpers/resp.ts";

const cli = async (port: number, ...args: string[]) => (await redisCli(port, args)).out.trimEnd();

clusterTest("SET NX/XX/GET/KEEPTTL, GETEX, EXPIRE NX/XX/GT/LT, APPEND's TTL through redis-cli", async () => {
  const { cluster, ports } = await startLwtRespCluster({ nodes: 3, replicationFactor: 2 });
  const [a, b, c] = ports;
  try {
    // SET NX PX through one node: PTTL through another.
    assert.equal(await cli(a, "SET", "o:nx", "v", "NX", "PX", "60000"), "OK");
    const pttl = Number(await cli(b, "PTTL", "o:nx"));
    assert.ok(pttl > 50000 && pttl <= 60000, `PTTL ${pttl}`);
    assert.equal(await cli(c, "SET", "o:nx", "w", "NX"), "", "SET NX on an existing key: nil");
    assert.equal(await cli(b, "GET", "o:nx"), "v");

    // XX on an absent key: nil, nothing written; on an existing one: set, TTL dropped.
    assert.equal(await cli(a, "SET", "o:absent", "v", "XX"), "");
    assert.equal(await cli(b, "EXISTS", "o:absent"), "0");
    assert.equal(await cli(c, "SET", "o:nx", "x", "XX"), "OK");
    assert.equal(await cli(a, "TTL", "o:nx"), "-1");

    // GET: the old value, then the new one is there.
    assert.equal(await cli(b, "SET", "o:nx", "y", "GET"), "x");
    assert.equal(await cli(c, "SET", "o:new", "n", "GET"), "");
    assert.equal(await cli(a, "GET", "o:new"), "n");

    // KEEPTTL keeps the expiry (to the millisecond), a plain SET drops it.
    assert.equal(await cli(a, "SET", "o:keep", "v", "EX", "100"), "OK");
    const before = await cli(b, "PEXPIRETIME", "o:keep");
    assert.equal(await cli(c, "SET", "o:keep", "w", "KEEPTTL"), "OK");
    assert.equal(await cli(a, "PEXPIRETIME", "o:keep"), before);
    assert.equal(await cli(b, "GET", "o:keep"), "w");

    // GETEX EX then PERSIST.
    assert.equal(await cli(b, "GETEX", "o:keep", "EX", "300"), "w");
    assert.equal(await cli(c, "TTL", "o:keep"), "300");
    assert.equal(await cli(a, "GETEX", "o:keep", "PERSIST"), "w");
    assert.equal(await cli(b, "TTL", "o:keep"), "-1");
    assert.equal(await cli(c, "GETEX", "o:missing", "EX", "5"), "");

    // EXPIRE's flags, each reply and its effect.
    const steps: [string[], string, string][] = [
      [["EXPIRE", "o:keep", "100", "XX"], "0", "-1"],
      [["EXPIRE", "o:keep", "100", "GT"], "0", "-1"],
      [["EXPIRE", "o:keep", "100", "NX"], "1", "100"],
      [["EXPIRE", "o:keep", "200", "NX"], "0", "100"],
      [["EXPIRE", "o:keep", "50", "GT"], "0", "100"],
      [["EXPIRE", "o:keep", "200", "GT"], "1", "200"],
      [["EXPIRE", "o:keep", "300", "LT"], "0", "200"],
      [["PEXPIRE", "o:keep", "150000", "XX", "LT"], "1", "150"],
      [["EXPIRE", "o:missing", "10", "LT"], "0", "-2"],
    ];
    for (const [i, [cmd, reply, ttl]] of steps.entries()) {
      assert.equal(await cli(ports[i % 3], ...cmd), reply, cmd.join(" "));
      assert.equal(await cli(ports[(i + 1) % 3], "TTL", cmd[1]), ttl, `TTL after ${cmd.join(" ")}`);
    }
    assert.equal(await cli(a, "EXPIRE", "o:keep", "0", "XX"), "1", "a past time deletes");
    assert.equal(await cli(b, "EXISTS", "o:keep"), "0");

    // APPEND and SETRANGE keep the TTL; GETSET drops it.
    assert.equal(await cli(c, "SET", "o:app", "ab", "PX", "90000"), "OK");
    const at = await cli(a, "PEXPIRETIME", "o:app");
    assert.equal(await cli(b, "APPEND", "o:app", "cd"), "4");
    assert.equal(await cli(c, "PEXPIRETIME", "o:app"), at, "APPEND keeps the expiry");
    assert.equal(await cli(a, "SETRANGE", "o:app", "1", "XY"), "4");
    assert.equal(await cli(b, "PEXPIRETIME", "o:app"), at, "SETRANGE keeps the expiry");
    assert.equal(await cli(c, "GETSET", "o:app", "new"), "aXYd");
    assert.equal(await cli(a, "TTL", "o:app"), "-1", "GETSET drops the expiry");
  } finally {
    await cluster.stop();
  }
});

const PY = `
import sys, redis
a = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
b = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]))
assert a.set("py:k", "v", nx=True, px=40000) is True
assert 30000 < b.pttl("py:k") <= 40000
assert b.set("py:k", "w", nx=True) is None
assert a.set("py:none", "w", xx=True) is None
assert b.set("py:k", "w", get=True) == b"v"
assert b.ttl("py:k") == -1
assert a.set("py:k", "x", ex=70) is True
assert b.set("py:k", "y", keepttl=True) is True
assert a.ttl("py:k") == 70
assert b.getex("py:k", persist=True) == b"y"
assert a.ttl("py:k") == -1
assert a.expire("py:k", 30, xx=True) is False
assert a.expire("py:k", 30, nx=True) is True
assert b.expire("py:k", 60, gt=True) is True
assert b.expire("py:k", 90, lt=True) is False
assert a.ttl("py:k") == 60
print("python ok")
`;

clusterTest("ioredis: SET NX races through three nodes have one winner; redis-py's options", async () => {
  const { cluster, ports } = await startLwtRespCluster({ nodes: 3, replicationFactor: 2 });
  const clients = ports.map((port) => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 }));
  try {
    for (let i = 0; i < 10; i++) {
      const k = `race:${i}`;
      const replies = await Promise.all(clients.map((c, j) => c.set(k, `client ${j}`, "PX", 60000, "NX")));
      const winners = replies.flatMap((r, j) => r === "OK" ? [j] : []);
      assert.equal(winners.length, 1, `${k}: replies ${JSON.stringify(replies)}`);
      assert.ok(replies.every((r) => r === "OK" || r === null), JSON.stringify(replies));
      assert.equal(await clients[(i + 1) % 3].get(k), `client ${winners[0]}`);
      const left = await clients[(i + 2) % 3].pttl(k);
      assert.ok(left > 0 && left <= 60000, `PTTL ${left}`);
    }
    // SET GET racing: each old value is handed to exactly one writer.
    await clients[0].set("race:get", "start");
    const got = (await Promise.all(clients.map(async (c, j) => {
      const rs: (string | null)[] = [];
      for (let i = 0; i < 5; i++) rs.push(await c.set("race:get", `v${j}.${i}`, "GET"));
      return rs;
    }))).flat();
    const last = await clients[1].get("race:get");
    const seen = [...got, last];
    assert.equal(new Set(seen).size, seen.length, `a value was read twice: ${JSON.stringify(seen)}`);
    assert.ok(seen.includes("start"));

    await runRedisPy(PY, [ports[2], ports[0]]);
  } finally {
    clients.forEach((c) => c.disconnect());
    await cluster.stop();
  }
});
