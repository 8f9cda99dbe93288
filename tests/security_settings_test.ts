/**
 * Tests of the security settings: how the cluster file names the secret and
 * the TLS files, and how they are read (or refused, naming the setting).
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseConfig } from "../lib/config.ts";
import { loadNodeSecurity, MIN_SECRET_BYTES, warnIfOpen } from "../lib/security/settings.ts";
import { Buffer } from "node:buffer";
import { Logger } from "../lib/log.ts";

const NODES = [
  { id: "node1", host: "127.0.0.1", port: 7001 },
  { id: "node2", host: "127.0.0.1", port: 7002 },
];

function withSecurity(security: unknown, nodes: unknown[] = NODES) {
  return { nodes, security };
}

Deno.test("without a security section nothing is required and nothing is loaded", () => {
  const c = parseConfig({ nodes: NODES }, "t.json");
  assert.deepEqual(c.security, { tokenWindowMs: 60_000, removedNodeDrainMs: 30_000 });
  assert.deepEqual(loadNodeSecurity(c, c.nodes[0]), {});
});

Deno.test("an inline secret is used as its UTF-8 bytes; a short one is refused", () => {
  const c = parseConfig(withSecurity({ cluster_secret: "s".repeat(MIN_SECRET_BYTES) }), "t.json");
  assert.equal(loadNodeSecurity(c, c.nodes[0]).secret?.toString(), "s".repeat(MIN_SECRET_BYTES));
  const short = parseConfig(withSecurity({ cluster_secret: "short" }), "t.json");
  assert.throws(
    () => loadNodeSecurity(short, short.nodes[0]),
    (e: unknown) =>
      e instanceof ConfigError &&
      /t.json: security.cluster_secret: the secret is 5 bytes; at least 16/.test(e.message),
  );
});

Deno.test("a secret file is read relative to the cluster file's folder, without its trailing newline", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-sec-" });
  try {
    await Deno.writeTextFile(`${dir}/secret`, "0123456789abcdef-secret\n\n");
    await Deno.writeTextFile(
      `${dir}/cluster.json`,
      JSON.stringify(withSecurity({ cluster_secret_file: "secret" })),
    );
    const c = loadConfig(`${dir}/cluster.json`);
    assert.equal(c.security.clusterSecretFile, `${dir}/secret`);
    assert.equal(loadNodeSecurity(c, c.nodes[0]).secret?.toString(), "0123456789abcdef-secret");
    await Deno.remove(`${dir}/secret`);
    assert.throws(
      () => loadNodeSecurity(c, c.nodes[0]),
      (e: unknown) =>
        e instanceof ConfigError && e.message.includes("security.cluster_secret_file: cannot read") &&
        e.message.includes(`${dir}/secret`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cluster_secret and cluster_secret_file together are refused", () => {
  assert.throws(
    () => parseConfig(withSecurity({ cluster_secret: "x".repeat(20), cluster_secret_file: "/f" }), "t.json"),
    /security.cluster_secret: set cluster_secret or cluster_secret_file, not both/,
  );
});

Deno.test("security.tls needs a CA and, for every node, a certificate and key (shared or its own)", () => {
  const c = parseConfig(
    withSecurity({ tls: { ca_file: "/ca.pem", cert_file: "/n.pem", key_file: "/n.key" } }, [
      NODES[0],
      { ...NODES[1], tls_cert_file: "/n2.pem", tls_key_file: "/n2.key" },
    ]),
    "t.json",
  );
  assert.deepEqual(c.security.tls, { caFile: "/ca.pem", requireClientCert: false });
  assert.deepEqual([c.nodes[0].tlsCertFile, c.nodes[0].tlsKeyFile], ["/n.pem", "/n.key"]);
  assert.deepEqual([c.nodes[1].tlsCertFile, c.nodes[1].tlsKeyFile], ["/n2.pem", "/n2.key"]);
  assert.throws(
    () => parseConfig(withSecurity({ tls: { ca_file: "/ca.pem", key_file: "/k" } }), "t.json"),
    /t.json: nodes\[0\].tls_cert_file: required \(or security.tls.cert_file\) with security.tls/,
  );
  assert.throws(
    () => parseConfig(withSecurity({ tls: { cert_file: "/c", key_file: "/k" } }), "t.json"),
    /security.tls.ca_file: must be a non-empty string/,
  );
  assert.throws(
    () =>
      parseConfig(
        withSecurity({ tls: { ca_file: "/ca", cert_file: "/c", key_file: "/k", require_client_cert: 1 } }),
        "t.json",
      ),
    /security.tls.require_client_cert: must be true or false/,
  );
  const missing = parseConfig(
    withSecurity({ tls: { ca_file: "/nonexistent/ca.pem", cert_file: "/c", key_file: "/k" } }),
    "t.json",
  );
  assert.throws(
    () => loadNodeSecurity(missing, missing.nodes[0]),
    /security.tls.ca_file: cannot read \/nonexistent\/ca.pem/,
  );
});

Deno.test("a node with neither a secret nor TLS warns once at startup; with a secret it does not", () => {
  const lines: string[] = [];
  const log = new Logger({ level: "info", format: "text", write: (l) => lines.push(l) });
  warnIfOpen(log, {});
  assert.equal(lines.length, 1);
  assert.match(lines[0], /WARN .*node traffic is unauthenticated.*security\.cluster_secret_file/);
  warnIfOpen(log, { secret: Buffer.from("0123456789abcdef") });
  assert.equal(lines.length, 1, "a node with a secret is not open");
});
