/**
 * Tests of the cluster-file loader: the embedded default, the file users
 * already have (the interface page's shape), defaults, and one specific
 * message, naming the bad field, for each kind of bad file.
 */
import assert from "node:assert/strict";
import {
  type ClusterConfig,
  ConfigError,
  defaultConfigJson,
  findNode,
  findNodeByPort,
  isNodeId,
  knownSettings,
  loadConfig,
  parseConfig,
  UnknownSettingError,
} from "../lib/config.ts";

/** The cluster file exactly as the interface page describes it, with descriptions. */
const USERS_FILE = {
  cluster_name: "users-cluster",
  nodes: [
    {
      id: "node1",
      host: "127.0.0.1",
      port: 8001,
      redis_host: "127.0.0.1",
      redis_port: 6379,
      description: "first node",
    },
    {
      id: "node2",
      host: "127.0.0.1",
      port: 8002,
      redis_host: "127.0.0.1",
      redis_port: 6380,
      description: "second node",
    },
    {
      id: "node3",
      host: "127.0.0.1",
      port: 8003,
      redis_host: "127.0.0.1",
      redis_port: 6381,
      description: "third node",
    },
  ],
  replication: { replication_factor: 2 },
  failure_detection: { heartbeat_interval_ms: 5000, failure_timeout_ms: 15000 },
  consistent_hashing: { virtual_nodes: 150 },
};

// deno-lint-ignore no-explicit-any
type Json = any;

/** A deep copy of the users' file, changed by `edit`. */
function variant(edit: (raw: Json) => void): Json {
  const raw = structuredClone(USERS_FILE);
  edit(raw);
  return raw;
}

/** Asserts that a raw file fails with a ConfigError naming `path` and matching `reason`. */
function assertBad(raw: unknown, path: string, reason: RegExp): void {
  assert.throws(
    () => parseConfig(raw, "test.json"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
      assert.ok(
        err.message.startsWith(`test.json: ${path}: `),
        `message "${err.message}" lacks path ${path}`,
      );
      assert.match(err.message, reason);
      return true;
    },
  );
}

function withTempFile<T>(text: string, fn: (path: string) => T): T {
  const path = Deno.makeTempFileSync({ prefix: "kvstore-config-test-", suffix: ".json" });
  try {
    Deno.writeTextFileSync(path, text);
    return fn(path);
  } finally {
    Deno.removeSync(path);
  }
}

function assertDefaults(c: ClusterConfig): void {
  assert.equal(c.replication.writeQuorum, 1);
  assert.equal(c.replication.readQuorum, 1);
  assert.equal(c.replication.sloppyQuorum, false);
  assert.equal(c.failureDetection.suspectTimeoutMs, 10_000);
  assert.equal(c.failureDetection.rpcTimeoutMs, 2000);
  assert.equal(c.storage.engine, "memory");
  assert.equal(c.storage.redisKeyPrefix, "kvstore:");
  assert.equal(c.recovery.onStart, true);
  assert.equal(c.limits.maxKeyBytes, 1024);
  assert.equal(c.limits.maxValueBytes, 1 << 20);
  assert.equal(c.limits.maxClockSkewMs, 60_000);
  assert.equal(c.limits.maxClockOffsetMs, 500);
  assert.equal(c.security.tokenWindowMs, 60_000);
  assert.equal(c.security.removedNodeDrainMs, 30_000);
  assert.equal(c.limits.maxCallsPerConnection, 1000);
  assert.equal(c.limits.maxConnectionMemoryMb, 64);
  assert.equal(c.logging.stallThresholdMs, 500);
  assert.equal(c.limits.maxScansPerConnection, 16);
  assert.equal(c.logging.level, "info");
  assert.equal(c.logging.format, "text");
  for (const n of c.nodes) assert.equal(n.bindHost, n.host);
}

