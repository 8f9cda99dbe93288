/**
 * The whole cluster's keys, listed through any node (SCAN, KEYS, DBSIZE,
 * RANDOMKEY, FLUSHALL).
 *
 * Each node lists what it holds: this node in-process (listing.ts), the
 * others with ListKeys over gRPC. A key is held by `replication_factor`
 * nodes, so each listing keeps only the keys for which the listing node is
 * the key's read coordinator now (the first of its copies that can serve):
 * every key then comes from one node, whatever the replication factor, and
 * a key whose first copy is down comes from the next copy instead.
 */
import type { KvNode } from "../node.ts";
import { listKeys } from "../listing.ts";
import { KvClient } from "../grpc/kv_client.ts";
import type { NodeSecurity } from "../security/settings.ts";

/**
 * The connection the node's own listing is charged to: every RESP client of
 * this node shares it, as they share this node's gRPC connection to each
 * peer (so at most `limits.max_scans_per_connection` scans of the gateway
 * stay open per node; a further one ends the least recently used).
 */
const GATEWAY_SCANS = "resp-gateway";

/** One page of a node's keys, kept to those it answers for. */
export interface OwnedPage {
  keys: string[];
  /** "" when the node has no more. */
  next: string;
  /** Live keys the node holds in all (copies included). */
  held: number;
}

/** Lists nodes' keys: this one in-process, peers over gRPC. */
export class ClusterKeys {
  #client?: Promise<KvClient>;

  constructor(private readonly node: KvNode, private readonly security: NodeSecurity) {}

  /** The members that can serve now, in a fixed order: a scan's nodes. */
  servingNodes(): string[] {
    return this.node.membership.list.members.map((m) => m.id).filter((id) => this.node.canServe(id)).sort();
  }

  /** One page of node `id`'s keys from `cursor`, kept to the keys it coordinates reads of. */
  async page(id: string, cursor: string, limit: number): Promise<OwnedPage> {
    const page = id === this.node.id
      ? await listKeys(this.node, { cursor, limit, connection: GATEWAY_SCANS })
      : await (await this.#peers()).listKeys(this.#address(id), { cursor, limit });
    const c = this.node.coordinator;
    return {
      keys: page.keys.filter((k) => c.readCoordinatorFor(k) === id),
      next: page.nextCursor,
      held: page.count,
    };
  }

  /** Every key of the cluster, once each, a page at a time. */
  async *all(pageSize: number): AsyncGenerator<string[]> {
    for (const id of this.servingNodes()) {
      let cursor = "";
      do {
        const p = await this.page(id, cursor, pageSize);
        if (p.keys.length > 0) yield p.keys;
        cursor = p.next;
      } while (cursor !== "");
    }
  }

  /**
   * Live keys in the cluster, approximately: the copies the serving nodes
   * hold divided by the replication factor (exact when every key has all
   * its copies and every node serves; off while copies are missing).
   */
  async approximateCount(): Promise<number> {
    const held = await Promise.all(this.servingNodes().map((id) => this.page(id, "", 1).then((p) => p.held)));
    const rf = this.node.config.replication.replicationFactor;
    const copies = Math.min(rf, this.servingNodes().length) || 1;
    return Math.round(held.reduce((a, b) => a + b, 0) / copies);
  }

  close(): void {
    this.#client?.then((c) => c.close()).catch(() => {});
  }

  #address(id: string): string {
    const m = this.node.membership.list.members.find((x) => x.id === id);
    if (!m) throw new Error(`node ${id} is no longer a member`);
    return `${m.host.includes(":") ? `[${m.host}]` : m.host}:${m.port}`;
  }

  /** A non-routing client of the peers, made on first use, with this node's client token and TLS. */
  #peers(): Promise<KvClient> {
    const s = this.security;
    const token = s.clientToken ? new TextDecoder().decode(s.clientToken) : undefined;
    const tls = s.tls ? { ca: s.tls.ca, cert: s.tls.cert, key: s.tls.key } : undefined;
    return this.#client ??= KvClient.connect([this.#address(this.node.id)], {
      route: false,
      timeoutMs: this.node.config.failureDetection.rpcTimeoutMs * 2,
      maxMessageBytes: this.node.config.limits.maxMessageBytes,
      clientToken: token,
      tls,
    });
  }
}
