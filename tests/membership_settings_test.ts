/**
 * Unit tests of the settings a joiner receives: every section but the node
 * list and security; of security only the TLS policy, never a secret or a
 * file name; members' addresses (admin port included) from the member list.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { configFromSettings, settingsJson, tlsPolicyOf } from "../lib/membership/settings.ts";
import { listFromNodes } from "../lib/membership/member_list.ts";

function cluster(security: Record<string, unknown>) {
  const nodes = [1, 2, 3].map((i) => ({
    id: `node${i}`,
    host: "127.0.0.1",
    port: 7000 + i,
    admin_port: 7100 + i,
    resp_port: 7200 + i,
    tls_cert_file: `/certs/node${i}.pem`,
    tls_key_file: `/certs/node${i}.key`,
  }));
  return parseConfig({ cluster_name: "t", nodes, security }, "/etc/kv/cluster.json");
}

const joiner = {
  id: "node4",
  host: "127.0.0.1",
  port: 7004,
  bindHost: "127.0.0.1",
  adminPort: 0,
  respPort: 7204,
  redisHost: "127.0.0.1",
  redisPort: 6379,
  description: "",
};

Deno.test("the TLS policy travels, the secret and every TLS file name do not", () => {
  const config = cluster({
    cluster_secret: "s3cret-s3cret-s3cret",
    tls: { ca_file: "/certs/ca.pem", require_client_cert: true },
  });
  const json = settingsJson(config);
  assert.doesNotMatch(json, /s3cret|\/certs\/|node1/);
  assert.deepEqual(tlsPolicyOf(json), { requireClientCert: true });
  const plain = settingsJson(cluster({ cluster_secret: "s3cret-s3cret-s3cret" }));
  assert.equal(tlsPolicyOf(plain), undefined);
  assert.equal(tlsPolicyOf("not json"), undefined);
});

Deno.test("a joiner's configuration: the sender's sections, the member list's nodes with their admin ports", () => {
  const config = cluster({ tls: { ca_file: "/certs/ca.pem" } });
  const list = listFromNodes(config.nodes);
  const got = configFromSettings(settingsJson(config), list, joiner, "from node1");
  assert.equal(got.clusterName, "t");
  assert.deepEqual(got.replication, config.replication);
  assert.deepEqual(got.nodes.map((n) => [n.id, n.port, n.adminPort, n.respPort]), [
    ["node1", 7001, 7101, 7201],
    ["node2", 7002, 7102, 7202],
    ["node3", 7003, 7103, 7203],
    ["node4", 7004, 0, 7204],
  ]);
  assert.equal("tlsPolicy" in got, false);
  assert.equal(got.security, undefined, "the joiner fills security from its own flags");
});

Deno.test("settings from another version: unknown keys are reported, never refused; missing ones take defaults", () => {
  const config = cluster({ tls: { ca_file: "/certs/ca.pem" } });
  const list = listFromNodes(config.nodes);
  const reported: string[] = [];
  const report = (u: { path: string; suggestion?: string }[]) =>
    reported.push(...u.map((x) => `${x.path}>${x.suggestion ?? ""}`));

  // The same version: nothing to report (the TLS policy included).
  configFromSettings(settingsJson(config), list, joiner, "from node1", report);
  assert.deepEqual(reported, []);

  // A newer sender: a new section and a new key in a known one.
  const newer = JSON.parse(settingsJson(config));
  newer.consensus = { leaseMs: 5 };
  newer.replication.writeQuorom = 2;
  const got = configFromSettings(JSON.stringify(newer), list, joiner, "from node1", report);
  assert.deepEqual(reported.sort(), ["consensus>", "replication.writeQuorom>replication.writeQuorum"]);
  assert.equal(
    got.replication.writeQuorum,
    config.replication.writeQuorum,
    "known settings are taken as sent",
  );

  // An older sender: a section and a key it did not have yet take this version's defaults.
  const older = JSON.parse(settingsJson(config));
  delete older.membership;
  delete older.replication.sloppyQuorum;
  older.replication.queueLimit = 7;
  const old = configFromSettings(JSON.stringify(older), list, joiner, "from node1");
  assert.equal(old.membership.cleanupGraceMs, config.membership.cleanupGraceMs);
  assert.equal(old.replication.sloppyQuorum, false);
  assert.equal(old.replication.queueLimit, 7);
});
