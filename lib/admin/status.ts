/**
 * What the status page shows, as JSON.
 *
 * `selfStatus` is what one node says of itself (status, storage, keys, ops/s
 * and p99 of the last minute, memory); `clusterStatus` asks every peer's
 * admin listener for its own, with a short timeout, and merges that with
 * how this node sees each peer (heartbeats) and the ring drawn as arcs. A
 * peer whose admin listener does not answer is shown as down, with this
 * node's view of it.
 */
import type { KvNode } from "../node.ts";
import type { NodeMetrics } from "./node_metrics.ts";
import type { NodeConfig } from "../config.ts";

/** One node as it reports itself. */
export interface SelfStatus {
  id: string;
  status: "ACTIVE" | "JOINING" | "SUSPECTED";
  storage_up: boolean;
  engine: string;
  keys: number;
  ops_per_s: number;
  p99_ms: number;
  rss_bytes: number;
  recovering: boolean;
  recovered_records: number;
  hints_held: number;
  replication_queue: number;
}

/** One node on the status page. */
export interface NodeView extends Partial<SelfStatus> {
  id: string;
  address: string;
  /** Whether its admin listener answered just now. */
  reachable: boolean;
  /** "up" when it answered and is ACTIVE, "joining", or "down". */
  state: "up" | "joining" | "down";
  /** The status the answering node's failure detector gives it. */
  seen_as: string;
  ring_share: number;
}

/** The whole page's data. */
export interface ClusterStatus {
  cluster: string;
  responder: string;
  time: string;
  replication_factor: number;
  nodes: NodeView[];
  ring: { from: number; to: number; node: string }[];
}

/** What this node says of itself. */
export function selfStatus(node: KvNode, metrics: NodeMetrics): SelfStatus {
  const me = node.members().find((m) => m.id === node.id)!;
  const rec = node.recoveryProgress();
  return {
    id: node.id,
    status: me.status as SelfStatus["status"],
    storage_up: node.storage.healthy(),
    engine: node.storage.engine,
    keys: me.keysCount,
    ops_per_s: Math.round(metrics.recent.rate() * 10) / 10,
    p99_ms: metrics.recent.quantile(0.99) * 1000,
    rss_bytes: Deno.memoryUsage().rss,
    recovering: rec.running,
    recovered_records: rec.records,
    hints_held: node.hints.size(),
    replication_queue: node.replicator.pendingTotal(),
  };
}

/** Where a node's admin listener is reached (undefined when it has none). */
export function adminUrl(n: NodeConfig): string | undefined {
  return n.adminPort > 0
    ? `http://${n.host.includes(":") ? `[${n.host}]` : n.host}:${n.adminPort}`
    : undefined;
}

/** This node's and every peer's status, with the ring. */
export async function clusterStatus(
  node: KvNode,
  metrics: NodeMetrics,
  opts: { timeoutMs: number },
): Promise<ClusterStatus> {
  const shares = node.ring.shares();
  const seen = new Map(node.members().map((m) => [m.id, m.status as string]));
  const nodes = await Promise.all(node.config.nodes.map(async (n): Promise<NodeView> => {
    const self = n.id === node.id ? selfStatus(node, metrics) : await fetchSelf(n, opts.timeoutMs);
    const view: NodeView = {
      ...self,
      id: n.id,
      address: `${n.host}:${n.port}`,
      reachable: self !== undefined,
      seen_as: seen.get(n.id) ?? "FAILED",
      ring_share: shares.get(n.id) ?? 0,
      state: "down",
    };
    view.state = !self
      ? "down"
      : self.status === "ACTIVE"
      ? "up"
      : self.status === "JOINING"
      ? "joining"
      : "down";
    return view;
  }));
  return {
    cluster: node.config.clusterName,
    responder: node.id,
    time: new Date().toISOString(),
    replication_factor: node.config.replication.replicationFactor,
    nodes,
    ring: node.ring.arcs(),
  };
}

async function fetchSelf(n: NodeConfig, timeoutMs: number): Promise<SelfStatus | undefined> {
  const base = adminUrl(n);
  if (!base) return undefined;
  try {
    const res = await fetch(`${base}/status/self.json`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json() as SelfStatus;
  } catch {
    return undefined;
  }
}
