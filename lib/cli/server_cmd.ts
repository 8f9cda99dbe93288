/**
 * `kvstore server`: runs one node until SIGINT or SIGTERM.
 *
 * Started as users start it today: `server 8001` runs the node whose entry
 * has port 8001, `server 8001 node1` names it too, no argument runs the
 * first node of the file. It opens storage, serves gRPC, starts the
 * background loops and recovery, and shuts down cleanly on a signal.
 * `--join ADDR` starts a node that is in no cluster file: it takes the
 * settings and member list from the node at ADDR and joins (see
 * `membership/join.ts`; which settings and member list a node starts from
 * is `start_point.ts`). A node removed from the cluster stops by itself.
 */
import type { ClusterConfig, StorageEngine } from "../config.ts";
import { openStorage } from "../storage/mod.ts";
import { KvNode } from "../node.ts";
import type { MemberList } from "../membership/member_list.ts";
import { joinUntilAccepted } from "../membership/join.ts";
import { GrpcPeerTransport } from "../grpc/peer_client.ts";
import { lwtOperationMs } from "../lwt/mod.ts";
import { serveNode } from "../grpc/server.ts";
import { watchStalls } from "../stall_watch.ts";
import { trimMallocPeriodically } from "../malloc_trim.ts";
import { shutdownServer } from "../grpc/shutdown.ts";
import { EXIT, loggerFrom, numberFlag, parseAddress, parseFlags, UsageError } from "./common.ts";
import { fileStart, joinerStart, newestList } from "./start_point.ts";
import { errorMessage } from "../errors.ts";
import { NodeMetrics } from "../admin/node_metrics.ts";
import { instrumentStorage, instrumentTransport } from "../admin/instrument.ts";
import { startAdmin } from "../admin/server.ts";
import { runtimeWarning } from "../runtime_check.ts";
import { loadNodeSecurity } from "../security/settings.ts";
import { announceMode } from "../security/protected_mode.ts";
import { startRefusal } from "../security/startup_check.ts";
import { type RespServer, serveResp } from "../resp/server.ts";

const HELP = `kvstore server [PORT] [NODE_ID] [flags]

Runs one node of the cluster described by the config file.

  PORT                 run the node whose entry has this port (default: the first node)
  NODE_ID              run this node (must agree with PORT if both are given)
  --id ID              same as NODE_ID
  --config FILE        cluster file (default: the embedded config/cluster.json)
  --host ADDR          address to bind (default: the node's bind_host, else its host);
                       with --join, also the address peers reach this node at
  --join ADDR[,ADDR]   join a running cluster through one of these nodes (host:port);
                       this node needs no entry in a cluster file
  --port PORT          with --join: the port to listen on
  --redis-host HOST    with --join: this node's Redis (default 127.0.0.1)
  --redis-port PORT    with --join: this node's Redis port (default 6379)
  --cluster-secret-file FILE
                       the cluster secret, in place of the file's (with --join: else --config
                       FILE's security section)
  --tls-ca FILE        with --join, for a cluster with security.tls: the cluster's CA
  --tls-cert FILE      this node's certificate, signed by that CA, common name = its id
                       (main.ts certs --out DIR --nodes ID --hosts HOST makes one)
  --tls-key FILE       its private key
  --insecure           with neither a secret nor TLS, take node traffic from any address
                       (security.insecure; default: protected mode, loopback only)
  --storage ENGINE     memory or redis (default: storage.engine of the file, else memory)
  --log-level LEVEL    debug (one line per operation), info, warn, error (default info)
  --log-format FORMAT  text or json
  --admin-port PORT    admin HTTP listener: /metrics, /healthz, /readyz, status page at /
                       (default: the node's admin_port, else its gRPC port + 1000; 0 = off;
                       with --join: 0)
  --resp-port PORT     Redis protocol gateway (RESP: redis-cli, Redis clients) on this port
                       (default: the node's resp_port, else off; 0 = off)
  --clock-offset-ms N  debug: run this node's write clock N ms ahead (negative: behind) of the
                       system clock, to test clock skew (default 0)
  -h, --help           this help`;

/** Bound of `--clock-offset-ms`: a debug skew, not a way to move a node's clock by days. */
const MAX_CLOCK_OFFSET_MS = 3_600_000;

/** How long a stopping node lets the calls in flight finish before it stops. */
const DRAIN_MS = 2000;
/** How long the gRPC server's graceful shutdown may take before it is forced. */
const SHUTDOWN_MS = 2000;
/** How long a decommissioned node keeps handing its hints on before it exits. */
const LEAVE_HANDOFF_MS = 30_000;

