/**
 * Client authentication (`security.client_token_file`) with real nodes:
 * KeyValueStore calls without the token, or with a wrong one, are answered
 * UNAUTHENTICATED and change nothing; with it they are served, by our
 * client, the command-line client, the load generator and Python's grpcio
 * (a client nobody here wrote); health and GetMembership stay open. Unit
 * tests of the check itself (constant-time comparison of digests).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, kvError, runMain, TestCluster, text } from "./helpers/cluster.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { bearerToken, clientTokenCheck } from "../lib/security/client_auth.ts";
import { havePythonGrpc, pythonCalls } from "./helpers/python_grpc.ts";

const TOKEN = "client-token-0f1e2d3c4b5a6978";

Deno.test("the token check accepts only the exact token; a bearer value is parsed strictly", () => {
  const check = clientTokenCheck(text.encode(TOKEN));
  assert.equal(check(TOKEN), true);
  for (const wrong of [undefined, "", TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase(), ` ${TOKEN}`]) {
    assert.equal(check(wrong), false, JSON.stringify(wrong));
  }
  assert.equal(bearerToken(`Bearer ${TOKEN}`), TOKEN);
  assert.equal(bearerToken(TOKEN), undefined);
  assert.equal(bearerToken(`Basic ${TOKEN}`), undefined);
  assert.equal(bearerToken(undefined), undefined);
});

clusterTest(
  "with security.client_token_file every KeyValueStore call needs the token: none or a wrong one is UNAUTHENTICATED, the right one is served (our client, the CLI, bench, Python grpcio)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-token-" });
    await Deno.writeTextFile(`${dir}/token`, `${TOKEN}\n`);
    await Deno.writeTextFile(`${dir}/wrong`, "not-the-token-0123456789\n");
    const cluster = await TestCluster.start({
      nodes: 2,
      replicationFactor: 2,
      extra: { security: { client_token_file: `${dir}/token` } },
    });
    try {
      const address = cluster.nodes[0].address;
      const connect = (clientToken?: string) => KvClient.connect([address], { timeoutMs: 3000, clientToken });
      const none = await connect();
      const wrong = await connect("not-the-token-0123456789");
      const right = await connect(TOKEN);
      for (const [who, client] of [["no token", none], ["a wrong token", wrong]] as const) {
        const err = await kvError(() => client.put("guarded", "evil"));
        assert.equal(err.code, grpc.status.UNAUTHENTICATED, `${who}: ${err.message}`);
        assert.match(err.message, /Put refused: (no|wrong) client token; .*authorization: Bearer <token>/);
        assert.equal((await kvError(() => client.get("guarded"))).code, grpc.status.UNAUTHENTICATED);
        // Routing still works: GetMembership is open.
        assert.equal((await client.membership()).members.length, 2);
      }
      assert.equal((await right.put("guarded", "good")).ok, true);
      assert.equal(text.decode((await right.get("guarded")).value), "good");
      assert.deepEqual((await right.multiGet(["guarded"])).map((r) => r.found), [true]);
      const logged = cluster.logs("node1").split("\n").filter((l) =>
        l.includes("refused a KeyValueStore call")
      );
      assert.equal(logged.length, 1, `one line per source per minute: ${logged.join("\n")}`);
      assert.match(logged[0], /source=127\.0\.0\.1 method=Put reason="no client token"/);

      // The command-line client and the load generator.
      const cli = (...args: string[]) => runMain(dir, "client", "--addr", address, ...args);
      const denied = await cli("get", "guarded");
      assert.equal(denied.code, 2);
      assert.match(denied.stdout + denied.stderr, /UNAUTHENTICATED/);
      assert.equal((await cli("--token-file", `${dir}/wrong`, "get", "guarded")).code, 2);
      const got = await cli("--token-file", `${dir}/token`, "get", "guarded");
      assert.match(got.stdout, /GET guarded: "good"/, got.stderr);
      const status = await cli("--token-file", `${dir}/token`, "status");
      assert.equal(status.code, 0, status.stderr);
      const bench = await runMain(
        dir,
        "bench",
        "--addr",
        address,
        "--token-file",
        `${dir}/token`,
        "--ops",
        "100",
        "--json",
      );
      assert.equal(bench.code, 0, bench.stderr);
      const report = JSON.parse(bench.stdout.trim().split("\n").at(-1)!);
      console.log(`  bench with the token: ${report.ops} calls, errors ${JSON.stringify(report.errors)}`);
      assert.equal(report.error_count, 0);
      const benchDenied = await runMain(dir, "bench", "--addr", address, "--ops", "20", "--json");
      const deniedReport = JSON.parse(benchDenied.stdout.trim().split("\n").at(-1)!);
      assert.ok(deniedReport.errors.UNAUTHENTICATED > 0, benchDenied.stdout);

      // Python's grpcio: raw calls, with and without the header. GetRequest { key: "guarded" }.
      if (havePythonGrpc()) {
        const get = { method: "/kvstore.KeyValueStore/Get", body: "0a0767756172646564" };
        const results = await pythonCalls(address, [
          get,
          { ...get, metadata: [["authorization", "Bearer not-the-token-0123456789"]] },
          { ...get, metadata: [["authorization", `Bearer ${TOKEN}`]] },
          { method: "/kvstore.NodeService/GetMembership" },
          { method: "/grpc.health.v1.Health/Check" },
        ]);
        console.log(`  python grpcio: ${results.map((r) => r.code).join(", ")}`);
        assert.deepEqual(results.map((r) => r.code), [
          "UNAUTHENTICATED",
          "UNAUTHENTICATED",
          "OK",
          "OK",
          "OK",
        ]);
        assert.ok(text.decode(hex(results[2].body!)).includes("good"), "the answer carries the value");
        assert.equal(results[4].body, "0801", "health: SERVING");
      } else if (Deno.env.get("CI")) {
        throw new Error("python3-grpcio is not installed");
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
}