Deno.test("the embedded default describes 3 nodes on 8001-8003 with Redis on 6379-6381, rf 2, 5000/15000 ms, 150 vnodes", () => {
  const c = loadConfig();
  assert.deepEqual(c.nodes.map((n) => n.id), ["node1", "node2", "node3"]);
  assert.deepEqual(c.nodes.map((n) => n.port), [8001, 8002, 8003]);
  assert.deepEqual(c.nodes.map((n) => n.redisPort), [6379, 6380, 6381]);
  assert.equal(c.replication.replicationFactor, 2);
  assert.equal(c.failureDetection.heartbeatIntervalMs, 5000);
  assert.equal(c.failureDetection.failureTimeoutMs, 15000);
  assert.equal(c.consistentHashing.virtualNodes, 150);
  assertDefaults(c);
  // The raw default is a copy: changing it does not change the next load.
  const raw = defaultConfigJson() as Json;
  raw.nodes = [];
  assert.equal(loadConfig().nodes.length, 3);
});

Deno.test("the interface page's cluster file loads unchanged from a file and gets every default", () => {
  const c = withTempFile(JSON.stringify(USERS_FILE, null, 2), (path) => {
    const c = loadConfig(path);
    assert.equal(c.source, path);
    return c;
  });
  assert.equal(c.clusterName, "users-cluster");
  assert.deepEqual(
    c.nodes.map((n) => [n.id, n.host, n.port, n.redisHost, n.redisPort, n.description]),
    USERS_FILE.nodes.map((n) => [n.id, n.host, n.port, n.redis_host, n.redis_port, n.description]),
  );
  assert.equal(c.replication.replicationFactor, 2);
  assert.equal(c.failureDetection.heartbeatIntervalMs, 5000);
  assert.equal(c.failureDetection.failureTimeoutMs, 15000);
  assert.equal(c.consistentHashing.virtualNodes, 150);
  assertDefaults(c);
});

Deno.test("the shipped config/cluster.json loads from its path exactly like the embedded default", () => {
  const fromFile = loadConfig(new URL("../config/cluster.json", import.meta.url).pathname);
  const embedded = loadConfig();
  assert.deepEqual({ ...fromFile, source: "" }, { ...embedded, source: "" });
});

Deno.test("a node with an empty or missing description loads", () => {
  const c = parseConfig(
    variant((r) => {
      r.nodes[0].description = "";
      delete r.nodes[1].description;
    }),
    "test.json",
  );
  assert.equal(c.nodes[0].description, "");
  assert.equal(c.nodes[1].description, "");
  assert.equal(c.nodes[2].description, "third node");
  assertBad(variant((r) => r.nodes[0].description = 7), "nodes[0].description", /must be a non-empty string/);
});

Deno.test("new optional settings are read when present", () => {
  const c = parseConfig(
    variant((r) => {
      r.replication.write_quorum = 2;
      r.replication.read_quorum = 2;
      r.replication.sloppy_quorum = true;
      r.failure_detection.suspect_timeout_ms = 7000;
      r.storage = { engine: "redis", redis_key_prefix: "t:" };
      r.logging = { level: "debug", format: "json", stall_threshold_ms: 25 };
      r.nodes[0].bind_host = "0.0.0.0";
      r.limits = {
        max_clock_skew_ms: 5000,
        max_clock_offset_ms: 250,
        max_calls_per_connection: 16,
        max_connection_memory_mb: 8,
        max_scans_per_connection: 4,
      };
      r.security = {
        insecure: true,
        client_token_file: "/etc/kvstore/client.token",
        token_window_ms: 10_000,
        removed_node_drain_ms: 0,
      };
    }),
    "test.json",
  );
  assert.deepEqual(c.security, {
    insecure: true,
    clientTokenFile: "/etc/kvstore/client.token",
    tokenWindowMs: 10_000,
    removedNodeDrainMs: 0,
  });
  assert.equal(c.limits.maxClockSkewMs, 5000);
  assert.equal(c.limits.maxClockOffsetMs, 250);
  assert.equal(c.limits.maxCallsPerConnection, 16);
  assert.equal(c.limits.maxConnectionMemoryMb, 8);
  assert.equal(c.logging.stallThresholdMs, 25);
  assert.equal(c.limits.maxScansPerConnection, 4);
  assert.equal(c.replication.writeQuorum, 2);
  assert.equal(c.replication.readQuorum, 2);
  assert.equal(c.replication.sloppyQuorum, true);
  assert.equal(c.failureDetection.suspectTimeoutMs, 7000);
  assert.equal(c.storage.engine, "redis");
  assert.equal(c.storage.redisKeyPrefix, "t:");
  assert.equal(c.logging.level, "debug");
  assert.equal(c.logging.format, "json");
  assert.equal(c.nodes[0].bindHost, "0.0.0.0");
  assert.equal(c.nodes[0].host, "127.0.0.1");
});

