/**
 * Consistent hashing with virtual nodes: where every key lives.
 *
 * The placement rule is the one existing clients reproduce, so it must not
 * change: hash(s) is the first four bytes of MD5(UTF-8 of s), big-endian;
 * node `id` owns the points hash(`${id}:${i}`) for i in 0..virtualNodes-1;
 * a key belongs to the first point at or after hash(key), wrapping past
 * 2^32-1; its replicas are the next distinct nodes clockwise. The ring holds
 * every configured node whatever its health: callers skip the ones that are
 * down, so a node gets exactly its keys back when it returns.
 */
import { createHash } from "node:crypto";

/** The 32-bit ring position of a string. */
export function ringHash(s: string): number {
  return createHash("md5").update(s, "utf8").digest().readUInt32BE(0);
}

/** A consistent-hash ring over a fixed set of node ids. */
export class HashRing {
  /** Point positions, ascending. */
  readonly #points: Uint32Array;
  /** Index into `nodeIds` of the node owning each point. */
  readonly #owners: Uint16Array;
  readonly nodeIds: readonly string[];

  constructor(nodeIds: readonly string[], virtualNodes: number) {
    if (new Set(nodeIds).size !== nodeIds.length) throw new RangeError("node ids must be unique");
    this.nodeIds = [...nodeIds];
    const points: { pos: number; owner: number }[] = [];
    nodeIds.forEach((id, owner) => {
      for (let i = 0; i < virtualNodes; i++) points.push({ pos: ringHash(`${id}:${i}`), owner });
    });
    // Equal positions (an MD5 prefix collision) are ordered by node id so
    // every process builds the same ring.
    points.sort((a, b) => a.pos - b.pos || (nodeIds[a.owner] < nodeIds[b.owner] ? -1 : 1));
    this.#points = Uint32Array.from(points, (p) => p.pos);
    this.#owners = Uint16Array.from(points, (p) => p.owner);
  }

  /** The node owning a key: the first point at or after its hash. */
  owner(key: string): string {
    return this.nodeIds[this.#owners[this.#firstPointAtOrAfter(ringHash(key))]];
  }

  /**
   * Distinct nodes clockwise from the key's position, owner first: the key's
   * preference list. `accept` filters nodes (for example to live ones); at
   * most `count` are returned.
   */
  preferenceList(key: string, count: number, accept?: (id: string) => boolean): string[] {
    return this.walk(ringHash(key), count, accept);
  }

  /** {@link preferenceList} for a position already hashed. */
  walk(position: number, count: number, accept?: (id: string) => boolean): string[] {
    const out: string[] = [];
    const seen = new Uint8Array(this.nodeIds.length);
    const n = this.#points.length;
    const start = this.#firstPointAtOrAfter(position);
    for (let step = 0; step < n && out.length < count; step++) {
      const owner = this.#owners[(start + step) % n];
      if (seen[owner]) continue;
      seen[owner] = 1;
      const id = this.nodeIds[owner];
      if (!accept || accept(id)) out.push(id);
      if (seen.every((s) => s === 1)) break;
    }
    return out;
  }

  /** The fraction of the 2^32 positions each node owns as first node. */
  shares(): Map<string, number> {
    const shares = new Map(this.nodeIds.map((id) => [id, 0]));
    const n = this.#points.length;
    for (let i = 0; i < n; i++) {
      const prev = i === 0 ? this.#points[n - 1] - 2 ** 32 : this.#points[i - 1];
      const id = this.nodeIds[this.#owners[i]];
      shares.set(id, shares.get(id)! + (this.#points[i] - prev) / 2 ** 32);
    }
    return shares;
  }

  /** Index of the first point at or after a position, wrapping to 0. */
  #firstPointAtOrAfter(position: number): number {
    let lo = 0;
    let hi = this.#points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid] < position) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.#points.length ? 0 : lo;
  }
}
