/**
 * The one cluster-configuration loader.
 *
 * Every module reads its settings from the {@link ClusterConfig} this module
 * returns, never from the file or the environment itself. The default file,
 * `config/cluster.json`, is embedded by a static import so a compiled
 * executable needs nothing beside it; `--config FILE` replaces it. The file
 * users already have (the shape on the interface page) loads unchanged: every
 * setting added since is an optional key with a default. A bad file fails
 * fast with the path of the bad field and the reason, and so does a key the
 * loader does not know (with the nearest known one): the readers record
 * every path they read, so reading a new setting is what makes it known.
 */
import defaultClusterFile from "../config/cluster.json" with { type: "json" };
import { describeUnknown, settingPath, type UnknownSetting, unknownSettings } from "./config_keys.ts";

/** One node of the cluster, as the cluster file describes it. */
export interface NodeConfig {
  id: string;
  host: string;
  port: number;
  /** Address the gRPC server binds; defaults to `host`. */
  bindHost: string;
  /** Port of the admin HTTP listener (metrics, health, status page); 0 = off. */
  adminPort: number;
  /** Port of the Redis protocol gateway (RESP, `lib/resp/`); 0 = off. Not the storage engine's `redisPort`. */
  respPort: number;
  redisHost: string;
  redisPort: number;
  description: string;
  /** This node's TLS certificate and key, when `security.tls` is set (override or the shared ones). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** TLS files and policy (`security.tls`); paths are resolved against the cluster file's folder. */
export interface TlsConfig {
  caFile: string;
  /** Refuse clients of KeyValueStore without a certificate signed by the CA. */
  requireClientCert: boolean;
}

/** The token timing a node uses when nothing names it (a joiner without --config, too). */
export const SECURITY_TIMING = { tokenWindowMs: 60_000, removedNodeDrainMs: 30_000 } as const;

/** Who may act as a node, and how traffic is protected (`security`). */
export interface SecurityConfig {
  /** The shared secret inline (`cluster_secret`), if given. */
  clusterSecret?: string;
  /** A file holding the shared secret (`cluster_secret_file`, preferred). */
  clusterSecretFile?: string;
  tls?: TlsConfig;
  /**
   * Take node traffic from any address with neither a secret nor TLS
   * (`insecure`); off, such a node runs in protected mode (loopback only).
   */
  insecure?: boolean;
  /** A file holding the token every KeyValueStore call must carry (`client_token_file`). */
  clientTokenFile?: string;
  /** How far a node token's time may be from the receiver's clock (`token_window_ms`). */
  tokenWindowMs: number;
  /** How long a node removed from the list may still call its peers (`removed_node_drain_ms`). */
  removedNodeDrainMs: number;
}

/** The Redis protocol gateway's settings (`resp`). */
export interface RespConfig {
  /** Refuse FLUSHDB and FLUSHALL (`disable_flush`). */
  disableFlush: boolean;
  /** Open RESP connections per node at most; more are answered "max number of clients reached". */
  maxConnections: number;
  /** A connection silent this long is closed (0 = never). */
  idleTimeoutMs: number;
  /** Reply bytes a connection may have waiting to be sent before it is closed (client-output-buffer-limit). */
  outputBufferLimitBytes: number;
  /** Keys KEYS may answer at most; more is an error pointing to SCAN. */
  keysLimit: number;
}

/** Storage engines a node can keep its data in. */
export type StorageEngine = "memory" | "redis";

const ENGINES = ["memory", "redis"] as const;

/** Log verbosity, most verbose first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** How log lines are written. */
export type LogFormat = "text" | "json";

/** The whole, validated cluster configuration with every default filled. */
export interface ClusterConfig {
  clusterName: string;
  nodes: NodeConfig[];
  replication: {
    replicationFactor: number;
    /** Copies written before a write is acknowledged (1 = asynchronous). */
    writeQuorum: number;
    /** Copies read and compared before a read is answered. */
    readQuorum: number;
    /** Whether hinted copies on stand-ins count toward writeQuorum (Dynamo's sloppy quorum). */
    sloppyQuorum: boolean;
    /** Records waiting to be replicated to one peer before writers wait. */
    queueLimit: number;
    /** Records per ReplicateBatch call. */
    batchSize: number;
    /** Hints (writes held for a node that is down) kept at most. */
    hintLimit: number;
    /** Hints older than this are dropped (anti-entropy repairs the rest). */
    hintMaxAgeMs: number;
    /** Tombstones older than this are purged. */
    tombstoneGraceMs: number;
  };
  failureDetection: {
    heartbeatIntervalMs: number;
    /** Silence after which a peer is SUSPECTED (default 2 heartbeats). */
    suspectTimeoutMs: number;
    failureTimeoutMs: number;
    /** Deadline of every node-to-node call. */
    rpcTimeoutMs: number;
    /** Peer channels ping this often, idle or not (finds half-open connections). */
    keepaliveTimeMs: number;
    /** A ping unanswered this long drops the connection and fails its calls UNAVAILABLE. */
    keepaliveTimeoutMs: number;
  };
  consistentHashing: { virtualNodes: number };
  storage: { engine: StorageEngine; redisKeyPrefix: string };
  recovery: {
    /** Pull the node's ranges from its peers when it starts. */
    onStart: boolean;
    chunkRecords: number;
    chunkBytes: number;
    /** 0 turns anti-entropy off. */
    antiEntropyIntervalMs: number;
    antiEntropyBucketBits: number;
  };
  limits: {
    maxKeyBytes: number;
    maxValueBytes: number;
    maxBatchItems: number;
    /** Largest gRPC message a node accepts or sends. */
    maxMessageBytes: number;
    /** Keys or records per ListKeys / GetSnapshot page by default. */
    maxPageItems: number;
    /** ListKeys / GetSnapshot scans one connection may hold open at once. */
    maxScansPerConnection: number;
    /** How far ahead of a node's clock a client timestamp may be (peers: twice this). */
    maxClockSkewMs: number;
    /**
     * Clock offset to a majority of the other members beyond which a node
     * stops coordinating writes (NOT_SERVING) until its clock is back.
     */
    maxClockOffsetMs: number;
    /** Calls one client connection may have in flight; more are answered RESOURCE_EXHAUSTED. */
    maxCallsPerConnection: number;
    /** HTTP/2 memory one connection may hold, in MiB (grpc-js's grpc-node.max_session_memory). */
    maxConnectionMemoryMb: number;
  };
  logging: {
    level: LogLevel;
    format: LogFormat;
    /** The event loop blocked at least this long is logged (stall_watch.ts). */
    stallThresholdMs: number;
  };
  security: SecurityConfig;
  membership: {
    /** After a membership change completes, copies a node no longer holds are dropped after this. */
    cleanupGraceMs: number;
  };
  /** The Redis protocol gateway's settings (`resp`); each node's listener is its `resp_port`. */
  resp: RespConfig;
  /** Where the file came from, for messages. */
  source: string;
}

/** A configuration file that cannot be used; the message names the field. */
export class ConfigError extends Error {
  constructor(source: string, path: string, reason: string) {
    super(`${source}: ${path}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** Keys of a cluster file the loader does not know; the message names each and the nearest known one. */
export class UnknownSettingError extends ConfigError {
  constructor(source: string, readonly unknown: UnknownSetting[]) {
    super(source, unknown[0].path, "unknown setting");
    this.message = `${source}: ${describeUnknown(unknown)}`;
    this.name = "UnknownSettingError";
  }
}

/** Loads and validates a cluster file, or the embedded default without a path. */
export function loadConfig(path?: string): ClusterConfig {
  if (path === undefined) return parseConfig(defaultClusterFile, "embedded config/cluster.json");
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(path, "(file)", `cannot read: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, "(file)", `not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, path, { baseDir: path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "." });
}

/** The raw, unvalidated JSON of the embedded default cluster file. */
export function defaultConfigJson(): unknown {
  return structuredClone(defaultClusterFile);
}

/**
 * Validates raw JSON (the parsed cluster file) into a {@link ClusterConfig}.
 * Relative file paths in it are taken from `baseDir` (the cluster file's
 * folder), or the working directory without one.
 */
export function parseConfig(raw: unknown, source: string, opts: { baseDir?: string } = {}): ClusterConfig {
  const r = new Reader(source, opts.baseDir);
  try {
    const config = readConfig(r, raw, source);
    refuseUnknown(r, raw, source);
    return config;
  } catch (err) {
    // A mistyped key is the likelier cause of a failure (a required key then reads as missing): name it.
    if (err instanceof ConfigError && !(err instanceof UnknownSettingError)) refuseUnknown(r, raw, source);
    throw err;
  }
}

function refuseUnknown(r: Reader, raw: unknown, source: string): void {
  // Known: every key any file may hold, and those this file's reads touched (a setting read only when set).
  const unknown = unknownSettings(raw, new Set([...fileKeys().all, ...r.seen]));
  if (unknown.length > 0) throw new UnknownSettingError(source, unknown);
}

/**
 * The smallest valid file: reading it touches every setting, since every
 * reader runs whether its key is there or not (so keep it that way).
 */
const SMALLEST_FILE = {
  nodes: [{ id: "a", host: "127.0.0.1", port: 1 }, { id: "b", host: "127.0.0.1", port: 2 }],
};

let fileKeysMemo: { all: Set<string>; settings: string[]; defaults: ClusterConfig } | undefined;

/** The key paths the loader reads (sections and settings), and the defaults, from the smallest file. */
function fileKeys(): { all: Set<string>; settings: string[]; defaults: ClusterConfig } {
  if (fileKeysMemo) return fileKeysMemo;
  const r = new Reader("(known settings)");
  const defaults = readConfig(r, SMALLEST_FILE, "defaults");
  const settings = [...r.seen].filter((p) => !r.sections.has(p)).sort();
  return fileKeysMemo = { all: r.seen, settings, defaults };
}

/** Every setting a cluster file may hold (`replication.write_quorum`, `nodes[].port`), sorted. */
export function knownSettings(): string[] {
  return [...fileKeys().settings];
}

/** Every setting at its default (nodes from a two-node file): what a peer's settings fall back on. */
export function defaultSettings(): ClusterConfig {
  return structuredClone(fileKeys().defaults);
}

function readConfig(r: Reader, raw: unknown, source: string): ClusterConfig {
  const root = r.object(raw, "$");
  const nodes = r.array(root.nodes, "nodes").map((n, i) => readNode(r, n, `nodes[${i}]`));
  if (nodes.length === 0) r.fail("nodes", "at least one node is required");
  checkUnique(r, nodes);
  const security = readSecurity(
    r,
    r.optionalObject(root.security, "security"),
    nodes,
    root.nodes as unknown[],
  );

  const rep = r.optionalObject(root.replication, "replication");
  const replicationFactor = r.int(rep.replication_factor, "replication.replication_factor", 2, 1);
  if (replicationFactor > nodes.length) {
    r.fail(
      "replication.replication_factor",
      `${replicationFactor} is larger than the number of nodes (${nodes.length})`,
    );
  }
  const quorum = (key: string) => {
    const q = r.int(rep[key], `replication.${key}`, 1, 1);
    if (q > replicationFactor) {
      r.fail(`replication.${key}`, `${q} is larger than replication_factor (${replicationFactor})`);
    }
    return q;
  };
  const writeQuorum = quorum("write_quorum");
  const sloppyQuorum = r.bool(rep.sloppy_quorum, "replication.sloppy_quorum", false);
  if (sloppyQuorum && writeQuorum < 2) {
    r.fail(
      "replication.sloppy_quorum",
      "needs write_quorum 2 or more (with 1 every write is acknowledged at once)",
    );
  }

  const fd = r.optionalObject(root.failure_detection, "failure_detection");
  const heartbeatIntervalMs = r.int(
    fd.heartbeat_interval_ms,
    "failure_detection.heartbeat_interval_ms",
    5000,
    1,
  );
  const failureTimeoutMs = r.int(fd.failure_timeout_ms, "failure_detection.failure_timeout_ms", 15000, 1);
  if (failureTimeoutMs <= heartbeatIntervalMs) {
    r.fail(
      "failure_detection.failure_timeout_ms",
      `${failureTimeoutMs} must be larger than heartbeat_interval_ms (${heartbeatIntervalMs})`,
    );
  }
  const suspectTimeoutMs = r.int(
    fd.suspect_timeout_ms,
    "failure_detection.suspect_timeout_ms",
    Math.min(2 * heartbeatIntervalMs, failureTimeoutMs),
    1,
  );
  if (suspectTimeoutMs > failureTimeoutMs) {
    r.fail("failure_detection.suspect_timeout_ms", `${suspectTimeoutMs} is larger than failure_timeout_ms`);
  }

  const ch = r.optionalObject(root.consistent_hashing, "consistent_hashing");
  // `"storage": "redis"` is shorthand for `{"engine": "redis"}`.
  const shorthand = typeof root.storage === "string";
  const st = shorthand ? { engine: root.storage } : r.optionalObject(root.storage, "storage");
  const rc = r.optionalObject(root.recovery, "recovery");
  const lim = r.optionalObject(root.limits, "limits");
  const lg = r.optionalObject(root.logging, "logging");
  const mb = r.optionalObject(root.membership, "membership");
  const rs = r.optionalObject(root.resp, "resp");

  return {
    clusterName: r.string(root.cluster_name, "cluster_name", "kvstore"),
    nodes,
    replication: {
      replicationFactor,
      writeQuorum,
      readQuorum: quorum("read_quorum"),
      sloppyQuorum,
      queueLimit: r.int(rep.queue_limit, "replication.queue_limit", 100_000, 1),
      batchSize: r.int(rep.batch_size, "replication.batch_size", 500, 1),
      hintLimit: r.int(rep.hint_limit, "replication.hint_limit", 1_000_000, 0),
      hintMaxAgeMs: r.int(rep.hint_max_age_ms, "replication.hint_max_age_ms", 3 * 3600_000, 1),
      tombstoneGraceMs: r.int(rep.tombstone_grace_ms, "replication.tombstone_grace_ms", 24 * 3600_000, 1),
    },
    failureDetection: {
      heartbeatIntervalMs,
      suspectTimeoutMs,
      failureTimeoutMs,
      rpcTimeoutMs: r.int(fd.rpc_timeout_ms, "failure_detection.rpc_timeout_ms", 2000, 1),
      keepaliveTimeMs: r.int(fd.keepalive_time_ms, "failure_detection.keepalive_time_ms", 10_000, 100),
      keepaliveTimeoutMs: r.int(fd.keepalive_timeout_ms, "failure_detection.keepalive_timeout_ms", 5000, 100),
    },
    consistentHashing: {
      virtualNodes: r.int(ch.virtual_nodes, "consistent_hashing.virtual_nodes", 150, 1, 10_000),
    },
    storage: {
      engine: r.oneOf(st.engine, shorthand ? "storage" : "storage.engine", ENGINES, "memory"),
      redisKeyPrefix: r.string(st.redis_key_prefix, "storage.redis_key_prefix", "kvstore:"),
    },
    recovery: {
      onStart: r.bool(rc.on_start, "recovery.on_start", true),
      // Small chunks: a recovering node decodes two streams at once, and the chunks in hand when the
      // young generation is collected survive into the old one (1M records recovered: peak 346-350 MB
      // with 250 / 256 KiB, 404-407 MB with 1000 / 1 MiB).
      chunkRecords: r.int(rc.chunk_records, "recovery.chunk_records", 250, 1),
      chunkBytes: r.int(rc.chunk_bytes, "recovery.chunk_bytes", 256 << 10, 1024),
      antiEntropyIntervalMs: r.int(
        rc.anti_entropy_interval_ms,
        "recovery.anti_entropy_interval_ms",
        60_000,
        0,
      ),
      antiEntropyBucketBits: r.int(
        rc.anti_entropy_bucket_bits,
        "recovery.anti_entropy_bucket_bits",
        8,
        BUCKET_BITS.min,
        BUCKET_BITS.max,
      ),
    },
    limits: readLimits(r, lim),
    logging: {
      level: r.oneOf(lg.level, "logging.level", ["debug", "info", "warn", "error"] as const, "info"),
      format: r.oneOf(lg.format, "logging.format", ["text", "json"] as const, "text"),
      stallThresholdMs: r.int(lg.stall_threshold_ms, "logging.stall_threshold_ms", 500, 10, 60_000),
    },
    security,
    membership: {
      cleanupGraceMs: r.int(mb.cleanup_grace_ms, "membership.cleanup_grace_ms", 60_000, 0),
    },
    resp: readResp(r, rs),
    source,
  };
}

/**
 * The range of `recovery.anti_entropy_bucket_bits`, and so of the bucket_bits a
 * peer may ask for: a digest array of 2^bits is allocated per request, so the
 * bound keeps one request from taking gigabytes (2^30) or the event loop for seconds.
 */
export const BUCKET_BITS = { min: 1, max: 16 } as const;

function readLimits(r: Reader, lim: Record<string, unknown>): ClusterConfig["limits"] {
  const maxKeyBytes = r.int(lim.max_key_bytes, "limits.max_key_bytes", 1024, 1);
  const maxValueBytes = r.int(lim.max_value_bytes, "limits.max_value_bytes", 1 << 20, 1);
  const maxMessageBytes = r.int(lim.max_message_bytes, "limits.max_message_bytes", 64 << 20, 1 << 20);
  if (maxValueBytes + maxKeyBytes + 1024 > maxMessageBytes) {
    r.fail("limits.max_message_bytes", `${maxMessageBytes} cannot carry one value of max_value_bytes`);
  }
  return {
    maxKeyBytes,
    maxValueBytes,
    maxMessageBytes,
    maxBatchItems: r.int(lim.max_batch_items, "limits.max_batch_items", 10_000, 1),
    maxPageItems: r.int(lim.max_page_items, "limits.max_page_items", 10_000, 1),
    maxScansPerConnection: r.int(
      lim.max_scans_per_connection,
      "limits.max_scans_per_connection",
      16,
      1,
      10_000,
    ),
    maxClockSkewMs: r.int(lim.max_clock_skew_ms, "limits.max_clock_skew_ms", 60_000, 1, 3600_000 * 24 * 365),
    maxClockOffsetMs: r.int(
      lim.max_clock_offset_ms,
      "limits.max_clock_offset_ms",
      500,
      1,
      3600_000 * 24 * 365,
    ),
    maxCallsPerConnection: r.int(
      lim.max_calls_per_connection,
      "limits.max_calls_per_connection",
      1000,
      1,
      100_000,
    ),
    maxConnectionMemoryMb: r.int(
      lim.max_connection_memory_mb,
      "limits.max_connection_memory_mb",
      64,
      1,
      65_536,
    ),
  };
}

function readResp(r: Reader, rs: Record<string, unknown>): RespConfig {
  return {
    disableFlush: r.bool(rs.disable_flush, "resp.disable_flush", false),
    maxConnections: r.int(rs.max_connections, "resp.max_connections", 1000, 1, 100_000),
    idleTimeoutMs: r.int(rs.idle_timeout_ms, "resp.idle_timeout_ms", 300_000, 0),
    outputBufferLimitBytes: r.int(
      rs.output_buffer_limit_bytes,
      "resp.output_buffer_limit_bytes",
      256 << 20,
      64 << 10,
    ),
    keysLimit: r.int(rs.keys_limit, "resp.keys_limit", 1_000_000, 1),
  };
}

function readSecurity(
  r: Reader,
  sec: Record<string, unknown>,
  nodes: NodeConfig[],
  rawNodes: unknown[],
): SecurityConfig {
  const out: SecurityConfig = {
    tokenWindowMs: r.int(
      sec.token_window_ms,
      "security.token_window_ms",
      SECURITY_TIMING.tokenWindowMs,
      1000,
      300_000,
    ),
    removedNodeDrainMs: r.int(
      sec.removed_node_drain_ms,
      "security.removed_node_drain_ms",
      SECURITY_TIMING.removedNodeDrainMs,
      0,
      3600_000,
    ),
  };
  if (sec.cluster_secret !== undefined && sec.cluster_secret_file !== undefined) {
    r.fail("security.cluster_secret", "set cluster_secret or cluster_secret_file, not both");
  }
  // Optional keys are read even when absent, so that every key is known (see SMALLEST_FILE).
  const clusterSecret = r.optional(sec.cluster_secret, "security.cluster_secret", r.string);
  if (clusterSecret !== undefined) out.clusterSecret = clusterSecret;
  const secretFile = r.optional(sec.cluster_secret_file, "security.cluster_secret_file", r.path);
  if (secretFile !== undefined) out.clusterSecretFile = secretFile;
  if (r.bool(sec.insecure, "security.insecure", false)) out.insecure = true;
  const tokenFile = r.optional(sec.client_token_file, "security.client_token_file", r.path);
  if (tokenFile !== undefined) out.clientTokenFile = tokenFile;
  const tls = r.optionalObject(sec.tls, "security.tls");
  const certFile = r.optional(tls.cert_file, "security.tls.cert_file", r.path);
  const keyFile = r.optional(tls.key_file, "security.tls.key_file", r.path);
  const caFile = r.optional(tls.ca_file, "security.tls.ca_file", r.path);
  const requireClientCert = r.bool(tls.require_client_cert, "security.tls.require_client_cert", false);
  const own = rawNodes.map((raw, i) => {
    const n = raw as Record<string, unknown>;
    return {
      cert: r.optional(n.tls_cert_file, `nodes[${i}].tls_cert_file`, r.path),
      key: r.optional(n.tls_key_file, `nodes[${i}].tls_key_file`, r.path),
    };
  });
  if (sec.tls === undefined) return out;
  nodes.forEach((n, i) => {
    const path = `nodes[${i}]`;
    n.tlsCertFile = own[i].cert ?? certFile;
    n.tlsKeyFile = own[i].key ?? keyFile;
    if (!n.tlsCertFile) {
      r.fail(`${path}.tls_cert_file`, "required (or security.tls.cert_file) with security.tls");
    }
    if (!n.tlsKeyFile) {
      r.fail(`${path}.tls_key_file`, "required (or security.tls.key_file) with security.tls");
    }
  });
  checkOwnCerts(r, nodes, rawNodes);
  out.tls = {
    caFile: caFile ?? r.fail("security.tls.ca_file", "must be a non-empty string"),
    requireClientCert,
  };
  return out;
}

/**
 * Each node's certificate must name it (common name = its id): peers admit
 * a node by that name, so nodes sharing one certificate refuse each other
 * and each serves alone. Two nodes given the same file are refused here.
 */
function checkOwnCerts(r: Reader, nodes: NodeConfig[], rawNodes: unknown[]): void {
  const seen = new Map<string, number>();
  nodes.forEach((n, i) => {
    const first = seen.get(n.tlsCertFile!);
    if (first === undefined) return void seen.set(n.tlsCertFile!, i);
    const own = (rawNodes[i] as Record<string, unknown>).tls_cert_file !== undefined;
    r.fail(
      own ? `nodes[${i}].tls_cert_file` : "security.tls.cert_file",
      `${n.tlsCertFile} would serve both ${
        nodes[first].id
      } and ${n.id}; each node needs its own certificate ` +
        `whose common name is its id (nodes[].tls_cert_file, tls_key_file; main.ts certs --nodes makes them)`,
    );
  });
}

/**
 * Whether `id` may name a node: letters, digits, `_ . -`. One rule for the
 * cluster file, `--join --id`, a JoinCluster request and `certs --nodes`, since
 * an id ends up in all of them (and in certificates and tokens).
 */
export function isNodeId(id: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(id);
}

function readNode(r: Reader, raw: unknown, path: string): NodeConfig {
  const n = r.object(raw, path);
  const id = r.string(n.id, `${path}.id`);
  if (!isNodeId(id)) r.fail(`${path}.id`, `"${id}" may hold only letters, digits, _ . -`);
  const host = r.string(n.host, `${path}.host`);
  const port = r.int(n.port, `${path}.port`, undefined, 1, 65535);
  return {
    id,
    host,
    port,
    bindHost: r.string(n.bind_host, `${path}.bind_host`, host),
    adminPort: r.int(n.admin_port, `${path}.admin_port`, port + 1000 <= 65535 ? port + 1000 : 0, 0, 65535),
    respPort: r.int(n.resp_port, `${path}.resp_port`, 0, 0, 65535),
    redisHost: r.string(n.redis_host, `${path}.redis_host`, "127.0.0.1"),
    redisPort: r.int(n.redis_port, `${path}.redis_port`, 6379, 1, 65535),
    // Free text, optional: an empty description is as good as none.
    description: r.string(n.description === "" ? undefined : n.description, `${path}.description`, ""),
  };
}

function checkUnique(r: Reader, nodes: NodeConfig[]): void {
  const ids = new Map<string, number>();
  const addrs = new Map<string, string>();
  nodes.forEach((n, i) => {
    const seen = ids.get(n.id);
    if (seen !== undefined) r.fail(`nodes[${i}].id`, `duplicate node id "${n.id}" (also nodes[${seen}])`);
    ids.set(n.id, i);
    const addr = `${n.host}:${n.port}`;
    const other = addrs.get(addr);
    if (other !== undefined) r.fail(`nodes[${i}].port`, `duplicate address ${addr} (also used by ${other})`);
    addrs.set(addr, n.id);
  });
}

/** Finds a node by id, or says which ids exist. */
export function findNode(config: ClusterConfig, id: string): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) {
    throw new ConfigError(
      config.source,
      "nodes",
      `unknown node id "${id}" (known: ${config.nodes.map((n) => n.id).join(", ")})`,
    );
  }
  return node;
}

/** Finds the node whose entry has this port, or says which ports exist. */
export function findNodeByPort(config: ClusterConfig, port: number): NodeConfig {
  const node = config.nodes.find((n) => n.port === port);
  if (!node) {
    throw new ConfigError(
      config.source,
      "nodes",
      `no node listens on port ${port} (ports: ${config.nodes.map((n) => n.port).join(", ")})`,
    );
  }
  return node;
}

/** Typed field readers that fail with the field's path. */
class Reader {
  /** Every path read so far (node indexes dropped), and which of them are sections. */
  readonly seen = new Set<string>();
  readonly sections = new Set<string>();

  constructor(private readonly source: string, private readonly baseDir?: string) {}

  fail(path: string, reason: string): never {
    throw new ConfigError(this.source, path, reason);
  }

  private note(path: string, section = false): void {
    if (path === "$") return;
    this.seen.add(settingPath(path));
    if (section) this.sections.add(settingPath(path));
  }

  /** A setting without a default: undefined when absent, else read by `read`. */
  optional<T>(v: unknown, path: string, read: (v: unknown, path: string) => T): T | undefined {
    this.note(path);
    return v === undefined ? undefined : read.call(this, v, path);
  }

  object(v: unknown, path: string): Record<string, unknown> {
    this.note(path, true);
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(path, "must be an object");
    return v as Record<string, unknown>;
  }

  optionalObject(v: unknown, path: string): Record<string, unknown> {
    this.note(path, true);
    return v === undefined ? {} : this.object(v, path);
  }

  array(v: unknown, path: string): unknown[] {
    this.note(path, true);
    if (!Array.isArray(v)) this.fail(path, "must be an array");
    return v;
  }

  /** A file path; a relative one is taken from the cluster file's folder. */
  path(v: unknown, path: string): string {
    const p = this.string(v, path);
    return p.startsWith("/") || this.baseDir === undefined ? p : `${this.baseDir}/${p}`;
  }

  string(v: unknown, path: string, fallback?: string): string {
    this.note(path);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "string" || v.length === 0) this.fail(path, "must be a non-empty string");
    return v;
  }

  bool(v: unknown, path: string, fallback: boolean): boolean {
    this.note(path);
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") this.fail(path, "must be true or false");
    return v;
  }

  int(
    v: unknown,
    path: string,
    fallback: number | undefined,
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number {
    this.note(path);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v)) this.fail(path, "must be an integer");
    if (v < min) this.fail(path, `${v} is below the minimum ${min}`);
    if (v > max) this.fail(path, `${v} is above the maximum ${max}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, options: readonly T[], fallback: T): T {
    this.note(path);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !options.includes(v as T)) {
      this.fail(path, `must be one of ${options.map((o) => `"${o}"`).join(", ")}`);
    }
    return v as T;
  }
}
