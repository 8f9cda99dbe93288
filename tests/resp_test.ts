/**
 * The Redis protocol gateway against a real 3-node cluster: redis-cli and
 * exact bytes over a raw socket, through every node, reading through
 * another node and over gRPC; pipelining, binary values, inline commands,
 * Redis's error replies word for word, and SCAN/KEYS/DBSIZE/FLUSHALL over
 * the whole cluster with each key once.
 */
import assert from "node:assert/strict";
import { clusterTest, text, waitForStatus } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";
import { RawResp, redisCli, startRespCluster } from "./helpers/resp.ts";

/** Drives redis-cli interactively under a pseudo-terminal (util-linux `script`); its screen output. */
async function redisCliInteractive(port: number, input: string): Promise<string> {
  const child = new Deno.Command("script", {
    args: ["-q", "-c", `redis-cli -p ${port}`, "/dev/null"],
    env: { TERM: "dumb" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const out = await child.output();
  clearTimeout(timer);
  // redis-cli colours some replies: the escape character is what is matched.
  // deno-lint-ignore no-control-regex
  return new TextDecoder().decode(out.stdout).replace(/\x1b\[[0-9;]*m/g, "");
}

clusterTest("redis-cli and raw RESP through each node share one keyspace with gRPC", async () => {
  const { cluster, ports } = await startRespCluster({ nodes: 3, replicationFactor: 2 });
  const raws: RawResp[] = [];
  try {
    // Set through each node, read through the next one and over gRPC.
    const grpc = await cluster.client();
    for (let i = 0; i < 3; i++) {
      assert.equal((await redisCli(ports[i], ["SET", `cli:${i}`, `value ${i}`])).out, "OK");
      assert.equal((await redisCli(ports[(i + 1) % 3], ["GET", `cli:${i}`])).out, `value ${i}`);
      assert.equal(text.decode((await grpc.get(`cli:${i}`)).value), `value ${i}`);
    }
    // redis-cli's interactive mode builds its help from COMMAND DOCS (run under a terminal, `script`).
    const tty = await redisCliInteractive(ports[0], "help mset\nget cli:0\nquit\n");
    assert.match(tty, /summary:.*not atomically here/, "the help is ours, not redis-cli's built-in one");
    assert.match(tty, /"value 0"/);
    await grpc.put("from-grpc", "over gRPC");
    assert.equal((await redisCli(ports[2], ["GET", "from-grpc"])).out, "over gRPC");
    assert.equal((await redisCli(ports[0], ["EXISTS", "from-grpc", "cli:0", "nope", "cli:0"])).out, "3");
    assert.equal((await redisCli(ports[0], ["TYPE", "from-grpc"])).out, "string");
    assert.equal((await redisCli(ports[0], ["TTL", "from-grpc"])).out, "-1");
    assert.equal((await redisCli(ports[0], ["PTTL", "nope"])).out, "-2");
    assert.equal((await redisCli(ports[1], ["STRLEN", "from-grpc"])).out, "9");
    assert.equal((await redisCli(ports[1], ["GETRANGE", "from-grpc", "-4", "-1"])).out, "gRPC");
    assert.equal((await redisCli(ports[1], ["DEL", "from-grpc", "nope"])).out, "1");
    assert.equal((await grpc.get("from-grpc").catch((e) => e)).found ?? false, false);

    // Binary values (every byte, CR LF included) round-trip, across nodes and over gRPC.
    const a = await RawResp.connect(ports[0]);
    const b = await RawResp.connect(ports[1]);
    raws.push(a, b);
    const binary = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    assert.equal(await a.call("SET", "bin", binary), "OK");
    await b.command("GET", "bin");
    assert.deepEqual(await b.reply(true), binary);
    assert.deepEqual(new Uint8Array((await grpc.get("bin")).value), binary);

    // A key that is not UTF-8 is refused, not altered.
    const refused = await a.call("SET", Uint8Array.of(0x6b, 0xff), "v");
    assert.ok(refused instanceof Error);
    assert.match(refused.message, /^ERR key is not valid UTF-8/);

    // Inline commands, as typed into telnet (and redis-benchmark's PING).
    await a.send("PING\r\n");
    assert.equal(await a.reply(), "PONG");
    await a.send('ECHO "two words"\r\n');
    assert.equal(await a.reply(), "two words");

    // Redis's error replies, word for word.
    const errors: [string[], string][] = [
      [["GET"], "ERR wrong number of arguments for 'get' command"],
      [["foo", "a", "b"], "ERR unknown command 'foo', with args beginning with: 'a' 'b' "],
      [["SELECT", "1"], "ERR SELECT is not allowed in cluster mode"],
      [["SELECT", "x"], "ERR value is not an integer or out of range"],
      [["SET", "k", "v", "BOGUS"], "ERR syntax error"],
      [["CLIENT", "NOPE"], "ERR unknown subcommand 'NOPE'. Try CLIENT HELP."],
      [["CLIENT", "SETNAME"], "ERR wrong number of arguments for 'client|setname' command"],
      [["GETRANGE", "k", "a", "1"], "ERR value is not an integer or out of range"],
      [["INCRBY", "n", "x"], "ERR value is not an integer or out of range"],
      [["SET", "k", "v", "NX", "XX"], "ERR syntax error"],
      [
        ["EXPIRE", "k", "10", "NX", "GT"],
        "ERR NX and XX, GT or LT options at the same time are not compatible",
      ],
    ];
    for (const [cmd, want] of errors) {
      const got = await a.call(...cmd);
      assert.ok(got instanceof Error, `${cmd.join(" ")} answered ${got}`);
      assert.equal(got.message, want);
    }
    assert.equal(await a.call("SELECT", "0"), "OK");
    // Nothing was stored by the refused commands.
    assert.equal(await a.call("EXISTS", "n", "k"), 0);

    // Pipelining: 200 commands in one write, answered in order.
    let pipe = "";
    for (let i = 0; i < 100; i++) {
      pipe += `*3\r\n$3\r\nSET\r\n$${`p:${i}`.length}\r\np:${i}\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
    }
    for (let i = 0; i < 100; i++) pipe += `*2\r\n$3\r\nGET\r\n$${`p:${i}`.length}\r\np:${i}\r\n`;
    await a.send(pipe);
    for (let i = 0; i < 100; i++) assert.equal(await a.reply(), "OK");
    for (let i = 0; i < 100; i++) assert.equal(await a.reply(), `v${i}`);
    assert.deepEqual(await b.call("MGET", "p:1", "nope", "p:99", "p:1"), ["v1", null, "v99", "v1"]);
    // A key repeated in a pipeline: each command sees the ones before it.
    await a.send(
      ["SET", "GET", "SET", "GET"].map((c, i) => c === "SET" ? `SET again ${i}\r\n` : "GET again\r\n").join(
        "",
      ),
    );
    assert.deepEqual([await a.reply(), await a.reply(), await a.reply(), await a.reply()], [
      "OK",
      "0",
      "OK",
      "2",
    ]);

    // RESP3 after HELLO 3: a map, and nulls as `_`.
    const hello = await b.call("HELLO", "3");
    assert.ok(hello instanceof Map && hello.get("proto") === 3);
    await b.send("*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n");
    assert.equal(await b.reply(), null);
  } finally {
    for (const r of raws) r.close();
    await cluster.stop();
  }
});

clusterTest(
  "SCAN, KEYS, DBSIZE and FLUSHALL cover the whole cluster through any node, each key once",
  async () => {
    const { cluster, ports } = await startRespCluster({ nodes: 3, replicationFactor: 2, writeQuorum: 2 });
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `scan:${i}`);
      const mset = keys.flatMap((k) => [k, "x"]);
      assert.equal((await redisCli(ports[0], ["MSET", ...mset])).out, "OK");
      for (const port of ports) {
        const scanned = (await redisCli(port, ["--scan", "--pattern", "scan:*"])).out.split("\n");
        assert.equal(scanned.length, keys.length, `SCAN through ${port} returned ${scanned.length} keys`);
        assert.deepEqual(new Set(scanned), new Set(keys));
      }
      // By hand, in pages of COUNT 7: the cursor is a decimal a double holds, 0 at the end.
      const raw = await RawResp.connect(ports[1]);
      try {
        const seen: string[] = [];
        let cursor = "0";
        let calls = 0;
        do {
          const [next, page] = await raw.call("SCAN", cursor, "COUNT", "7") as [string, string[]];
          assert.ok(/^[0-9]+$/.test(next) && Number.isSafeInteger(Number(next)));
          assert.ok(page.length <= 7 + 7);
          seen.push(...page);
          cursor = next;
          calls++;
        } while (cursor !== "0" && calls < 1000);
        assert.equal(seen.length, keys.length);
        assert.deepEqual(new Set(seen), new Set(keys));
        console.log(`  SCAN COUNT 7 through node2: ${seen.length} keys in ${calls} calls`);
      } finally {
        raw.close();
      }
      const listed = (await redisCli(ports[1], ["KEYS", "scan:1?"])).out.split("\n").sort();
      assert.deepEqual(listed, keys.filter((k) => /^scan:1.$/.test(k)).sort());
      assert.equal((await redisCli(ports[2], ["DBSIZE"])).out, "300");
      // A cursor is valid only on the connection that got it.
      assert.match((await redisCli(ports[2], ["SCAN", "5"])).out, /invalid cursor/);
      assert.equal((await redisCli(ports[2], ["FLUSHALL"])).out, "OK");
      assert.equal((await redisCli(ports[0], ["--scan"])).out, "");
      assert.equal((await redisCli(ports[0], ["DBSIZE"])).out, "0");
      assert.equal((await redisCli(ports[1], ["RANDOMKEY"])).out, "");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "a joiner serves RESP on its --resp-port, the member list carries it, and /metrics counts commands",
  async () => {
    const { cluster, ports } = await startRespCluster({ nodes: 2, replicationFactor: 2, heartbeatMs: 300 });
    const raw = await RawResp.connect(ports[0]);
    try {
      const node3 = cluster.addNode("node3");
      const port3 = freePort();
      await cluster.startJoiner(node3.id, ["node1"], ["--resp-port", String(port3)]);
      await cluster.waitFor(
        async () =>
          (await redisCli(ports[0], ["INFO", "cluster"])).out.includes(
            `id=node3,addr=${node3.address},resp_port=${port3}`,
          ),
        60_000,
        "node1's INFO to list node3 with its resp_port",
      );
      assert.equal((await redisCli(port3, ["SET", "via-joiner", "yes"])).out, "OK");
      assert.equal((await redisCli(ports[1], ["GET", "via-joiner"])).out, "yes");

      // Commands per name and outcome, and open connections, on node1's /metrics and status.
      assert.equal(await raw.call("GET", "via-joiner"), "yes");
      assert.ok(await raw.call("NOSUCH") instanceof Error);
      const admin = `http://127.0.0.1:${cluster.node("node1").adminPort}`;
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      assert.match(metrics, /kvstore_resp_commands_total\{method="get",code="OK"\} [1-9]/);
      assert.match(metrics, /kvstore_resp_commands_total\{method="unknown",code="ERR"\} 1\b/);
      assert.match(metrics, /kvstore_resp_connections [1-9]/);
      const self = await (await fetch(`${admin}/status/self.json`)).json();
      assert.ok(self.resp_connections >= 1, JSON.stringify(self));
    } finally {
      raw.close();
      await cluster.stop();
    }
  },
);

clusterTest(
  "with a node killed -9, RESP through the others fails over: every key reads, writes answer, SCAN lists each key once",
  async () => {
    const { cluster, ports } = await startRespCluster({
      nodes: 3,
      replicationFactor: 2,
      writeQuorum: 2,
      heartbeatMs: 200,
      suspectMs: 600,
      failureMs: 1500,
    });
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `fo:${i}`);
      assert.equal((await redisCli(ports[0], ["MSET", ...keys.flatMap((k) => [k, `v-${k}`])])).out, "OK");
      await cluster.kill("node2");
      const client = await cluster.client({ via: "node1" });
      await waitForStatus(cluster, client, ["node1", "node3"], "node2", ["SUSPECTED", "FAILED"], 20_000);
      const raw = await RawResp.connect(ports[2]);
      try {
        assert.deepEqual(await raw.call("MGET", ...keys), keys.map((k) => `v-${k}`));
        // Writes answer at once: stored, or (write_quorum 2 with one of two copies down) the coordinator's error.
        let stored = 0;
        for (const k of keys.slice(0, 20)) {
          const r = await raw.call("SET", k, `new-${k}`);
          if (r === "OK") {
            stored++;
            assert.equal(await raw.call("GET", k), `new-${k}`);
          } else assert.match(String(r), /required copies written/);
        }
        assert.ok(stored > 0, "keys whose copies are up are written");
        console.log(`  with node2 down: ${stored} of 20 SETs stored, the others refused for write_quorum 2`);
      } finally {
        raw.close();
      }
      const scanned = (await redisCli(ports[0], ["--scan", "--pattern", "fo:*"])).out.split("\n");
      assert.equal(scanned.length, keys.length, `SCAN without node2 returned ${scanned.length} keys`);
      assert.deepEqual(new Set(scanned), new Set(keys));
    } finally {
      await cluster.stop();
    }
  },
);