/** Runs the server mode; resolves with the exit code after shutdown. */
export async function serverCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    id: { type: "string" },
    config: { type: "string" },
    host: { type: "string" },
    join: { type: "string" },
    port: { type: "string" },
    "redis-host": { type: "string" },
    "redis-port": { type: "string" },
    "cluster-secret-file": { type: "string" },
    "tls-ca": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    storage: { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    "admin-port": { type: "string" },
    "resp-port": { type: "string" },
    "clock-offset-ms": { type: "string" },
    insecure: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const seeds = values.join?.split(",").filter((a) => a !== "").map(parseAddress);
  let start;
  try {
    start = seeds ? await joinerStart(values, positionals, seeds) : fileStart(values, positionals);
  } catch (err) {
    if (err instanceof UsageError || !seeds) throw err;
    console.error(`error: cannot join the cluster: ${errorMessage(err)}`);
    return EXIT.ERROR;
  }
  const { config, self } = start;
  if (values.insecure) config.security = { ...config.security, insecure: true };
  const engine = pickEngine(values.storage, config);
  const log = loggerFrom(config, values, self.id);
  const warning = runtimeWarning(Deno.version.deno);
  if (warning) log.warn(warning);
  for (const w of start.warnings ?? []) log.warn(w);
  const offsetFlag = values["clock-offset-ms"];
  const clockOffsetMs = offsetFlag === undefined
    ? 0
    : numberFlag(offsetFlag, "--clock-offset-ms", -MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS);

  const security = loadNodeSecurity(config, self);
  const refusal = startRefusal(security, self, config.nodes);
  if (refusal) {
    log.error(`not starting: ${refusal}`);
    return EXIT.ERROR;
  }
  const metrics = new NodeMetrics();
  let storage;
  try {
    storage = instrumentStorage(await openStorage(config, self, log, engine), metrics);
  } catch (err) {
    log.error("cannot open storage", { engine, error: errorMessage(err) });
    return EXIT.ERROR;
  }
  const grpcPeers = new GrpcPeerTransport({
    self,
    peers: [],
    timeoutMs: config.failureDetection.rpcTimeoutMs,
    maxMessageBytes: config.limits.maxMessageBytes,
    maxBatchItems: config.limits.maxBatchItems,
    security,
    keepalive: {
      timeMs: config.failureDetection.keepaliveTimeMs,
      timeoutMs: config.failureDetection.keepaliveTimeoutMs,
    },
  });
  const transport = instrumentTransport(grpcPeers, metrics);
  const members = await newestList(start.members, storage, log);
  if (members && !members.members.some((m) => m.id === self.id) && !seeds) {
    log.error(`node ${self.id} was removed from the cluster (epoch ${members.epoch}); not starting`);
    await storage.close();
    return EXIT.ERROR;
  }
  const wall = clockOffsetMs === 0 ? undefined : () => Date.now() + clockOffsetMs;
  if (wall) log.warn("debug setting: clock offset", { clock_offset_ms: clockOffsetMs });
  let removed: (list: MemberList) => void = () => {};
  const node = new KvNode({
    config,
    self,
    storage,
    transport,
    membershipTransport: grpcPeers,
    log,
    wall,
    members,
    onRemoved: (l) => removed(l),
    lwtTransport: grpcPeers.lwt(lwtOperationMs(config)),
  });
  metrics.watch(node);
  // A token refused for its time carries the peer's clock: the offset is known even then.
  grpcPeers.onReceiverTime = (peer, receiverMs, rttMs) =>
    node.clockWatch.noteReceiverTime(peer, receiverMs, rttMs);
  let served, admin, resp: RespServer | undefined;
  try {
    served = await serveNode(node, { metrics, security });
    resp = self.respPort > 0
      ? serveResp({ node, security, hostname: self.bindHost, port: self.respPort, counters: metrics.resp })
      : undefined;
    admin = startAdmin({
      node,
      metrics,
      health: served.health,
      hostname: self.bindHost,
      port: self.adminPort,
      clientToken: security.clientToken,
    });
    if (resp) metrics.respConnections = resp.connections;
  } catch (err) {
    log.error(errorMessage(err));
    await node.stop();
    grpcPeers.close();
    return EXIT.ERROR;
  }
  log.info(`node ${self.id} listening on ${self.bindHost}:${served.port}`, {
    storage: engine,
    nodes: config.nodes.length,
    replication_factor: config.replication.replicationFactor,
    write_quorum: config.replication.writeQuorum,
    read_quorum: config.replication.readQuorum,
    config: config.source,
    admin: admin ? `http://${self.bindHost}:${admin.port}/` : "off",
    resp: resp ? `redis://${self.bindHost}:${resp.port}` : "off",
  });
  announceMode(log, security);
  watchStalls(log, { thresholdMs: config.logging.stallThresholdMs });
  trimMallocPeriodically(log);
  const stopped = new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(`received ${sig}`));
    }
    removed = (l) => resolve(`this node was removed from the cluster at epoch ${l.epoch}`);
  });
  node.start().catch((err) => log.error("recovery failed", { error: errorMessage(err) }));
  if (seeds && !node.membership.list.members.some((m) => m.id === self.id)) {
    try {
      await joinUntilAccepted({
        self,
        seeds,
        transport: grpcPeers,
        membership: node.membership,
        log,
        timeoutMs: 600_000,
      });
    } catch (err) {
      log.error("cannot join the cluster", { error: errorMessage(err) });
      await served.drain(2000);
      await node.stop();
      Deno.exit(EXIT.ERROR);
    }
  }
  const why = await stopped;
  log.info(`${why}; shutting down`);
  // New calls are refused (UNAVAILABLE) from here on; the calls in flight get
  // DRAIN_MS, then the node flushes its replication queues to its peers.
  resp?.close();
  await served.drain(DRAIN_MS);
  if (!node.membership.list.members.some((m) => m.id === self.id)) {
    // Decommissioned: the hints this node holds for others go before it does.
    const left = await node.handOffBeforeLeaving(LEAVE_HANDOFF_MS);
    if (left.hints + left.queued > 0) {
      log.warn("leaving with writes not handed on; anti-entropy will repair", left);
    }
  }
  await node.stop();
  grpcPeers.close();
  const [outcome] = await Promise.all([shutdownServer(served.server, SHUTDOWN_MS), admin?.shutdown()]);
  log.info("stopped", { grpc_shutdown: outcome });
  // Everything is closed; exit now rather than wait for libraries' stray timers.
  Deno.exit(EXIT.OK);
}

function pickEngine(flag: string | undefined, config: ClusterConfig): StorageEngine {
  if (flag === undefined) return config.storage.engine;
  if (flag !== "memory" && flag !== "redis") {
    throw new UsageError(`--storage must be memory or redis, not "${flag}"`);
  }
  return flag;
}
