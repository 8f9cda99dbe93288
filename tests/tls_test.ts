/**
 * TLS with real node processes and certificates made by `main.ts certs`
 * (the openssl command-line tool): what a client trusting the cluster's CA,
 * a plaintext client and a client trusting another CA can do; NodeService
 * only for callers with a node certificate from the cluster's CA; a node
 * whose own certificate comes from another CA, or names another node,
 * refuses to start (and calls made with it are refused); replication and
 * recovery over mutual TLS with require_client_cert; a node joins an mTLS
 * cluster (`server --join` with its own certificate) and one with a
 * certificate from another CA, or naming another node, is refused. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, keysPlacedOn, kvError, ringOf, runMain, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { channelCredentials, type ClientTls, serverCredentials } from "../lib/security/tls.ts";
import { Buffer } from "node:buffer";
import { misplaced, waitSettled } from "./helpers/membership.ts";
import { attemptStart } from "./helpers/refused_start.ts";

/** Tests needing openssl are ignored without it outside CI, and run (and fail) in CI. */
const HAVE_OPENSSL =
  new Deno.Command("sh", { args: ["-c", "command -v openssl"], stdout: "null" }).outputSync()
    .success;
const ignore = !HAVE_OPENSSL && !Deno.env.get("CI");

/** Runs `main.ts certs` as a user would; resolves with its output. */
async function certs(...args: string[]): Promise<string> {
  const cwd = await Deno.makeTempDir({ prefix: "kvstore-certs-cwd-" });
  try {
    const r = await runMain(cwd, "certs", ...args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.stdout + r.stderr;
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** The cluster's certificates and a foreign CA's, in a temporary folder. */
async function makeCerts(): Promise<{ dir: string; ours: string; foreign: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-tls-" });
  const hosts = "127.0.0.1,127.0.0.1,127.0.0.1";
  await certs("--out", `${dir}/ours`, "--nodes", "node1,node2,node3", "--hosts", hosts);
  await certs("--out", `${dir}/foreign`, "--nodes", "node1,node2,node3", "--hosts", hosts);
  return { dir, ours: `${dir}/ours`, foreign: `${dir}/foreign` };
}

function tlsOf(dir: string, who?: string): ClientTls {
  return {
    ca: readFileSync(`${dir}/ca.pem`),
    ...(who ? { cert: readFileSync(`${dir}/${who}.pem`), key: readFileSync(`${dir}/${who}.key`) } : {}),
  };
}

/** Cluster options serving TLS with the certificates in `dir` (node entries name their own files). */
function tlsCluster(
  dir: string,
  requireClientCert: boolean,
  clientTls: ClientTls,
  nodes = ["node1", "node2", "node3"],
) {
  return {
    nodes: 3,
    extra: { security: { tls: { ca_file: `${dir}/ca.pem`, require_client_cert: requireClientCert } } },
    nodeExtra: Object.fromEntries(
      nodes.map((id) => [id, { tls_cert_file: `${dir}/${id}.pem`, tls_key_file: `${dir}/${id}.key` }]),
    ),
    clientTls,
  };
}

/** What an error or success of a call looks like, for assertions. */
async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (err) {
    const e = err as { code?: number; message: string };
    return `${grpc.status[e.code ?? 2]}: ${e.message}`;
  }
}

Deno.test("channels to an IP send a placeholder server name (checked by IP SAN), to a name nothing extra; no TLS is plaintext", () => {
  const byIp = channelCredentials("127.0.0.1:7000", {});
  assert.equal(byIp.credentials._isSecure(), true);
  assert.equal(byIp.options["grpc.ssl_target_name_override"], "kvstore-node.invalid");
  assert.equal(
    channelCredentials("[::1]:7000", {}).options["grpc.default_authority"],
    "kvstore-node.invalid",
  );
  assert.deepEqual(channelCredentials("db.example.com:7000", {}).options, {});
  assert.equal(channelCredentials("127.0.0.1:7000", undefined).credentials._isSecure(), false);
});

Deno.test("a TLS server always asks for a client certificate and refuses a missing one only with require_client_cert", () => {
  const pem = Buffer.from("not parsed until a connection");
  const options = (require: boolean) =>
    (serverCredentials({ ca: pem, cert: pem, key: pem, requireClientCert: require }) as unknown as {
      serverConstructorOptions: { requestCert: boolean; rejectUnauthorized?: boolean };
    }).serverConstructorOptions;
  assert.deepEqual([options(true).requestCert, options(true).rejectUnauthorized], [true, undefined]);
  assert.deepEqual([options(false).requestCert, options(false).rejectUnauthorized], [true, false]);
  assert.equal(serverCredentials(undefined)._isSecure(), false);
});

Deno.test({
  name:
    "certs writes a CA, a certificate per node naming its id and host, and a client certificate, all signed by the CA",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-certs-" });
    try {
      const out = await certs("--out", dir, "--nodes", "node1,node2", "--hosts", "10.0.0.7,db2.example.com");
      assert.match(
        out,
        /wrote ca.pem, ca.key, node1.pem, node1.key, node2.pem, node2.key, client.pem, client.key/,
      );
      const openssl = (...args: string[]) => {
        const r = new Deno.Command("openssl", { args, cwd: dir }).outputSync();
        assert.ok(r.success, new TextDecoder().decode(r.stderr));
        return new TextDecoder().decode(r.stdout);
      };
      assert.match(
        openssl("verify", "-CAfile", "ca.pem", "node1.pem", "node2.pem", "client.pem"),
        /client.pem: OK/,
      );
      const node1 = openssl(
        "x509",
        "-in",
        "node1.pem",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,extendedKeyUsage",
      );
      assert.match(node1, /CN = node1/);
      assert.match(node1, /DNS:node1, IP Address:10.0.0.7/);
      assert.match(node1, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(
        openssl("x509", "-in", "node2.pem", "-noout", "-ext", "subjectAltName"),
        /DNS:node2, DNS:db2.example.com/,
      );
      const client = openssl("x509", "-in", "client.pem", "-noout", "-subject", "-ext", "extendedKeyUsage");
      assert.match(client, /CN = kvstore-client/);
      assert.doesNotMatch(client, /Server Authentication/);
      for (const key of ["ca.key", "node1.key", "client.key"]) {
        assert.equal((await Deno.stat(`${dir}/${key}`)).mode! & 0o777, 0o600, key);
      }
      // A second run (a node added later) reuses the CA.
      const ca = await Deno.readTextFile(`${dir}/ca.pem`);
      const again = await certs("--out", dir, "--nodes", "node3", "--hosts", "10.0.0.9");
      assert.match(again, /wrote node3.pem, node3.key, client.pem, client.key/);
      assert.equal(await Deno.readTextFile(`${dir}/ca.pem`), ca);
      assert.match(openssl("verify", "-CAfile", "ca.pem", "node3.pem"), /node3.pem: OK/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

clusterTest(
  "over TLS a client trusting the CA reads and writes; a plaintext client, one trusting another CA, and node calls without a node certificate cannot",
  async () => {
    const { dir, ours, foreign } = await makeCerts();
    const cluster = await TestCluster.start(tlsCluster(ours, false, tlsOf(ours)));
    try {
      const client = await cluster.client();
      assert.equal((await client.put("tls-key", "secret value")).ok, true);
      assert.equal(text.decode((await client.get("tls-key")).value), "secret value");
      for (const id of ringOf(cluster).preferenceList("tls-key", 2)) {
        await cluster.waitFor(
          async () =>
            (await client.get("tls-key", { fromReplica: true, address: cluster.node(id).address })).found,
          5000,
          `the copy on ${id}`,
        );
      }
      const address = cluster.nodes[0].address;
      // The command-line client and the load generator over TLS.
      const ca = `${ours}/ca.pem`;
      const put = await runMain(
        dir,
        "client",
        "--addr",
        address,
        "--tls",
        "--ca",
        ca,
        "put",
        "cli-key",
        "over tls",
      );
      assert.equal(put.code, 0, put.stdout + put.stderr);
      const get = await runMain(dir, "client", "--addr", address, "--ca", ca, "get", "cli-key");
      assert.match(get.stdout, /GET cli-key: "over tls"/, get.stderr);
      const plainCli = await runMain(dir, "client", "--addr", address, "--timeout", "2000", "get", "cli-key");
      assert.equal(plainCli.code, 2);
      assert.match(plainCli.stdout + plainCli.stderr, /UNAVAILABLE/, JSON.stringify(plainCli));
      const bench = await runMain(
        dir,
        "bench",
        "--addr",
        address,
        "--tls",
        "--ca",
        ca,
        "--ops",
        "200",
        "--json",
      );
      assert.equal(bench.code, 0, bench.stderr);
      console.log(`bench over TLS: ${bench.stdout.trim().split("\n").at(-1)!.slice(0, 240)}`);
      const plain = await KvClient.connect([address], { route: false, timeoutMs: 2000 });
      assert.match(await outcome(() => plain.get("tls-key")), /^UNAVAILABLE/);
      const stranger = await KvClient.connect([address], {
        route: false,
        timeoutMs: 2000,
        tls: tlsOf(foreign),
      });
      assert.match(await outcome(() => stranger.put("tls-key", "evil")), /^UNAVAILABLE/);

      // NodeService needs a node certificate from the cluster's CA, even with the secret.
      const soon = (Date.now() + 1000) * 1000;
      const forge = (stub: NodeStub) =>
        stub.call(
          "Replicate",
          replicateItem({ key: "tls-key", value: "evil", timestamp: soon, from: "node2" }),
        );
      const refusals: [string, ClientTls, RegExp][] = [
        ["no certificate", tlsOf(ours), /no client certificate signed by the cluster's CA/],
        [
          "the client certificate",
          tlsOf(ours, "client"),
          /certificate "kvstore-client" does not name a node/,
        ],
        [
          "node2's name from another CA",
          { ...tlsOf(foreign, "node2"), ca: tlsOf(ours).ca },
          /no client certificate/,
        ],
      ];
      for (const [what, tls, reason] of refusals) {
        const err = await kvError(() => forge(new NodeStub(cluster, "node1", { as: "node2", tls })));
        assert.equal(err.code, grpc.status.UNAUTHENTICATED, `${what}: ${err.message}`);
        assert.match(err.message, reason, what);
      }
      assert.match(
        await outcome(() => forge(new NodeStub(cluster, "node1", { as: "node2", tls: null }))),
        /^UNAVAILABLE/,
      );
      for (const n of cluster.nodes) {
        const r = await client.get("tls-key", { fromReplica: true, address: n.address });
        if (r.found) assert.equal(text.decode(r.value), "secret value", n.id);
      }
      // A peer with its node certificate is accepted.
      const peer = new NodeStub(cluster, "node1", { as: "node2", tls: tlsOf(ours, "node2") });
      assert.equal((await peer.call<{ cluster_size: number }>("GetMembership", {})).cluster_size, 3);
      assert.deepEqual(
        await peer.call("ReadRecords", { keys: ["nothing-here"], requesting_node_id: "node2" }),
        {
          records: [],
        },
      );
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore },
);

clusterTest(
  "a node whose certificate comes from another CA, or names another node, refuses to start with the reason; calls with such a certificate are refused",
  async () => {
    const { dir, ours, foreign } = await makeCerts();
    const opts = tlsCluster(ours, false, tlsOf(ours), ["node1", "node2"]);
    opts.nodeExtra.node3 = { tls_cert_file: `${foreign}/node3.pem`, tls_key_file: `${foreign}/node3.key` };
    const cluster = await TestCluster.start({ ...opts, startOnly: ["node1", "node2"], replicationFactor: 2 });
    try {
      const node3 = ["server", "--id", "node3", "--config", cluster.configPath];
      const alien = await attemptStart(cluster.dir, node3);
      console.log(`  node3 with another CA's certificate: exit ${alien.code}`);
      assert.equal(alien.code, 2, alien.output);
      assert.match(
        alien.output,
        /ERROR .*not starting: .*foreign\/node3\.pem \(security\.tls\): the certificate \(issuer .*\) is not signed by the CA/,
      );
      // node3 given a copy of node2's certificate (from the cluster's CA; another file, so the
      // loader's check of shared files does not see it): its common name is not node3.
      await Deno.copyFile(`${ours}/node2.pem`, `${ours}/copy-of-node2.pem`);
      const config = JSON.parse(await Deno.readTextFile(cluster.configPath));
      Object.assign(config.nodes[2], {
        tls_cert_file: `${ours}/copy-of-node2.pem`,
        tls_key_file: `${ours}/node2.key`,
      });
      await Deno.writeTextFile(`${cluster.dir}/borrowed.json`, JSON.stringify(config));
      const borrowed = await attemptStart(cluster.dir, [
        "server",
        "--id",
        "node3",
        "--config",
        "borrowed.json",
      ]);
      assert.equal(borrowed.code, 2, borrowed.output);
      assert.match(
        borrowed.output,
        /not starting: .*ours\/copy-of-node2\.pem \(security\.tls\): the certificate's common name is "node2", not this node's id "node3"/,
      );
      assert.doesNotMatch(alien.output + borrowed.output, /listening on/);
      const client = await cluster.client({ via: "node1", route: false });
      // Each call node3 would make, with node3's own (foreign) credentials and the secret, is refused.
      const owned = keysPlacedOn(
        ringOf(cluster),
        Array.from({ length: 60 }, (_, i) => `fwd-${i}`),
        "node1",
        1,
      )[0];
      const asNode3 = new NodeStub(cluster, "node1", {
        as: "node3",
        tls: { ...tlsOf(foreign, "node3"), ca: tlsOf(ours).ca },
      });
      const calls: Record<string, unknown> = {
        Heartbeat: {
          node_id: "node3",
          host: "127.0.0.1",
          port: cluster.node("node3").port,
          timestamp: Date.now(),
        },
        ForwardPut: { key: owned, value: text.encode("via node3"), timestamp: 0, origin_node_id: "node3" },
        ReplicateBatch: {
          items: [replicateItem({ key: owned, value: "x", timestamp: Date.now() * 1000, from: "node3" })],
        },
        JoinCluster: { node_id: "node3", host: "127.0.0.1", port: cluster.node("node3").port },
      };
      for (const [method, req] of Object.entries(calls)) {
        const err = await kvError(() => asNode3.call(method, req));
        assert.equal(err.code, grpc.status.UNAUTHENTICATED, `${method}: ${err.message}`);
      }
      assert.match(
        cluster.logs("node1"),
        /refused an unauthenticated NodeService call .*reason="no client certificate signed by the cluster's CA"/,
      );
      // Writes go on without node3; none reached it, and node1 and node2 hold nothing from it.
      const keys = keysPlacedOn(
        ringOf(cluster),
        Array.from({ length: 60 }, (_, i) => `out-${i}`),
        "node3",
        2,
      );
      for (const key of keys) assert.equal((await client.put(key, "v")).ok, true, key);
      for (const id of ["node1", "node2"]) {
        const r = await client.get(owned, { fromReplica: true, address: cluster.node(id).address });
        assert.equal(r.found, false, `${owned} on ${id}`);
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore },
);

clusterTest(
  "with require_client_cert, replication and recovery after kill -9 work over mutual TLS, and a client without a certificate is refused",
  async () => {
    const { dir, ours } = await makeCerts();
    const cluster = await TestCluster.start(tlsCluster(ours, true, tlsOf(ours, "client")));
    try {
      const client = await cluster.client();
      const keys = Array.from({ length: 300 }, (_, i) => `mtls-${i}`);
      const results = await client.multiPut(keys.map((key) => ({ key, value: `v-${key}` })));
      assert.ok(results.every((r) => r.ok));
      const onNode2 = keysPlacedOn(ringOf(cluster), keys, "node2", 2);
      const node2Client = await cluster.client({ via: "node2", route: false });
      const held = async () =>
        (await node2Client.multiGet(onNode2, { fromReplica: true })).filter((r) => r.found).length;
      await cluster.waitFor(async () => await held() === onNode2.length, 10_000, "node2's copies");

      const noCert = await KvClient.connect([cluster.nodes[0].address], {
        route: false,
        timeoutMs: 2000,
        tls: tlsOf(ours),
      });
      assert.match(await outcome(() => noCert.get("mtls-1")), /^UNAVAILABLE/);

      await cluster.kill("node2");
      await cluster.startNode("node2");
      await cluster.waitActive();
      assert.equal(await held(), onNode2.length, "node2 recovered every key it holds, over TLS");
      assert.match(cluster.logs("node2"), /recovery finished records=\d+/);
      for (const key of onNode2.slice(0, 20)) {
        assert.equal(text.decode((await client.get(key)).value), `v-${key}`);
      }
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore },
);

clusterTest(
  "node4 joins a 3-node mutual-TLS cluster with its own certificate and takes its share; a joiner whose certificate comes from another CA, or names another node, is refused",
  async () => {
    const { dir, ours, foreign } = await makeCerts();
    await certs("--out", ours, "--nodes", "node4", "--hosts", "127.0.0.1");
    await certs("--out", foreign, "--nodes", "node5", "--hosts", "127.0.0.1");
    const opts = tlsCluster(ours, true, tlsOf(ours, "client"));
    const cluster = await TestCluster.start({
      ...opts,
      replicationFactor: 2,
      extra: { ...opts.extra, membership: { cleanup_grace_ms: 1000 } },
    });
    const tlsArgs = (d: string, id: string) => [
      "--tls-ca",
      `${d}/ca.pem`,
      "--tls-cert",
      `${d}/${id}.pem`,
      "--tls-key",
      `${d}/${id}.key`,
    ];
    try {
      const client = await cluster.client();
      const keys = Array.from({ length: 600 }, (_, i) => `join-${i}`);
      assert.ok((await client.multiPut(keys.map((key) => ({ key, value: `v-${key}` })))).every((r) => r.ok));

      cluster.addNode("node4");
      await cluster.startJoiner("node4", ["node2"], tlsArgs(ours, "node4"));
      await waitSettled(cluster, client, "node1", (ids) => ids.includes("node4"), 60_000);
      const ids = ["node1", "node2", "node3", "node4"];
      let wrong: string[] = [];
      await cluster.waitFor(
        async () => (wrong = await misplaced(cluster, client, ids, keys, 2)).length === 0,
        30_000,
        "every key on exactly its 2 nodes of the 4-node ring",
      ).catch((err) => {
        throw new Error(`${err.message}: ${wrong.slice(0, 5).join("\n")}`);
      });
      const onNode4 = (await client.listAllKeys(cluster.node("node4").address)).length;
      console.log(`  node4 joined over mutual TLS and holds ${onNode4} of ${keys.length} keys (x2 copies)`);
      assert.ok(onNode4 > 0.3 * keys.length && onNode4 < 0.7 * keys.length, `node4 holds ${onNode4}`);
      const fresh = await cluster.client({ via: "node4", route: false });
      for (const key of keys.slice(0, 30)) {
        assert.equal(text.decode((await fresh.get(key)).value), `v-${key}`);
      }

      // Refused joiners: each exits with an error that says why, and never becomes a member.
      const join = (id: string, tls: string[]) =>
        runMain(
          cluster.dir,
          "server",
          "--id",
          id,
          "--host",
          "127.0.0.1",
          "--port",
          String(cluster.addNode(id).port),
          "--join",
          cluster.node("node1").address,
          "--cluster-secret-file",
          `${cluster.dir}/cluster.secret`,
          ...tls,
        );
      const t0 = Date.now();
      const alien = await join("node5", tlsArgs(foreign, "node5"));
      console.log(`  a joiner from another CA gave up after ${Date.now() - t0} ms: ${alien.stderr.trim()}`);
      assert.notEqual(alien.code, 0);
      assert.match(
        alien.stderr,
        /cannot join the cluster: no node of .* answered .*over TLS: is --tls-ca the cluster's CA/,
      );
      const mixed = await join("node6", [
        "--tls-ca",
        `${ours}/ca.pem`,
        ...tlsArgs(foreign, "node5").slice(2),
      ]);
      assert.notEqual(mixed.code, 0);
      assert.match(
        mixed.stderr,
        /error: --tls-cert .*node5\.pem: the certificate's common name is "node5", not this node's id "node6"/,
      );
      const unsigned = await join("node5", [
        "--tls-ca",
        `${ours}/ca.pem`,
        ...tlsArgs(foreign, "node5").slice(2),
      ]);
      assert.notEqual(unsigned.code, 0);
      assert.match(
        unsigned.stderr,
        /error: --tls-cert .*: the certificate \(issuer .*\) is not signed by the CA/,
      );
      const m = await client.membership();
      assert.deepEqual(m.members.map((x) => x.id), ids);
      assert.doesNotMatch(cluster.logs("node1"), /node5 is joining|node6 is joining/);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
  { ignore, timeoutMs: 180_000 },
);
