/**
 * The gateway's read-modify-write commands (INCR*, SETNX, MSETNX, GETSET,
 * GETDEL, APPEND, SETRANGE, RENAME*, COPY) against a real 3-node cluster:
 * replies and errors word for word over raw RESP, redis-cli and redis-py;
 * races through different nodes with ioredis and redis-benchmark, where a
 * lost race must retry, never overwrite; INCR and gRPC's Increment on one key.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { clusterTest } from "./helpers/cluster.ts";
import { RawResp, redisCli, runRedisPy, startLwtRespCluster } from "./helpers/resp.ts";

function start() {
  return startLwtRespCluster({
    nodes: 3,
    replicationFactor: 2,
    extra: { limits: { max_value_bytes: 4096 } },
  });
}

const PY = `
import sys, redis
a = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
b = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]))
assert a.incr("py:n") == 1
assert b.incrby("py:n", 41) == 42
assert a.decr("py:n") == 41
assert b.incrbyfloat("py:n", 0.5) == 41.5
def error_of(f):
    try:
        f()
    except redis.ResponseError as e:
        return str(e)
    raise SystemExit("no error")
assert error_of(lambda: a.incr("py:n")) == "value is not an integer or out of range", error_of(lambda: a.incr("py:n"))
a.set("py:max", "9223372036854775807")
assert error_of(lambda: b.incr("py:max")) == "increment or decrement would overflow"
a.set("py:text", "abc")
assert error_of(lambda: b.incrbyfloat("py:text", 1)) == "value is not a valid float"
assert a.setnx("py:once", "x") is True and b.setnx("py:once", "y") is False
assert b.getset("py:once", "z") == b"x" and a.getdel("py:once") == b"z" and b.get("py:once") is None
print("python ok")
`;

clusterTest(
  "INCR*, SETNX, GETSET, GETDEL, APPEND, SETRANGE, RENAME*, COPY: Redis's replies and errors",
  async () => {
    const { cluster, ports } = await start();
    const a = await RawResp.connect(ports[0]);
    const b = await RawResp.connect(ports[1]);
    try {
      // Counters, through one node and then another.
      assert.equal(await a.call("INCR", "n"), 1);
      assert.equal(await b.call("INCRBY", "n", "9"), 10);
      assert.equal(await a.call("DECR", "n"), 9);
      assert.equal(await b.call("DECRBY", "n", "-11"), 20);
      assert.equal(await a.call("INCRBYFLOAT", "n", "0.5"), "20.5");
      // Seeded by a conditional write, not a plain SET: a plain write's late replica copy can still be
      // re-stamped above a conditional write that followed it (lib/restamp.ts), which these checks would trip on.
      assert.equal(await b.call("INCRBY", "big", "9223372036854775806"), 9223372036854775806);
      // Above 2^53 without losing a digit: the reply is the exact integer.
      assert.equal((await redisCli(ports[2], ["INCR", "big"])).out, "9223372036854775807");

      // The same key over gRPC's Increment, and back.
      const grpc = await cluster.client({ timeoutMs: 4000 });
      assert.equal(await a.call("INCR", "shared"), 1);
      assert.equal((await grpc.increment("shared", 5)).value, "6");
      assert.equal(await b.call("INCR", "shared"), 7);

      // SETNX, GETSET, GETDEL, APPEND, SETRANGE.
      assert.equal(await a.call("SETNX", "s", "first"), 1);
      assert.equal(await b.call("SETNX", "s", "second"), 0);
      assert.equal(await b.call("GETSET", "s", "third"), "first");
      assert.equal(await a.call("GETSET", "fresh", "v"), null);
      assert.equal(await b.call("APPEND", "s", "-more"), 10);
      assert.equal(await a.call("APPEND", "new", "abc"), 3);
      assert.equal(await b.call("SETRANGE", "s", "1", "HI"), 10);
      assert.equal(await a.call("GET", "s"), "tHIrd-more");
      assert.equal(await a.call("SETRANGE", "pad", "3", "x"), 4);
      assert.equal(await b.call("GET", "pad"), "\0\0\0x");
      assert.equal(await b.call("SETRANGE", "none", "5", ""), 0);
      assert.equal(await a.call("SETRANGE", "s", "0", ""), 10);
      assert.equal(await a.call("GETDEL", "s"), "tHIrd-more");
      assert.equal(await b.call("GETDEL", "s"), null);
      assert.equal(await b.call("EXISTS", "s", "none"), 0);
      assert.equal(await a.call("MSETNX", "m", "1", "m", "2"), 1);
      assert.equal(await a.call("MSETNX", "m", "3"), 0);
      assert.equal(await b.call("GET", "m"), "2");

      // RENAME, RENAMENX, COPY: what the source decides, and two keys refused.
      assert.equal(await a.call("RENAME", "m", "m"), "OK");
      assert.equal(await a.call("RENAMENX", "m", "m"), 0);
      assert.equal(await a.call("COPY", "missing", "x"), 0);

      const cross = (what: string) =>
        `CROSSSLOT Keys in request don't hash to the same slot (${what} over several keys cannot be atomic here: each key is its own consensus group)`;
      const errors: [string[], string][] = [
        [["INCR", "pad"], "ERR value is not an integer or out of range"],
        [["INCRBY", "n", "1.5"], "ERR value is not an integer or out of range"],
        [["INCRBY", "big", "1"], "ERR increment or decrement would overflow"],
        [["DECRBY", "n", "-9223372036854775808"], "ERR decrement would overflow"],
        [["INCRBYFLOAT", "n", "abc"], "ERR value is not a valid float"],
        [["INCRBYFLOAT", "pad", "1"], "ERR value is not a valid float"],
        [["INCRBYFLOAT", "n", "inf"], "ERR increment would produce NaN or Infinity"],
        [["INCRBYFLOAT", "pad", "-inf"], "ERR value is not a valid float"],
        [["SETRANGE", "pad", "-1", "x"], "ERR offset is out of range"],
        [["SETRANGE", "pad", "4096", "x"], "ERR string exceeds maximum allowed size (proto-max-bulk-len)"],
        [["APPEND", "pad", "y".repeat(4093)], "ERR string exceeds maximum allowed size (proto-max-bulk-len)"],
        [["RENAME", "missing", "x"], "ERR no such key"],
        [["RENAMENX", "missing", "x"], "ERR no such key"],
        [["RENAME", "m", "other"], cross("RENAME")],
        [["RENAMENX", "m", "other"], cross("RENAMENX")],
        [["COPY", "m", "other"], cross("COPY")],
        [["COPY", "m", "m"], "ERR source and destination objects are the same"],
        [["COPY", "m", "o", "DB", "1"], "ERR Copying to another database is not allowed in cluster mode"],
        [["COPY", "m", "o", "BOGUS"], "ERR syntax error"],
        [["MSETNX", "x", "1", "y", "2"], cross("MSETNX")],
        [["MSETNX", "x", "1", "y"], "ERR wrong number of arguments for 'msetnx' command"],
        [["INCR"], "ERR wrong number of arguments for 'incr' command"],
      ];
      for (const [cmd, want] of errors) {
        const got = await a.call(...cmd);
        assert.ok(got instanceof Error, `${cmd.join(" ")} answered ${got}`);
        assert.equal(got.message, want, cmd.join(" "));
      }
      // The refused commands changed nothing.
      assert.equal(await b.call("EXISTS", "other", "x", "y", "o"), 0);
      assert.equal(await b.call("GET", "pad"), "\0\0\0x");
      assert.equal(await b.call("GET", "big"), "9223372036854775807");
      // redis-cli prints the error as clients see it.
      assert.equal(
        (await redisCli(ports[2], ["INCR", "pad"])).out.trim(),
        "ERR value is not an integer or out of range",
      );

      // redis-py through node 3 and node 1.
      await runRedisPy(PY, [ports[2], ports[0]]);

      // A replica down: at replication factor 2 conditional writes on its keys need it, so they answer
      // -TRYAGAIN and change nothing; keys whose replicas are both up still count.
      await cluster.kill("node3");
      const answers = [];
      for (let i = 0; i < 12; i++) answers.push(await a.call("INCR", `down:${i}`));
      const refused = answers.filter((r) => r instanceof Error) as Error[];
      console.log(`node3 down: ${refused.length} of 12 INCRs refused: ${refused[0]?.message}`);
      assert.ok(refused.length > 0 && refused.length < 12, String(answers));
      for (const e of refused) assert.match(e.message, /^TRYAGAIN /);
      assert.deepEqual(answers.filter((r) => !(r instanceof Error)), Array(12 - refused.length).fill(1));
      for (let i = 0; i < 12; i++) {
        if (!(answers[i] instanceof Error)) assert.equal(await b.call("GET", `down:${i}`), "1");
      }
    } finally {
      a.close();
      b.close();
      await cluster.stop();
    }
  },
);

clusterTest(
  "races through three nodes: INCR loses nothing, SETNX has one winner, APPEND and GETSET lose no write",
  async () => {
    const { cluster, ports } = await start();
    const clients = ports.map((port) => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 }));
    try {
      // Three ioredis clients, one per node, 100 INCRs each, 10 in flight per client.
      const values: bigint[] = [];
      let failed = 0;
      const t0 = performance.now();
      await Promise.all(clients.map(async (c) => {
        for (let round = 0; round < 10; round++) {
          const rs = await Promise.allSettled(Array.from({ length: 10 }, () => c.incr("race:n")));
          for (const r of rs) r.status === "fulfilled" ? values.push(BigInt(r.value)) : failed++;
        }
      }));
      const final = BigInt((await clients[1].get("race:n"))!);
      console.log(
        `INCR race: ${values.length} acknowledged, ${failed} failed, final ${final}, ${
          Math.round(values.length / ((performance.now() - t0) / 1000))
        } INCR/s`,
      );
      assert.equal(new Set(values).size, values.length, "two INCRs returned the same value");
      assert.equal(final, BigInt(values.length), "the final value is not the number of acknowledged INCRs");
      assert.ok(values.length >= 250, `only ${values.length} of 300 INCRs were acknowledged`);

      // SETNX: three clients race on 30 fresh keys; exactly one wins each, and every node reads its value.
      for (let i = 0; i < 30; i++) {
        const won = await Promise.all(clients.map((c, j) => c.setnx(`race:nx:${i}`, `client ${j}`)));
        assert.equal(won.filter((w) => w === 1).length, 1, `key ${i}: ${won}`);
        const winner = `client ${won.indexOf(1)}`;
        for (const c of clients) assert.equal(await c.get(`race:nx:${i}`), winner);
      }

      // APPEND: 3 clients × 20 appends of distinct parts to one key; every part lands once.
      const lengths: number[] = [];
      await Promise.all(clients.map(async (c, j) => {
        const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => c.append("race:s", `<${j}.${i}>`)));
        lengths.push(...rs);
      }));
      const s = (await clients[2].get("race:s"))!;
      const parts = s.match(/<\d+\.\d+>/g) ?? [];
      assert.equal(parts.length, 60, s);
      assert.equal(new Set(parts).size, 60);
      assert.equal(new Set(lengths).size, 60, "two APPENDs returned the same length");
      assert.equal(Math.max(...lengths), s.length);

      // GETSET: 3 clients × 10 swaps of distinct values; each value written is handed back exactly once
      // (by a later GETSET or as the final value), so none was overwritten unseen.
      await clients[0].setnx("race:gs", "start"); // conditional, as "big" above
      const olds: (string | null)[] = [];
      await Promise.all(clients.map(async (c, j) => {
        olds.push(
          ...await Promise.all(Array.from({ length: 10 }, (_, i) => c.getset("race:gs", `v${j}.${i}`))),
        );
      }));
      const seen = [...olds, await clients[1].get("race:gs")].sort();
      const written = [
        "start",
        ...clients.flatMap((_, j) => Array.from({ length: 10 }, (_, i) => `v${j}.${i}`)),
      ].sort();
      assert.deepEqual(seen, written);

      // redis-benchmark's INCR through two nodes at once, on its one key.
      await Promise.all([0, 1].map((i) =>
        new Deno.Command("redis-benchmark", {
          args: ["-p", String(ports[i]), "-t", "incr", "-n", "500", "-c", "10", "-q"],
          stdout: "piped",
          stderr: "piped",
        }).output().then((o) => console.log(new TextDecoder().decode(o.stdout).trim()))
      ));
      assert.equal(await clients[2].get("counter:__rand_int__"), "1000");
    } finally {
      for (const c of clients) c.disconnect();
      await cluster.stop();
    }
  },
);
