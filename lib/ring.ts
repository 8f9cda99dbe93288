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
/**
 * The 32-bit ring position of a string: the first four bytes of its MD5,
 * big-endian.
 *
 * MD5 is computed here in plain JavaScript: every request hashes its key a
 * few times, and for keys of a few dozen bytes this is several times faster
 * than node:crypto (whose per-call setup dominates). tests/ring_test.ts
 * checks it against node:crypto.
 */
export function ringHash(s: string): number {
  const len = utf8Into(s);
  // Padding: 0x80, zeros, then the length in bits (64-bit little-endian).
  const blocks = ((len + 8) >>> 6) + 1;
  const end = blocks * 64;
  md5Buf[len] = 0x80;
  md5Buf.fill(0, len + 1, end - 8);
  const bitsLow = (len * 8) >>> 0;
  const bitsHigh = Math.floor(len / 0x2000_0000);
  for (let i = 0; i < 4; i++) {
    md5Buf[end - 8 + i] = (bitsLow >>> (8 * i)) & 0xff;
    md5Buf[end - 4 + i] = (bitsHigh >>> (8 * i)) & 0xff;
  }
  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  const m = md5Words;
  for (let off = 0; off < end; off += 64) {
    for (let j = 0; j < 16; j++) {
      const o = off + 4 * j;
      m[j] = md5Buf[o] | (md5Buf[o + 1] << 8) | (md5Buf[o + 2] << 16) | (md5Buf[o + 3] << 24);
    }
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      f = (f + a + MD5_K[i] + m[g]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << MD5_R[i]) | (f >>> (32 - MD5_R[i])))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  // The digest starts with a0's bytes, least significant first.
  return (((a0 & 0xff) << 24) | (((a0 >>> 8) & 0xff) << 16) | (((a0 >>> 16) & 0xff) << 8) | (a0 >>> 24)) >>>
    0;
}

const MD5_R = Uint8Array.from([
  ...[7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22],
  ...[5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20],
  ...[4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23],
  ...[6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21],
]);
const MD5_K = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const md5Words = new Int32Array(16);
let md5Buf = new Uint8Array(256);
const utf8 = new TextEncoder();

/** Writes the UTF-8 of `s` at the start of `md5Buf` (grown as needed, with room for padding); its length. */
function utf8Into(s: string): number {
  const n = s.length;
  let ascii = n + 72 <= md5Buf.length;
  for (let i = 0; ascii && i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) ascii = false;
    else md5Buf[i] = c;
  }
  if (ascii) return n;
  const bytes = utf8.encode(s);
  if (bytes.length + 72 > md5Buf.length) md5Buf = new Uint8Array(2 * (bytes.length + 72));
  md5Buf.set(bytes);
  return bytes.length;
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
    const nodes = this.nodeIds.length;
    // A bit per node seen (a typed array when there are more than 32 nodes).
    let seenBits = 0;
    const seen = nodes > 32 ? new Uint8Array(nodes) : undefined;
    let distinct = 0;
    const n = this.#points.length;
    const start = this.#firstPointAtOrAfter(position);
    for (let step = 0; step < n && out.length < count && distinct < nodes; step++) {
      const owner = this.#owners[(start + step) % n];
      if (seen) {
        if (seen[owner]) continue;
        seen[owner] = 1;
      } else {
        if (seenBits & (1 << owner)) continue;
        seenBits |= 1 << owner;
      }
      distinct++;
      const id = this.nodeIds[owner];
      if (!accept || accept(id)) out.push(id);
    }
    return out;
  }

  /** The ring's point positions, ascending (a copy). */
  positions(): Uint32Array {
    return this.#points.slice();
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

  /**
   * The ring as arcs of positions, in order, each with the node owning the
   * keys that hash into it (consecutive arcs of one node merged). Positions
   * are fractions of 2^32; the arc that wraps past 0 is split in two.
   */
  arcs(): { from: number; to: number; node: string }[] {
    const out: { from: number; to: number; node: string }[] = [];
    const n = this.#points.length;
    const add = (from: number, to: number, node: string) => {
      const last = out.at(-1);
      if (last && last.node === node && last.to === from) last.to = to;
      else if (to > from) out.push({ from, to, node });
    };
    const first = this.nodeIds[this.#owners[0]];
    add(0, this.#points[0] / 2 ** 32, first);
    for (let i = 1; i < n; i++) {
      add(this.#points[i - 1] / 2 ** 32, this.#points[i] / 2 ** 32, this.nodeIds[this.#owners[i]]);
    }
    add(this.#points[n - 1] / 2 ** 32, 1, first);
    return out;
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
