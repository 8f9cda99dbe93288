/**
 * `kvstore server`: runs one node until SIGINT or SIGTERM.
 *
 * Started as users start it today: `server 8001` runs the node whose entry
 * has port 8001, `server 8001 node1` names it too, no argument runs the
 * first node of the file. It opens storage, serves gRPC, starts the
 * background loops and recovery, and shuts down cleanly on a signal.
 */
import {
  type ClusterConfig,
  findNode,
  findNodeByPort,
  type NodeConfig,
  type StorageEngine,
} from "../config.ts";
import { openStorage } from "../storage/mod.ts";
import { KvNode } from "../node.ts";
import { GrpcPeerTransport } from "../grpc/peer_client.ts";
import { serveNode } from "../grpc/server.ts";
import { configFrom, EXIT, intFlag, loggerFrom, numberFlag, parseFlags, UsageError } from "./common.ts";
import { errorMessage } from "../errors.ts";
import { NodeMetrics } from "../admin/node_metrics.ts";
import { instrumentStorage, instrumentTransport } from "../admin/instrument.ts";
import { startAdmin } from "../admin/server.ts";
import { runtimeWarning } from "../runtime_check.ts";
import type { Logger } from "../log.ts";
import { loadNodeSecurity, type NodeSecurity } from "../security/settings.ts";

const HELP = `kvstore server [PORT] [NODE_ID] [flags]

Runs one node of the cluster described by the config file.

  PORT                 run the node whose entry has this port (default: the first node)
  NODE_ID              run this node (must agree with PORT if both are given)
  --id ID              same as NODE_ID
  --config FILE        cluster file (default: the embedded config/cluster.json)
  --host ADDR          address to bind (default: the node's bind_host, else its host)
  --storage ENGINE     memory or redis (default: storage.engine of the file, else memory)
  --log-level LEVEL    debug (one line per operation), info, warn, error (default info)
  --log-format FORMAT  text or json
  --admin-port PORT    admin HTTP listener: /metrics, /healthz, /readyz, status page at /
                       (default: the node's admin_port, else its gRPC port + 1000; 0 = off)
  --clock-offset-ms N  debug: run this node's write clock N ms ahead (negative: behind) of the
                       system clock, to test clock skew (default 0)
  -h, --help           this help`;

/** Bound of `--clock-offset-ms`: a debug skew, not a way to move a node's clock by days. */
const MAX_CLOCK_OFFSET_MS = 3_600_000;

/** Runs the server mode; resolves with the exit code after shutdown. */
export async function serverCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    id: { type: "string" },
    config: { type: "string" },
    host: { type: "string" },
    storage: { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    "admin-port": { type: "string" },
    "clock-offset-ms": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const config = configFrom(values.config);
  const self = pickNode(config, positionals, values.id);
  if (values.host) self.bindHost = values.host;
  if (values["admin-port"] !== undefined) self.adminPort = adminPortFlag(values["admin-port"]);
  const engine = pickEngine(values.storage, config);
  const log = loggerFrom(config, values, self.id);
  const warning = runtimeWarning(Deno.version.deno);
  if (warning) log.warn(warning);
  const offsetFlag = values["clock-offset-ms"];
  const clockOffsetMs = offsetFlag === undefined
    ? 0
    : numberFlag(offsetFlag, "--clock-offset-ms", -MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS);

  const metrics = new NodeMetrics();
  let storage;
  try {
    storage = instrumentStorage(await openStorage(config, self, log, engine), metrics);
  } catch (err) {
    log.error("cannot open storage", { engine, error: errorMessage(err) });
    return EXIT.ERROR;
  }
  const security = loadNodeSecurity(config, self);
  const transport = instrumentTransport(
    new GrpcPeerTransport({
      self,
      peers: config.nodes.filter((n) => n.id !== self.id),
      timeoutMs: config.failureDetection.rpcTimeoutMs,
      maxMessageBytes: config.limits.maxMessageBytes,
      maxBatchItems: config.limits.maxBatchItems,
      security,
    }),
    metrics,
  );
  const wall = clockOffsetMs === 0 ? undefined : () => Date.now() + clockOffsetMs;
  if (wall) log.warn("debug setting: clock offset", { clock_offset_ms: clockOffsetMs });
  const node = new KvNode({ config, self, storage, transport, log, wall });
  metrics.watch(node);
  let served, admin;
  try {
    served = await serveNode(node, { metrics, security });
    admin = startAdmin({
      node,
      metrics,
      health: served.health,
      hostname: self.bindHost,
      port: self.adminPort,
    });
  } catch (err) {
    log.error(errorMessage(err));
    await node.stop();
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
  });
  warnIfOpen(log, security);
  const stopped = waitForSignal();
  node.start().catch((err) => log.error("recovery failed", { error: errorMessage(err) }));
  const signal = await stopped;
  log.info(`received ${signal}; shutting down`);
  await served.drain(2000);
  await node.stop();
  log.info("stopped");
  // The gRPC server is not shut down (tryShutdown, forceShutdown, unbind): each
  // sends GOAWAY frames, and a Deno gRPC client that receives one on an open
  // channel can crash inside nghttp2 (denoland/deno#36788), so stopping one
  // node would take its peers down. Exiting lets the OS close the connections.
  Deno.exit(EXIT.OK);
}

/** Says at startup when anyone who reaches the port can act as a node. */
function warnIfOpen(log: Logger, security: NodeSecurity): void {
  if (security.secret || security.tls) return;
  log.warn(
    "node traffic is unauthenticated: anyone who reaches this port can replicate, forward and delete " +
      "as a node; set security.cluster_secret_file (and security.tls) in the cluster file",
  );
}

function pickNode(config: ClusterConfig, positionals: string[], idFlag?: string): NodeConfig {
  if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
  const [portArg, idArg] = positionals;
  const id = idFlag ?? idArg;
  if (portArg !== undefined && !/^\d+$/.test(portArg)) {
    throw new UsageError(`PORT must be a number, not "${portArg}"`);
  }
  const byId = id !== undefined ? findNode(config, id) : undefined;
  const byPort = portArg !== undefined ? findNodeByPort(config, Number(portArg)) : undefined;
  if (byId && byPort && byId.id !== byPort.id) {
    throw new UsageError(`port ${portArg} belongs to ${byPort.id}, not ${byId.id}`);
  }
  return { ...(byId ?? byPort ?? config.nodes[0]) };
}

function adminPortFlag(s: string): number {
  const port = intFlag(s, "--admin-port", 0);
  if (port > 65535) throw new UsageError(`--admin-port must be at most 65535, not ${port}`);
  return port;
}

function pickEngine(flag: string | undefined, config: ClusterConfig): StorageEngine {
  if (flag === undefined) return config.storage.engine;
  if (flag !== "memory" && flag !== "redis") {
    throw new UsageError(`--storage must be memory or redis, not "${flag}"`);
  }
  return flag;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => resolve(sig));
  });
}
