/**
 * Tests of the security settings: how the cluster file names the secret and
 * the TLS files, and how they are read (or refused, naming the setting).
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseConfig, SECURITY_TIMING } from "../lib/config.ts";
import { loadNodeSecurity, MIN_SECRET_BYTES } from "../lib/security/settings.ts";
import { announceMode } from "../lib/security/protected_mode.ts";
import { Buffer } from "node:buffer";
import { Logger } from "../lib/log.ts";

const NODES = [
  { id: "node1", host: "127.0.0.1", port: 7001 },
  { id: "node2", host: "127.0.0.1", port: 7002 },
];

/** node1 takes the shared certificate (security.tls.cert_file), node2 its own. */
const ONE_SHARED = [NODES[0], { ...NODES[1], tls_cert_file: "/n2.pem", tls_key_file: "/n2.key" }];

function withSecurity(security: unknown, nodes: unknown[] = NODES) {
  return { nodes, security };
}

Deno.test("without a security section nothing is required and nothing is loaded", () => {
  const c = parseConfig({ nodes: NODES }, "t.json");
  assert.deepEqual(c.security, SECURITY_TIMING);
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
    () => parseConfig(withSecurity({ tls: { cert_file: "/c", key_file: "/k" } }, ONE_SHARED), "t.json"),
    /security.tls.ca_file: must be a non-empty string/,
  );
  assert.throws(
    () =>
      parseConfig(
        withSecurity(
          { tls: { ca_file: "/ca", cert_file: "/c", key_file: "/k", require_client_cert: 1 } },
          ONE_SHARED,
        ),
        "t.json",
      ),
    /security.tls.require_client_cert: must be true or false/,
  );
  const missing = parseConfig(
    withSecurity({ tls: { ca_file: "/nonexistent/ca.pem", cert_file: "/c", key_file: "/k" } }, ONE_SHARED),
    "t.json",
  );
  assert.throws(
    () => loadNodeSecurity(missing, missing.nodes[0]),
    /security.tls.ca_file: cannot read \/nonexistent\/ca.pem/,
  );
});

Deno.test("a node with neither a secret nor TLS says at startup it runs in protected mode; insecure warns what anyone may do; a secret says nothing", () => {
  const lines: string[] = [];
  const log = new Logger({ level: "info", format: "text", write: (l) => lines.push(l) });
  announceMode(log, {});
  assert.equal(lines.length, 1);
  assert.match(lines[0], /INFO +protected mode: .*accepted only from loopback addresses/);
  assert.match(lines[0], /security\.cluster_secret_file .*security\.tls.*security\.insecure: true/);
  announceMode(log, { insecure: true });
  assert.equal(lines.length, 2);
  assert.match(
    lines[1],
    /WARN +security\.insecure: .*anyone who reaches this port can replicate, forward, overwrite and delete/,
  );
  announceMode(log, { secret: Buffer.from("0123456789abcdef") });
  announceMode(log, { secret: Buffer.from("0123456789abcdef"), insecure: true });
  assert.equal(lines.length, 2, "a node with a secret is not open");
});

Deno.test("security.insecure and security.client_token_file are read; the token file loses its trailing newline and a short one is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-sec-" });
  try {
    await Deno.writeTextFile(`${dir}/token`, "client-token-0123456789\n");
    await Deno.writeTextFile(`${dir}/short`, "abc\n");
    const c = loadConfig(await write(dir, { insecure: true, client_token_file: "token" }));
    assert.deepEqual(c.security, { ...SECURITY_TIMING, insecure: true, clientTokenFile: `${dir}/token` });
    const loaded = loadNodeSecurity(c, c.nodes[0]);
    assert.equal(loaded.insecure, true);
    assert.equal(loaded.clientToken?.toString(), "client-token-0123456789");
    const short = loadConfig(await write(dir, { client_token_file: "short" }));
    assert.throws(
      () => loadNodeSecurity(short, short.nodes[0]),
      /security.client_token_file: the secret is 3 bytes; at least 16/,
    );
    assert.deepEqual(parseConfig(withSecurity({ insecure: false }), "t.json").security, SECURITY_TIMING);
    assert.throws(
      () => parseConfig(withSecurity({ insecure: "yes" }), "t.json"),
      /t.json: security.insecure: must be true or false/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function write(dir: string, security: unknown): Promise<string> {
  await Deno.writeTextFile(`${dir}/cluster.json`, JSON.stringify(withSecurity(security)));
  return `${dir}/cluster.json`;
}

Deno.test("one certificate file for two nodes is refused by the loader, naming the setting and the nodes", () => {
  assert.throws(
    () => parseConfig(withSecurity({ tls: { ca_file: "/ca", cert_file: "/c", key_file: "/k" } }), "t.json"),
    /t.json: security.tls.cert_file: \/c would serve both node1 and node2; each node needs its own certificate whose common name is its id/,
  );
  assert.throws(
    () =>
      parseConfig(
        withSecurity(
          { tls: { ca_file: "/ca" } },
          NODES.map((n) => ({ ...n, tls_cert_file: "/same.pem", tls_key_file: "/k" })),
        ),
        "t.json",
      ),
    /t.json: nodes\[1\].tls_cert_file: \/same.pem would serve both node1 and node2/,
  );
  // One node may use the shared file.
  const one = parseConfig(
    withSecurity({ tls: { ca_file: "/ca", cert_file: "/c", key_file: "/k" } }, ONE_SHARED),
    "t.json",
  );
  assert.equal(one.nodes[0].tlsCertFile, "/c");
});