Deno.test("without a security section a node is neither insecure nor asks clients for a token", () => {
  const c = parseConfig(USERS_FILE, "users.json");
  assert.equal(c.security.insecure, undefined);
  assert.equal(c.security.clientTokenFile, undefined);
});

Deno.test("findNode names the unknown id and the known ones", () => {
  const c = loadConfig();
  assert.equal(findNode(c, "node2").port, 8002);
  assert.throws(
    () => findNode(c, "node9"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /: nodes: unknown node id "node9" \(known: node1, node2, node3\)/);
      return true;
    },
  );
});

Deno.test("findNodeByPort finds the node with that port or names the ports that exist", () => {
  const c = loadConfig();
  assert.equal(findNodeByPort(c, 8003).id, "node3");
  assert.equal(findNodeByPort(c, 8001).id, "node1");
  assert.throws(
    () => findNodeByPort(c, 9999),
    /nodes: no node listens on port 9999 \(ports: 8001, 8002, 8003\)/,
  );
});

Deno.test("a duplicate node id is refused with the field path of the second one", () => {
  assertBad(
    variant((r) => r.nodes[2].id = "node1"),
    "nodes[2].id",
    /duplicate node id "node1" \(also nodes\[0\]\)/,
  );
});

Deno.test("a duplicate host:port is refused with the field path of the second one", () => {
  assertBad(
    variant((r) => r.nodes[1].port = 8001),
    "nodes[1].port",
    /duplicate address 127\.0\.0\.1:8001 \(also used by node1\)/,
  );
  // The same port on another host is fine.
  const c = parseConfig(
    variant((r) => {
      r.nodes[1].port = 8001;
      r.nodes[1].host = "127.0.0.2";
    }),
    "test.json",
  );
  assert.equal(c.nodes[1].port, 8001);
});

Deno.test("a replication_factor larger than the number of nodes is refused", () => {
  assertBad(
    variant((r) => r.replication.replication_factor = 4),
    "replication.replication_factor",
    /4 is larger than the number of nodes \(3\)/,
  );
  assertBad(
    variant((r) => r.replication.replication_factor = 0),
    "replication.replication_factor",
    /0 is below the minimum 1/,
  );
});

Deno.test("a negative or zero interval is refused with its field path", () => {
  for (const v of [0, -5000]) {
    assertBad(
      variant((r) => r.failure_detection.heartbeat_interval_ms = v),
      "failure_detection.heartbeat_interval_ms",
      new RegExp(`${v} is below the minimum 1`),
    );
    assertBad(
      variant((r) => r.failure_detection.failure_timeout_ms = v),
      "failure_detection.failure_timeout_ms",
      new RegExp(`${v} is below the minimum 1`),
    );
    assertBad(
      variant((r) => r.consistent_hashing.virtual_nodes = v),
      "consistent_hashing.virtual_nodes",
      new RegExp(`${v} is below the minimum 1`),
    );
  }
  for (
    const limit of [
      "max_clock_skew_ms",
      "max_clock_offset_ms",
      "max_calls_per_connection",
      "max_connection_memory_mb",
    ]
  ) {
    assertBad(variant((r) => r.limits = { [limit]: 0 }), `limits.${limit}`, /0 is below the minimum 1/);
  }
  assertBad(
    variant((r) => r.logging = { stall_threshold_ms: 5 }),
    "logging.stall_threshold_ms",
    /5 is below the minimum 10/,
  );
  assertBad(
    variant((r) => r.limits = { max_scans_per_connection: 0 }),
    "limits.max_scans_per_connection",
    /0 is below the minimum 1/,
  );
  const security: [string, number, RegExp][] = [
    ["token_window_ms", 300_001, /300001 is above the maximum 300000/],
    ["token_window_ms", 999, /999 is below the minimum 1000/],
    ["removed_node_drain_ms", -1, /-1 is below the minimum 0/],
  ];
  for (const [key, v, reason] of security) {
    assertBad(variant((r) => r.security = { [key]: v }), `security.${key}`, reason);
  }
  assertBad(
    variant((r) => r.recovery = { anti_entropy_interval_ms: -1 }),
    "recovery.anti_entropy_interval_ms",
    /-1 is below the minimum 0/,
  );
});

