/**
 * What the status page shows, as JSON.
 *
 * `selfStatus` is what one node says of itself (status, storage, keys, ops/s
 * and p99 of the last minute, memory); `clusterStatus` asks the admin
 * listener of every member of the live member list (not the cluster file's
 * nodes: a node that joined is there, a removed one is gone) for its own,
 * with a short timeout, and merges that with how this node sees each peer
 * (heartbeats), the ring drawn as arcs, the membership epoch and any range
 * movement under way (what `client status` shows). A peer whose admin
 * listener does not answer is shown as down, with this node's view of it.
 *
 * Each node also reports its last five minutes (ops/s and p99 in five-second
 * slots, for the sparklines), its events list and its refused calls; the
 * cluster view merges the events of every node that answered, newest first,
 * each with the node that saw it, and sums the refusals.
 */
import type { KvNode } from "../node.ts";
import type { NodeMetrics } from "./node_metrics.ts";
import type { Member, MemberState } from "../membership/member_list.ts";
import { type Movement, movementOf } from "../membership/movement.ts";
import { EVENTS_KEPT, type NodeEvent } from "./events.ts";
import { CODE_NAMES } from "./node_metrics.ts";

/** The gRPC codes a call is refused with (bad input, no right, over a limit), counted on the page. */
const REFUSAL_CODES = ["INVALID_ARGUMENT", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED"];

/** A node's last five minutes, oldest first: one point per five seconds. */
export interface History {
  slot_ms: number;
  ops_per_s: number[];
  p99_ms: number[];
}

/** An event with the node that saw it. */
export interface SeenEvent extends NodeEvent {
  seen_by: string;
}

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
  /** Records received in membership changes (ranges this node gained). */
  moved_records: number;
  hints_held: number;
  replication_queue: number;
  /** Why it does not serve (recovering, its clock off to its peers...); absent while it does. */
  not_serving_reason?: string;
  history: History;
  events: NodeEvent[];
  /** Refused calls since start, by reason (a gRPC code, or a refusal before any handler). */
  refused: Record<string, number>;
  /** Open connections to its Redis protocol gateway (0 without one). */
  resp_connections: number;
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
  /** Its place in a membership change: NORMAL, JOINING or LEAVING. */
  member: MemberState;
  ring_share: number;
  /** Its clock minus the responder's, in ms, and the bound on that (heartbeat round trips). */
  clock_offset_ms?: number;
  clock_uncertainty_ms?: number;
}

/** The whole page's data. */
export interface ClusterStatus {
  cluster: string;
  responder: string;
  time: string;
  replication_factor: number;
  /** The epoch of the responder's member list, and the claimant as it sees it. */
  epoch: number;
  claimant: string;
  /** The membership change under way, if any. */
  moving?: Movement;
  nodes: NodeView[];
  ring: { from: number; to: number; node: string }[];
  /** Every answering node's events, newest first (at most EVENTS_KEPT). */
  events: SeenEvent[];
  /** Refused calls of every answering node, summed by reason. */
  refused: Record<string, number>;
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
    moved_records: node.mover.movedRecords,
    hints_held: node.hints.size(),
    replication_queue: node.replicator.pendingTotal(),
    not_serving_reason: node.notServingReason(),
    history: historyOf(metrics),
    events: node.events.list(),
    refused: refusalsOf(node, metrics),
    resp_connections: metrics.respConnections?.() ?? 0,
  };
}

function historyOf(metrics: NodeMetrics): History {
  const points = metrics.history.series(0.99);
  return {
    slot_ms: points.length > 1 ? points[1].atMs - points[0].atMs : 0,
    ops_per_s: points.map((p) => Math.round(p.perSecond * 10) / 10),
    p99_ms: points.map((p) => Math.round(p.quantile * 1e4) / 10),
  };
}

function refusalsOf(node: KvNode, metrics: NodeMetrics): Record<string, number> {
  const out = node.events.refusals();
  for (const code of REFUSAL_CODES) {
    const n = metrics.callsByCode[CODE_NAMES.indexOf(code as typeof CODE_NAMES[number])];
    if (n > 0) out[code] = n;
  }
  return out;
}

/** The events of every node that answered, newest first, at most EVENTS_KEPT. */
function mergeEvents(nodes: readonly NodeView[]): SeenEvent[] {
  const all = nodes.flatMap((n) => (n.events ?? []).map((e) => ({ ...e, seen_by: n.id })));
  return all.sort((a, b) => b.atMs - a.atMs).slice(0, EVENTS_KEPT);
}

function sumRefusals(nodes: readonly NodeView[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) for (const [k, v] of Object.entries(n.refused ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Where a member's admin listener is reached (undefined when it has none). */
export function adminUrl(m: { host: string; adminPort?: number }): string | undefined {
  return m.adminPort && m.adminPort > 0
    ? `http://${m.host.includes(":") ? `[${m.host}]` : m.host}:${m.adminPort}`
    : undefined;
}

/** This node's and every member's status, with the ring and the change under way. */
export async function clusterStatus(
  node: KvNode,
  metrics: NodeMetrics,
  opts: { timeoutMs: number },
): Promise<ClusterStatus> {
  const shares = node.ring.shares();
  const views = node.members();
  const seen = new Map(views.map((m) => [m.id, m.status as string]));
  const offsets = new Map(views.map((m) => [m.id, m.clockOffset]));
  const list = node.membership.list;
  const nodes = await Promise.all(list.members.map(async (m): Promise<NodeView> => {
    const self = m.id === node.id
      ? selfStatus(node, metrics)
      : await fetchSelf(withAdminPort(node, m), opts.timeoutMs);
    return {
      ...self,
      id: m.id,
      address: `${m.host}:${m.port}`,
      reachable: self !== undefined,
      seen_as: seen.get(m.id) ?? "FAILED",
      member: m.state,
      ring_share: shares.get(m.id) ?? 0,
      clock_offset_ms: offsets.get(m.id)?.offsetMs,
      clock_uncertainty_ms: offsets.get(m.id)?.uncertaintyMs,
      state: self?.status === "ACTIVE" ? "up" : self?.status === "JOINING" ? "joining" : "down",
    };
  }));
  const rf = node.config.replication.replicationFactor;
  return {
    cluster: node.config.clusterName,
    responder: node.id,
    time: new Date().toISOString(),
    replication_factor: rf,
    epoch: list.epoch,
    claimant: node.membership.claimant() ?? "",
    moving: movementOf(list, node.ring, rf, node.membership.streamed()),
    nodes: nodes.map(({ events: _, ...n }) => n),
    ring: node.ring.arcs(),
    events: mergeEvents(nodes),
    refused: sumRefusals(nodes),
  };
}

/**
 * A member with its admin port: the member list's, else (a list saved
 * before members carried it) the cluster file's entry of that id.
 */
function withAdminPort(node: KvNode, m: Member): Member {
  if (m.adminPort) return m;
  const entry = node.config.nodes.find((n) => n.id === m.id && n.host === m.host && n.port === m.port);
  return { ...m, adminPort: entry?.adminPort };
}

async function fetchSelf(m: Member, timeoutMs: number): Promise<SelfStatus | undefined> {
  const base = adminUrl(m);
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
