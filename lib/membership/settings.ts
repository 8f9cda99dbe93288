/**
 * The cluster's settings as a joining node receives them.
 *
 * A node started with `--join` has no cluster file: the node it contacts
 * sends its settings (every section of the loaded configuration except the
 * node list, which the member list replaces, and anything secret).
 */
import type { ClusterConfig, NodeConfig } from "../config.ts";
import type { MemberList } from "./member_list.ts";

/** Sections never sent to another node. */
const PRIVATE = new Set(["nodes", "source", "security"]);

/** The settings a joining node adopts, as JSON. */
export function settingsJson(config: ClusterConfig): string {
  return JSON.stringify(Object.fromEntries(Object.entries(config).filter(([k]) => !PRIVATE.has(k))));
}

/**
 * A configuration from a peer's settings and member list, with this node
 * added (its Redis address from its own flags).
 */
export function configFromSettings(
  json: string,
  list: MemberList,
  self: NodeConfig,
  source: string,
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
      redisHost: "",
      redisPort: 0,
      description: "",
    }
  );
  if (!nodes.some((n) => n.id === self.id)) nodes.push(self);
  return { ...settings, nodes, source } as ClusterConfig;
}