Deno.test("a failure_timeout_ms not larger than heartbeat_interval_ms is refused", () => {
  for (const timeout of [5000, 4000]) {
    assertBad(
      variant((r) => r.failure_detection.failure_timeout_ms = timeout),
      "failure_detection.failure_timeout_ms",
      new RegExp(`${timeout} must be larger than heartbeat_interval_ms \\(5000\\)`),
    );
  }
  assertBad(
    variant((r) => r.failure_detection.suspect_timeout_ms = 20000),
    "failure_detection.suspect_timeout_ms",
    /20000 is larger than failure_timeout_ms/,
  );
});

Deno.test("sloppy_quorum is refused with write_quorum 1, where it means nothing, and when not true or false", () => {
  assertBad(
    variant((r) => r.replication.sloppy_quorum = true),
    "replication.sloppy_quorum",
    /needs write_quorum 2 or more/,
  );
  assertBad(
    variant((r) => {
      r.replication.write_quorum = 2;
      r.replication.sloppy_quorum = "yes";
    }),
    "replication.sloppy_quorum",
    /must be true or false/,
  );
});

Deno.test("a write_quorum or read_quorum larger than replication_factor is refused", () => {
  assertBad(
    variant((r) => r.replication.write_quorum = 3),
    "replication.write_quorum",
    /3 is larger than replication_factor \(2\)/,
  );
  assertBad(
    variant((r) => r.replication.read_quorum = 3),
    "replication.read_quorum",
    /3 is larger than replication_factor \(2\)/,
  );
});

Deno.test("an unknown storage engine is refused with the allowed ones", () => {
  assertBad(
    variant((r) => r.storage = { engine: "postgres" }),
    "storage.engine",
    /must be one of "memory", "redis"/,
  );
  assertBad(variant((r) => r.storage = "postgres"), "storage", /must be one of "memory", "redis"/);
  assertBad(variant((r) => r.storage = 7), "storage", /must be an object/);
});

Deno.test('"storage": "redis" and "memory" are shorthand for {"engine": ...}', () => {
  const redis = parseConfig(variant((r) => r.storage = "redis"), "test.json");
  assert.equal(redis.storage.engine, "redis");
  assert.equal(redis.storage.redisKeyPrefix, "kvstore:");
  assert.equal(parseConfig(variant((r) => r.storage = "memory"), "test.json").storage.engine, "memory");
});

Deno.test("admin_port defaults to the gRPC port + 1000; 0 turns the listener off", () => {
  const c = parseConfig(
    variant((r) => {
      r.nodes[1].admin_port = 0;
      r.nodes[2].admin_port = 9999;
    }),
    "test.json",
  );
  assert.deepEqual(c.nodes.map((n) => n.adminPort), [c.nodes[0].port + 1000, 0, 9999]);
  assertBad(variant((r) => r.nodes[0].admin_port = 70000), "nodes[0].admin_port", /above the maximum/);
});

