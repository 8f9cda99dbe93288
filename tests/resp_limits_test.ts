/**
 * The Redis protocol gateway's protections, with real nodes: the client
 * token (AUTH / HELLO AUTH first, NOAUTH and WRONGPASS as Redis words them),
 * protected mode without a token (non-loopback clients refused), and the
 * limits: a bulk longer than the value limit is refused from its header and
 * the connection closed, a client that pipelines without reading is closed
 * at the output-buffer limit, idle connections are closed, and connections
 * past resp.max_connections are refused.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { clusterTest, sleep } from "./helpers/cluster.ts";
import { encodeCommand, RawResp, redisCli, startRespCluster } from "./helpers/resp.ts";

const TOKEN = "resp-client-token-0123456789";
const VALUE_LIMIT = 100_000;

clusterTest(
  "with a client token AUTH or HELLO AUTH comes first; limits close misbehaving connections",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-resp-" });
    await Deno.writeTextFile(`${dir}/token`, `${TOKEN}\n`);
    const { cluster, ports } = await startRespCluster({
      nodes: 3,
      replicationFactor: 2,
      extra: {
        security: { client_token_file: `${dir}/token` },
        resp: {
          output_buffer_limit_bytes: 65536,
          max_connections: 6,
          idle_timeout_ms: 4000,
          disable_flush: true,
        },
        limits: { max_value_bytes: VALUE_LIMIT, max_message_bytes: 1 << 20, max_batch_items: 1000 },
      },
    });
    const open: RawResp[] = [];
    const connect = async (port: number) => {
      const r = await RawResp.connect(port);
      open.push(r);
      return r;
    };
    const io = new Redis({ host: "127.0.0.1", port: ports[1], password: TOKEN, lazyConnect: true });
    try {
      const a = await connect(ports[0]);
      const noauth = await a.call("GET", "k");
      assert.ok(noauth instanceof Error && noauth.message === "NOAUTH Authentication required.");
      const wrong = await a.call("AUTH", "not-the-token");
      assert.ok(wrong instanceof Error);
      assert.equal(wrong.message, "WRONGPASS invalid username-password pair or user is disabled.");
      const hello = await a.call("HELLO", "3");
      assert.ok(hello instanceof Error && hello.message.startsWith("NOAUTH HELLO must be called"));
      const helloAuth = await a.call("HELLO", "3", "AUTH", "default", TOKEN);
      assert.ok(helloAuth instanceof Map && helloAuth.get("proto") === 3);
      assert.equal(await a.call("SET", "guarded", "yes"), "OK");
      // resp.disable_flush refuses FLUSHALL and FLUSHDB; nothing is deleted.
      for (const cmd of ["FLUSHALL", "FLUSHDB"]) {
        const refused = await a.call(cmd);
        assert.ok(refused instanceof Error);
        assert.equal(refused.message, `ERR ${cmd} is disabled on this cluster (resp.disable_flush)`);
      }
      assert.equal(await a.call("GET", "guarded"), "yes");
      // redis-cli -a and ioredis with a password; redis-cli without one is refused.
      assert.equal(
        (await redisCli(ports[2], ["--no-auth-warning", "-a", TOKEN, "GET", "guarded"])).out,
        "yes",
      );
      assert.match((await redisCli(ports[2], ["GET", "guarded"])).out, /NOAUTH Authentication required/);
      await io.connect();
      assert.equal(await io.get("guarded"), "yes");
      io.disconnect();

      // A bulk longer than the value limit: refused from its header, then closed.
      const big = await connect(ports[0]);
      await big.send(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${VALUE_LIMIT + 1}\r\n`);
      const refused = await big.reply();
      assert.ok(refused instanceof Error);
      assert.match(refused.message, /^ERR Protocol error: invalid bulk length/);
      assert.equal((await big.readToClose(5000)).closed, true);

      // A command naming more keys than a batch may hold, or whose answer would pass the message limit, is refused.
      const many = await a.call("MGET", ...Array.from({ length: 1001 }, (_, i) => `k${i}`));
      assert.ok(many instanceof Error);
      assert.equal(many.message, "ERR batch holds 1001 items; the limit is 1000 (limits.max_batch_items)");
      const wideValue = "w".repeat(VALUE_LIMIT);
      const wideKeys = Array.from({ length: 12 }, (_, i) => `wide:${i}`);
      // (In two commands: one would pass the query-buffer bound, limits.max_message_bytes, as a MultiPut would.)
      for (const part of [wideKeys.slice(0, 6), wideKeys.slice(6)]) {
        assert.equal(await a.call("MSET", ...part.flatMap((k) => [k, wideValue])), "OK");
      }
      const tooBig = await a.call("MGET", ...wideKeys);
      assert.ok(tooBig instanceof Error);
      assert.match(tooBig.message, /^ERR MGET answer would be at least \d+ bytes; the limit is 1048576/);

      // A client that pipelines without reading is closed at the output-buffer limit (64 KiB here).
      const value = "v".repeat(60_000);
      assert.equal(await a.call("SET", "wide", value), "OK");
      assert.equal(
        (await a.call("GET", "wide") as string).length,
        value.length,
        "one reply under the limit is sent",
      );
      const greedy = await connect(ports[1]);
      await greedy.call("AUTH", TOKEN);
      const gets = encodeCommand(["GET", "wide"]);
      const burst = new Uint8Array(gets.length * 500);
      for (let i = 0; i < 500; i++) burst.set(gets, i * gets.length);
      await greedy.send(burst);
      await sleep(500);
      const got = await greedy.readToClose(10_000);
      assert.equal(got.closed, true, "the connection was closed");
      assert.ok(got.bytes < 500 * value.length, `read ${got.bytes} bytes of ${500 * value.length}`);
      console.log(`  pipelining 500 GETs of 60 KB without reading: closed after ${got.bytes} bytes`);
      const other = await connect(ports[1]);
      assert.equal(await other.call("AUTH", TOKEN), "OK");
      assert.equal(
        (await other.call("GET", "wide") as string).length,
        value.length,
        "other connections go on",
      );

      // Idle connections are closed (resp.idle_timeout_ms 4000: long enough for the steps above and below).
      const idle = await connect(ports[2]);
      const t0 = performance.now();
      const ended = await idle.readToClose(10_000);
      assert.equal(ended.closed, true);
      console.log(`  idle connection closed after ${Math.round(performance.now() - t0)} ms`);

      // resp.max_connections 6 on node 3: the seventh is refused with Redis's words.
      const full: RawResp[] = [];
      for (let i = 0; i < 6; i++) {
        const c = await connect(ports[2]);
        assert.ok((await c.call("PING")) instanceof Error, "accepted (and asked to authenticate)");
        full.push(c);
      }
      const seventh = await connect(ports[2]);
      const over = await seventh.reply();
      assert.ok(over instanceof Error && over.message === "ERR max number of clients reached");
      assert.equal((await seventh.readToClose(5000)).closed, true);
      full[0].close();
      await sleep(200);
      const again = await connect(ports[2]);
      assert.ok((await again.call("PING")) instanceof Error, "a freed slot is taken again");
    } finally {
      io.disconnect();
      for (const r of open) r.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** A non-loopback IPv4 address of this machine, if it has one. */
function outsideAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))?.address;
}

clusterTest(
  "without a client token (protected mode) only loopback clients are served; security.insecure serves any",
  async () => {
    const address = outsideAddress()!;
    for (const insecure of [false, true]) {
      const { cluster, ports } = await startRespCluster({
        nodes: 1,
        replicationFactor: 1,
        nodeExtra: { node1: { bind_host: "0.0.0.0" } },
        ...(insecure ? { extra: { security: { insecure: true } } } : {}),
      });
      try {
        const local = await RawResp.connect(ports[0]);
        assert.equal(await local.call("PING"), "PONG");
        local.close();
        const outside = await RawResp.connect(ports[0], address);
        const reply = await outside.call("PING");
        if (insecure) assert.equal(reply, "PONG");
        else {
          assert.ok(reply instanceof Error && reply.message.startsWith("DENIED"), String(reply));
          assert.equal((await outside.readToClose(5000)).closed, true);
        }
        outside.close();
      } finally {
        await cluster.stop();
      }
    }
  },
  { ignore: outsideAddress() === undefined },
);
