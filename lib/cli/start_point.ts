/**
 * Where `kvstore server` starts a node from: a cluster file's entry, or (with
 * `--join`) the settings and member list a running node hands out, and then
 * the newer of that list and the one kept in storage.
 *
 * Kept apart from `server_cmd.ts` so the command stays the wiring of a node's
 * parts and its lifecycle, and the rules of which settings and which list a
 * node trusts (the secret never travels; a saved list outlives a restart)
 * read in one place.
 */
import { resolve } from "node:path";
import {
  type ClusterConfig,
  findNode,
  findNodeByPort,
  isNodeId,
  type NodeConfig,
  SECURITY_TIMING,
} from "../config.ts";
import { MEMBERS_META } from "../node.ts";
import type { Storage } from "../storage/mod.ts";
import { isNewer, type MemberList } from "../membership/member_list.ts";
import { configFromSettings, tlsPolicyOf } from "../membership/settings.ts";
import { describeUnknown } from "../config_keys.ts";
import { fetchFromSeeds } from "../membership/join.ts";
import { GrpcPeerTransport } from "../grpc/peer_client.ts";
import { configFrom, intFlag, UsageError } from "./common.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { readFile, type TlsFiles } from "../security/settings.ts";
import { nodeCertProblem } from "../security/node_cert.ts";

/** Where a node starts from: its settings, its own entry, and maybe a member list. */
export interface StartPoint {
  config: ClusterConfig;
  self: NodeConfig;
  /** The member list to start from, when not the cluster file's. */
  members?: MemberList;
  /** What to log once the logger exists (settings a peer sent that this version does not know). */
  warnings?: string[];
}

/** The parsed flags of `kvstore server`. */
export type ServerFlags = Record<string, string | boolean | undefined>;

/** A node of a cluster file. */
export function fileStart(values: ServerFlags, positionals: string[]): StartPoint {
  for (const f of ["port", "redis-host", "redis-port", "tls-ca", "tls-cert", "tls-key"]) {
    if (values[f] !== undefined) {
      throw new UsageError(`--${f} goes with --join (a configured node takes its entry)`);
    }
  }
  const config = configFrom(values.config as string | undefined);
  const self = pickNode(config, positionals, values.id as string | undefined);
  if (values.host) self.bindHost = values.host as string;
  if (values["admin-port"] !== undefined) self.adminPort = adminPortFlag(values["admin-port"] as string);
  if (values["resp-port"] !== undefined) {
    self.respPort = portFlag(values["resp-port"] as string, "--resp-port");
  }
  const secretFile = values["cluster-secret-file"] as string | undefined;
  // The flag replaces the file's secret (the cluster command hands its nodes one made per run).
  if (secretFile !== undefined) config.security = { ...config.security, ...secretSetting(secretFile) };
  return { config, self };
}

/** The security setting `--cluster-secret-file FILE` stands for. */
function secretSetting(file: string): { clusterSecret: undefined; clusterSecretFile: string } {
  return { clusterSecret: undefined, clusterSecretFile: resolve(file) };
}