Deno.test("resp_port is off (0) unless a node's entry sets it; resp settings default for redis-benchmark -c 50", () => {
  const c = parseConfig(variant((r) => r.nodes[1].resp_port = 7002), "test.json");
  assert.deepEqual(c.nodes.map((n) => n.respPort), [0, 7002, 0]);
  assertBad(variant((r) => r.nodes[0].resp_port = 70000), "nodes[0].resp_port", /above the maximum/);
  assert.deepEqual(c.resp, {
    disableFlush: false,
    maxConnections: 1000,
    idleTimeoutMs: 300_000,
    outputBufferLimitBytes: 256 << 20,
    keysLimit: 1_000_000,
  });
  const set = parseConfig(
    variant((r) =>
      r.resp = {
        disable_flush: true,
        max_connections: 60,
        idle_timeout_ms: 0,
        output_buffer_limit_bytes: 65536,
        keys_limit: 10,
      }
    ),
    "test.json",
  );
  assert.deepEqual(set.resp, {
    disableFlush: true,
    maxConnections: 60,
    idleTimeoutMs: 0,
    outputBufferLimitBytes: 65536,
    keysLimit: 10,
  });
  assertBad(
    variant((r) => r.resp = { max_connections: 0 }),
    "resp.max_connections",
    /0 is below the minimum 1/,
  );
  assertBad(
    variant((r) => r.resp = { output_buffer_limit_bytes: 1000 }),
    "resp.output_buffer_limit_bytes",
    /1000 is below the minimum 65536/,
  );
  assertBad(variant((r) => r.resp = { disable_flush: "yes" }), "resp.disable_flush", /must be true or false/);
  assertBad(
    variant((r) => r.resp = { idle_timeout_ms: -1 }),
    "resp.idle_timeout_ms",
    /-1 is below the minimum 0/,
  );
  assertBad(variant((r) => r.resp = { keys_limit: 0 }), "resp.keys_limit", /0 is below the minimum 1/);
});

Deno.test("a port that is not an integer, or out of range, is refused with the node's field path", () => {
  assertBad(variant((r) => r.nodes[0].port = 8001.5), "nodes[0].port", /must be an integer/);
  assertBad(variant((r) => r.nodes[1].port = "8002"), "nodes[1].port", /must be an integer/);
  assertBad(variant((r) => delete r.nodes[2].port), "nodes[2].port", /must be an integer/);
  assertBad(variant((r) => r.nodes[0].port = 70000), "nodes[0].port", /70000 is above the maximum 65535/);
  assertBad(variant((r) => r.nodes[0].redis_port = 0), "nodes[0].redis_port", /0 is below the minimum 1/);
});

Deno.test("a file without nodes, or with an empty node list, is refused", () => {
  assertBad(variant((r) => delete r.nodes), "nodes", /must be an array/);
  assertBad(variant((r) => r.nodes = {}), "nodes", /must be an array/);
  assertBad(variant((r) => r.nodes = []), "nodes", /at least one node is required/);
  assertBad(variant((r) => r.nodes[1] = "node2"), "nodes[1]", /must be an object/);
  assertBad(variant((r) => delete r.nodes[0].id), "nodes[0].id", /must be a non-empty string/);
  assertBad(variant((r) => r.nodes[0].id = "node 1"), "nodes[0].id", /may hold only letters, digits/);
  assertBad([], "$", /must be an object/);
});

Deno.test("a file that is not valid JSON is refused with its path", () => {
  withTempFile('{ "nodes": [ ', (path) => {
    assert.throws(() => loadConfig(path), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`${path}: (file): not valid JSON`), err.message);
      return true;
    });
  });
});

