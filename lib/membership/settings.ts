/**
 * The cluster's settings as a joining node receives them.
 *
 * A node started with `--join` has no cluster file: the node it contacts
 * sends its settings (every section of the loaded configuration except the
 * node list, which the member list replaces, and anything secret). Of
 * `security` only the TLS policy travels (whether TLS is on and whether
 * KeyValueStore clients must present a certificate): the secret and every
 * TLS file are the joiner's own.
 *
 * The sender may run a newer or an older version: a setting the joiner does
 * not know is reported (never refused), one it misses takes its default.
 */
import { type ClusterConfig, defaultSettings, type NodeConfig } from "../config.ts";
import { objectPaths, type UnknownSetting, unknownSettings } from "../config_keys.ts";
import type { MemberList } from "./member_list.ts";

/** Sections never sent to another node. */
const PRIVATE = new Set(["nodes", "source", "security"]);

/** The cluster's TLS policy as it travels to a joiner (no file names). */
export interface TlsPolicy {
  requireClientCert: boolean;
}

/** The settings a joining node adopts, as JSON. */
export function settingsJson(config: ClusterConfig): string {
  const shared: Record<string, unknown> = Object.fromEntries(
    Object.entries(config).filter(([k]) => !PRIVATE.has(k)),
  );
  const tls = config.security.tls;
  if (tls) shared.tlsPolicy = { requireClientCert: tls.requireClientCert } satisfies TlsPolicy;
  return JSON.stringify(shared);
}

/** The TLS policy in a peer's settings JSON (undefined: the cluster runs without TLS, or is older). */
export function tlsPolicyOf(json: string): TlsPolicy | undefined {
  try {
    const p = (JSON.parse(json) as { tlsPolicy?: { requireClientCert?: unknown } }).tlsPolicy;
    return p ? { requireClientCert: p.requireClientCert === true } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A configuration from a peer's settings and member list, with this node
 * added (its Redis address from its own flags). Settings this version does
 * not know are handed to `onUnknown` (to be logged) and otherwise ignored.
 */
export function configFromSettings(
  json: string,
  list: MemberList,
  self: NodeConfig,
  source: string,
  onUnknown: (unknown: UnknownSetting[]) => void = () => {},
): ClusterConfig {
  let settings: Partial<ClusterConfig>;
  try {
    settings = JSON.parse(json);
  } catch (err) {
    throw new Error(`${source}: the cluster's settings are not valid JSON: ${(err as Error).message}`);
  }
  for (
    const key of ["replication", "failureDetection", "consistentHashing", "storage", "recovery", "limits"]
  ) {
    if (typeof (settings as Record<string, unknown>)[key] !== "object") {
      throw new Error(`${source}: the cluster's settings lack "${key}" (is that node too old to be joined?)`);
    }
  }
  const nodes: NodeConfig[] = list.members.map((m) =>
    m.id === self.id ? self : {
      id: m.id,
      host: m.host,
      port: m.port,
      bindHost: m.host,
      adminPort: m.adminPort ?? 0,
      respPort: m.respPort ?? 0,
      redisHost: "",
      redisPort: 0,
      description: "",
    }
  );
  if (!nodes.some((n) => n.id === self.id)) nodes.push(self);
  delete (settings as Record<string, unknown>).tlsPolicy;
  return { ...withDefaults(settings, onUnknown), nodes, source } as ClusterConfig;
}

/** The peer's settings over this version's defaults; the keys the defaults lack are reported. */
function withDefaults(
  settings: Record<string, unknown>,
  onUnknown: (unknown: UnknownSetting[]) => void,
): Record<string, unknown> {
  const defaults: Record<string, unknown> = Object.fromEntries(
    Object.entries(defaultSettings()).filter(([k]) => !PRIVATE.has(k)),
  );
  const unknown = unknownSettings(settings, objectPaths(defaults));
  if (unknown.length > 0) onUnknown(unknown);
  const out = { ...defaults };
  for (const [k, v] of Object.entries(settings)) {
    const d = defaults[k];
    const section = typeof d === "object" && d !== null && typeof v === "object" && v !== null;
    out[k] = section ? { ...d, ...v } : v;
  }
  return out;
}