/** A node that joins: settings and members come from a running node. */
export async function joinerStart(
  values: ServerFlags,
  positionals: string[],
  seeds: string[],
): Promise<StartPoint> {
  const id = values.id as string | undefined;
  if (!id || !isNodeId(id)) {
    throw new UsageError("--join needs --id (letters, digits, _ . -)");
  }
  if (values.port === undefined) throw new UsageError("--join needs --port");
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" with --join`);
  const host = (values.host as string | undefined) ?? "127.0.0.1";
  const self: NodeConfig = {
    id,
    host,
    port: intFlag(values.port as string, "--port", 1),
    bindHost: host,
    // No cluster file entry: the admin listener is off unless asked for.
    adminPort: values["admin-port"] !== undefined ? adminPortFlag(values["admin-port"] as string) : 0,
    respPort: values["resp-port"] !== undefined ? portFlag(values["resp-port"] as string, "--resp-port") : 0,
    redisHost: (values["redis-host"] as string | undefined) ?? "127.0.0.1",
    redisPort: values["redis-port"] !== undefined
      ? intFlag(values["redis-port"] as string, "--redis-port", 1)
      : 6379,
    description: "",
  };
  const tls = joinerTls(values, self);
  const probe = new GrpcPeerTransport({
    self,
    peers: [],
    timeoutMs: 2000,
    maxMessageBytes: 64 << 20,
    security: tls ? { tls: { ...tls.files, requireClientCert: false } } : {},
  });
  // A certificate refused by either side stays refused: say so at once rather than retry for 30 s.
  const untrusted = (e: string) => /certificate|handshake|SSL alert/i.test(e);
  const snap = await fetchFromSeeds(probe, seeds, 30_000, tls ? untrusted : undefined)
    .catch((err) => {
      throw new Error(`${errorMessage(err)}${tls ? TLS_HINT : PLAIN_HINT}`);
    })
    .finally(() => probe.close());
  const source = `cluster settings from ${snap.seed}`;
  const policy = tlsPolicyOf(snap.settingsJson);
  const warnings: string[] = [];
  // A newer peer's setting is not this node's to refuse: it says so and runs without it.
  const config = configFromSettings(snap.settingsJson, snap.list, self, source, (unknown) =>
    warnings.push(
      `${source}: ${
        describeUnknown(unknown).replaceAll("\n", ", ")
      } (ignored; the sender may run another version)`,
    ));
  // The secret never travels: it comes from this node's own --cluster-secret-file or --config.
  const secretFile = values["cluster-secret-file"] as string | undefined;
  if (secretFile !== undefined) config.security = { ...SECURITY_TIMING, ...secretSetting(secretFile) };
  else if (values.config !== undefined) config.security = configFrom(values.config as string).security;
  else config.security = { ...SECURITY_TIMING };
  // TLS: the cluster's policy, this node's own files.
  if (policy && !tls) {
    throw new UsageError(`${source}: the cluster speaks TLS; give --tls-ca, --tls-cert, --tls-key`);
  }
  if (tls) {
    config.security.tls = { caFile: tls.caFile, requireClientCert: policy?.requireClientCert ?? false };
    self.tlsCertFile = tls.certFile;
    self.tlsKeyFile = tls.keyFile;
  } else delete config.security.tls;
  return { config, self, members: snap.list, warnings };
}

const TLS_HINT = " (over TLS: is --tls-ca the cluster's CA, and --tls-cert signed by it?)";
const PLAIN_HINT = " (if the cluster speaks TLS, give --tls-ca, --tls-cert, --tls-key)";

/** A joiner's TLS files from `--tls-ca`, `--tls-cert`, `--tls-key` (all or none), checked. */
function joinerTls(
  values: ServerFlags,
  self: NodeConfig,
): { files: TlsFiles; caFile: string; certFile: string; keyFile: string } | undefined {
  const [ca, cert, key] = ["tls-ca", "tls-cert", "tls-key"].map((f) => values[f] as string | undefined);
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (ca === undefined || cert === undefined || key === undefined) {
    throw new UsageError("--tls-ca, --tls-cert and --tls-key go together");
  }
  const [caFile, certFile, keyFile] = [ca, cert, key].map((f) => resolve(f));
  const files = {
    ca: readFile(caFile, "command line", "--tls-ca"),
    cert: readFile(certFile, "command line", "--tls-cert"),
    key: readFile(keyFile, "command line", "--tls-key"),
  };
  const problem = nodeCertProblem(files, self.id);
  if (problem) throw new UsageError(`--tls-cert ${cert}: ${problem}`);
  return { files, caFile, certFile, keyFile };
}

/** The newer of the given list and the one saved in storage (Redis keeps it across restarts). */
export async function newestList(
  given: MemberList | undefined,
  storage: Pick<Storage, "loadMeta">,
  log: Logger,
): Promise<MemberList | undefined> {
  let saved: MemberList | undefined;
  try {
    const text = await storage.loadMeta?.(MEMBERS_META);
    if (text) saved = JSON.parse(text) as MemberList;
  } catch (err) {
    log.warn("cannot read the saved member list; starting from the cluster file", {
      error: errorMessage(err),
    });
  }
  if (saved) log.info("member list restored from storage", { epoch: saved.epoch });
  if (!saved) return given;
  if (!given) return saved;
  return isNewer(saved, given) ? saved : given;
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
  return portFlag(s, "--admin-port");
}

/** A listener's port flag: 0 (off) to 65535. */
function portFlag(s: string, flag: string): number {
  const port = intFlag(s, flag, 0);
  if (port > 65535) throw new UsageError(`${flag} must be at most 65535, not ${port}`);
  return port;
}