Deno.test("a file that cannot be read is refused with its path", () => {
  const path = `${Deno.makeTempDirSync({ prefix: "kvstore-config-test-" })}/missing.json`;
  try {
    assert.throws(() => loadConfig(path), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`${path}: (file): cannot read`), err.message);
      return true;
    });
  } finally {
    Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("a node id is letters, digits, _ . - and nothing else, never empty", () => {
  for (const id of ["node1", "n-2", "db_3.east", "A.b-C_9"]) assert.equal(isNodeId(id), true, id);
  for (const id of ["", "node 1", "node/1", "nöde", "node1\n", "a:b"]) assert.equal(isNodeId(id), false, id);
});

/** Asserts that a raw file is refused naming exactly these unknown keys, with these hints. */
function assertUnknown(raw: unknown, expected: string): void {
  assert.throws(() => parseConfig(raw, "test.json"), (err: unknown) => {
    assert.ok(err instanceof UnknownSettingError, `not an UnknownSettingError: ${err}`);
    assert.ok(err instanceof ConfigError, "main.ts reports it as any bad file (exit 2, one line)");
    assert.equal(err.message, `test.json: ${expected}`);
    return true;
  });
}

Deno.test("an unknown key is refused with its path and the nearest known one: top level, section, node entry", () => {
  assertUnknown(
    variant((r) => r.replication.write_quorom = 2),
    "unknown setting replication.write_quorom; did you mean replication.write_quorum?",
  );
  assertUnknown(
    variant((r) => r.clustre_name = "x"),
    "unknown setting clustre_name; did you mean cluster_name?",
  );
  assertUnknown(
    variant((r) => r.nodes[2].redis_prot = 6390),
    "unknown setting nodes[2].redis_prot; did you mean nodes[2].redis_port?",
  );
  // In the wrong section: the same key where it belongs.
  assertUnknown(
    variant((r) => r.limits = { sloppy_quorum: true }),
    "unknown setting limits.sloppy_quorum; did you mean replication.sloppy_quorum?",
  );
  // Nothing near: no guess; a whole unknown section is named once, not key by key.
  assertUnknown(variant((r) => r.paxos = { rounds: 3, lease_ms: 9 }), "unknown setting paxos");
  assertUnknown(
    variant((r) => {
      r.security = { tls: { ca_file: "/ca.pem", cert_file: "/c", key_file: "/k", cipher: "x" } };
      r.nodes.splice(1);
      r.replication.replication_factor = 1;
    }),
    "unknown setting security.tls.cipher",
  );
  // Every unknown key, one line each.
  assertUnknown(
    variant((r) => {
      r.replication.read_quorom = 1;
      r.storage = { engin: "redis" };
    }),
    "unknown setting replication.read_quorom; did you mean replication.read_quorum?\n" +
      "unknown setting storage.engin; did you mean storage.engine?",
  );
});

Deno.test("a mistyped required key is named as unknown, not as the missing key it stands for", () => {
  assertUnknown(
    variant((r) => {
      r.nodes[0].prot = r.nodes[0].port;
      delete r.nodes[0].port;
    }),
    "unknown setting nodes[0].prot; did you mean nodes[0].port?",
  );
});

Deno.test("documented shorthands, optional keys and the shipped file load; keys read only when set are known", () => {
  for (const engine of ["redis", "memory"]) {
    assert.equal(parseConfig(variant((r) => r.storage = engine), "t.json").storage.engine, engine);
  }
  assert.equal(parseConfig(variant((r) => r.nodes[0].description = ""), "t.json").nodes[0].description, "");
  const shipped = new URL("../config/cluster.json", import.meta.url).pathname;
  assert.equal(loadConfig(shipped).nodes.length, 3);
  parseConfig(USERS_FILE, "users.json");
  // Keys read only when set (the secret, TLS files) are known in a file without them too.
  const known = knownSettings();
  for (
    const k of ["security.cluster_secret", "security.tls.ca_file", "nodes[].tls_cert_file", "storage.engine"]
  ) {
    assert.ok(known.includes(k), `${k} is a known setting`);
  }
  assert.ok(!known.includes("replication") && !known.includes("nodes[]"), "sections are not settings");
});

/** Where the settings table lives: docs/configuration.md, under its title. */
const SETTINGS_DOC = { file: "../docs/configuration.md", heading: "# Configuration" };

/** The keys a settings table's rows name: the first `code` of each row's first cell. */
function documentedSettings(markdown: string, heading: string): string[] {
  const start = `\n${markdown}`.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no "${heading}" section`);
  const end = markdown.indexOf("\n## ", start + heading.length + 2);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` /gm)].map((m) => m[1]);
}

Deno.test("the settings table names every setting the loader reads, and none it does not", async () => {
  const doc = await Deno.readTextFile(new URL(SETTINGS_DOC.file, import.meta.url));
  const documented = documentedSettings(doc, SETTINGS_DOC.heading);
  const known = knownSettings();
  const missing = known.filter((k) => !documented.includes(k));
  const stale = documented.filter((k) => !known.includes(k));
  assert.deepEqual(missing, [], `settings missing from ${SETTINGS_DOC.file} ${SETTINGS_DOC.heading}`);
  assert.deepEqual(stale, [], `${SETTINGS_DOC.file} documents settings the loader does not read`);
  assert.equal(new Set(documented).size, documented.length, "each setting has one row");
});
