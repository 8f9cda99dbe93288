/**
 * Random and adversarial request bodies for the RPC fuzz test, generated
 * from the proto's own message types (a field added to the proto is fuzzed
 * without touching this file).
 *
 * Everything comes from one seeded PRNG, so a failure is replayed by running
 * the test again with the printed seed in KVSTORE_FUZZ_SEED. Messages are
 * encoded here, not by protobufjs, so they can carry what a real encoder
 * never writes: invalid UTF-8 in string fields, negative and 64-bit numbers
 * in any varint, out-of-range enums, fields repeated thousands of times,
 * unknown fields and wrong wire types.
 */
import protobuf from "protobufjs";
import { isNodeId } from "../../lib/config.ts";

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same messages. */
export class Rng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // Four bytes per draw: bodies near the message limit are megabytes.
    for (let i = 0; i < n; i += 4) {
      const x = this.next() * 4294967296;
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

/** The seed to fuzz with: KVSTORE_FUZZ_SEED when set (a replay), else a fresh one. */
export function fuzzSeed(): number {
  const given = Deno.env.get("KVSTORE_FUZZ_SEED");
  if (given !== undefined && given !== "") {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new Error(`KVSTORE_FUZZ_SEED must be an integer in 0..4294967295, got "${given}"`);
    }
    return n;
  }
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** A seed of its own for one part of the run (a pass, an RPC), so parts replay independently. */
export function subSeed(seed: number, ...names: string[]): number {
  let h = seed >>> 0 ^ 0x811c9dc5;
  for (const ch of names.join("/")) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** What the generator may name: the cluster's real things, so some messages reach deep code. */
export interface FuzzContext {
  nodeIds: string[];
  ports: number[];
  /** Keys written before the fuzz: only read requests name them (writes would change them legitimately). */
  readKeys: string[];
  /** A key holding a large value: duplicated in a read batch, it multiplies the answer. */
  bigKey: string;
  maxMessageBytes: number;
}

/** A field on the wire: a varint (wire type 0) or length-delimited bytes or a nested message (2). */
type Wire = { n: number; t: 0; v: bigint } | { n: number; t: 2; v: Uint8Array | Wire[] };

/** Message types whose keys may name the pre-fuzz data (reads only). */
const READ_TYPES = new Set(["GetRequest", "MultiGetRequest", "ForwardGetRequest", "ReadRecordsRequest"]);

const enc = new TextEncoder();

/** Strings a careless handler trips on: empty, control characters, unicode, path-like, numeric. */
const ODD_STRINGS = [
  "",
  " ",
  "\0",
  "a\0b",
  "é",
  "日本語",
  "🙂".repeat(50),
  "\u202e",
  "../../etc/passwd",
  "-1",
  "NaN",
];

/** Bytes that are not UTF-8 (lone continuation, overlong, surrogate, truncated). */
const BAD_UTF8 = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80, 0x80, 0x61]];

/** Random messages of one proto type, within a byte budget. */
export class MessageFuzzer {
  constructor(readonly rng: Rng, readonly ctx: FuzzContext) {}

  /**
   * A body for `type`: mostly small, sometimes near the message limit, and
   * rarely above it (the node must refuse it, not fall over).
   */
  body(type: protobuf.Type): Uint8Array {
    const r = this.rng.next();
    const limit = this.ctx.maxMessageBytes;
    const budget = r < 0.85 ? 4096 : r < 0.97 ? Math.floor(limit * 0.9) : Math.floor(limit * 1.1);
    return encode(this.message(type, { left: budget }, 0));
  }

  /** Random bytes as a body (most fail to parse; some parse into odd messages). */
  rawBody(): Uint8Array {
    const n = this.rng.pick([0, 1, 2, 7, 64, 512, 4096]);
    const fill = this.rng.int(4);
    if (fill === 0) return new Uint8Array(n);
    if (fill === 1) return new Uint8Array(n).fill(0xff);
    return this.rng.bytes(n);
  }

  message(type: protobuf.Type, budget: { left: number }, depth: number): Wire[] {
    const out: Wire[] = [];
    for (const field of type.fieldsArray) {
      if (budget.left <= 0 || !this.rng.chance(0.75)) continue;
      const count = field.repeated ? this.repeatCount(budget) : this.rng.chance(0.05) ? 2 : 1;
      const one = this.field(type, field, budget, depth);
      if (!one) continue;
      // Many copies of one element: duplicates are the adversarial case for batches.
      const distinct = count <= 3 || this.rng.chance(0.3);
      for (let i = 0; i < count && budget.left > 0; i++) {
        const w = i === 0 || !distinct ? one : this.field(type, field, budget, depth);
        if (!w) break;
        out.push(w);
        budget.left -= wireSize(w);
      }
    }
    if (this.rng.chance(0.05)) out.push({ n: 99 + this.rng.int(1000), t: 0, v: BigInt(this.rng.int(1e9)) });
    if (this.rng.chance(0.03) && type.fieldsArray.length > 0) {
      // A known field with the wrong wire type.
      const f = this.rng.pick(type.fieldsArray);
      out.push(isVarint(f) ? { n: f.id, t: 2, v: this.rng.bytes(3) } : { n: f.id, t: 0, v: 7n });
    }
    return out;
  }

  repeatCount(budget: { left: number }): number {
    const n = this.rng.pick([0, 1, 2, 3, 10, 100, 1000, 10_001, 20_000]);
    return budget.left < 4096 ? Math.min(n, this.rng.pick([0, 1, 2, 3, 10])) : n;
  }

  field(parent: protobuf.Type, f: protobuf.Field, budget: { left: number }, depth: number): Wire | undefined {
    const t = f.resolvedType;
    if (t instanceof protobuf.Type) {
      if (depth >= 3) return undefined;
      return { n: f.id, t: 2, v: this.message(t, budget, depth + 1) };
    }
    if (t instanceof protobuf.Enum) {
      const values = Object.values(t.values);
      return {
        n: f.id,
        t: 0,
        v: BigInt(this.rng.chance(0.8) ? this.rng.pick(values) : this.rng.pick([-1, 99, 2 ** 31 - 1])),
      };
    }
    if (f.type === "string" || f.type === "bytes") {
      return { n: f.id, t: 2, v: this.text(parent.name, f, budget) };
    }
    return { n: f.id, t: 0, v: this.number(f) };
  }

  /** A varint by the field's meaning (epochs, ports, rounds, limits) or its type. */
  number(f: protobuf.Field): bigint {
    const name = f.name;
    const rng = this.rng;
    const common = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 32 + 1, 2 ** 53, -(2 ** 53)];
    if (f.type === "bool") return BigInt(rng.pick([0, 1, 1, 2, 2 ** 40]));
    if (/epoch/.test(name)) return BigInt(rng.pick([0, 1, 2, 3, 1e9, -1, 2 ** 53 + 1, ...common]));
    if (/port/.test(name)) return BigInt(rng.pick([...this.ctx.ports, 0, 1, 65535, 65536, 70000, -1]));
    if (/round/.test(name)) return BigInt(rng.pick([0, 1, 1e9, 2 ** 62, -1, ...common]));
    if (/bucket_bits/.test(name)) return BigInt(rng.pick([0, 1, 4, 16, 24, 31, 32, 33, 64, -1]));
    if (/timestamp/.test(name)) {
      const now = Date.now() * 1000;
      return BigInt(rng.pick([0, now, now + 3.6e9 * 1e3, 1, -1, 2 ** 63 - 1, ...common]));
    }
    if (f.type === "int64" && rng.chance(0.2)) return (1n << 63n) - 1n - BigInt(rng.int(3));
    return BigInt(rng.chance(0.7) ? rng.pick(common) : rng.int(100_000));
  }

  /** Bytes for a string or bytes field, by the field's meaning. */
  text(parentName: string, f: protobuf.Field, budget: { left: number }): Uint8Array {
    const rng = this.rng;
    if (rng.chance(0.04) && budget.left > 64 * 1024) {
      // Huge: up to the whole budget (so near or above the message limit).
      const n = rng.pick([1025, 64 * 1024, (1 << 20) + 1, Math.floor(budget.left * rng.next())]);
      return rng.chance(0.5)
        ? new Uint8Array(Math.min(n, budget.left)).fill(0x61)
        : rng.bytes(Math.min(n, budget.left));
    }
    if (rng.chance(0.1)) return Uint8Array.from(rng.pick(BAD_UTF8));
    if (rng.chance(0.15)) return enc.encode(rng.pick(ODD_STRINGS));
    const name = f.name;
    if (/node|claimant|hint_for|primary|responder|receiver/.test(name)) return enc.encode(this.nodeId());
    if (/^keys?$/.test(name)) return enc.encode(this.key(parentName));
    if (/cursor/.test(name)) return enc.encode(this.cursor());
    if (/host/.test(name)) {
      return enc.encode(rng.pick(["127.0.0.1", "localhost", "::1", "0.0.0.0", "evil.invalid"]));
    }
    if (name === "value") return rng.bytes(rng.pick([0, 1, 16, 1024]));
    return rng.bytes(rng.int(32));
  }

  nodeId(): string {
    return this.rng.chance(0.6) ? this.rng.pick(this.ctx.nodeIds) : this.rng.pick([
      "node9",
      "evil",
      "",
      "x".repeat(300),
      "node1 ",
      "NODE1",
      "operator",
      "a/b",
      "node1\0",
    ]);
  }

  /** A key: in read requests often a pre-fuzz key, the big one many times over; else a key of the fuzzer's own. */
  key(parentName: string): string {
    if (READ_TYPES.has(parentName) && this.rng.chance(0.6)) {
      return this.rng.chance(0.5) ? this.ctx.bigKey : this.rng.pick(this.ctx.readKeys);
    }
    return `fz-${this.rng.int(50)}`;
  }

  cursor(): string {
    const rng = this.rng;
    return rng.pick([
      "",
      "0",
      "1",
      String(rng.int(100)),
      String(rng.int(1e6)),
      "-1",
      "999999999999",
      "1e308",
      btoa(String.fromCharCode(...rng.bytes(16))),
      "not-a-cursor",
    ]);
  }
}

/** Whether a field is encoded as a varint (numbers, bools, enums). */
function isVarint(f: protobuf.Field): boolean {
  return !(f.resolvedType instanceof protobuf.Type) && f.type !== "string" && f.type !== "bytes";
}

/** Approximate encoded size of one field, for the budget. */
function wireSize(w: Wire): number {
  if (w.t === 0) return 11;
  if (w.v instanceof Uint8Array) return w.v.length + 6;
  return w.v.reduce((sum, x) => sum + wireSize(x), 6);
}

/** Encodes fields in the order given (a repeated field stays repeated; a duplicated singular field: last wins). */
export function encode(fields: Wire[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.length;
  };
  for (const w of fields) {
    push(varint(BigInt((w.n << 3) | w.t)));
    if (w.t === 0) {
      push(varint(w.v));
    } else {
      const body = w.v instanceof Uint8Array ? w.v : encode(w.v);
      push(varint(BigInt(body.length)));
      push(body);
    }
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A varint; negatives as 64-bit two's complement (ten bytes), as protobuf writes int32/int64. */
export function varint(v: bigint): Uint8Array {
  let x = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x > 0n ? b | 0x80 : b);
  } while (x > 0n);
  return Uint8Array.from(out);
}

/**
 * Whether a request, as the node would decode it, is a membership change an
 * authenticated peer may legitimately make: a join with a valid address, or
 * a removal of a real member. The authenticated pass does not send these
 * (they would change the member list on purpose), only malformed ones.
 */
export function legitimateChange(
  method: string,
  decoded: Record<string, unknown>,
  members: string[],
): boolean {
  const id = String(decoded.node_id ?? "");
  const port = Number(decoded.port ?? 0);
  const validAddress = isNodeId(id) && String(decoded.host ?? "") !== "" && port >= 1 && port <= 65535;
  if (method === "JoinCluster") return validAddress;
  if (method !== "ChangeMembership") return false;
  const kind = decoded.kind;
  // CHANGE_STREAMED only completes a change under way, and none is (joins and removals are not sent).
  if (kind === "CHANGE_STREAMED" || kind === 1) return false;
  if (kind === "CHANGE_JOIN" || kind === 2) return validAddress;
  // Any other kind, known or not, reads as a removal (the proto's default).
  return members.includes(id);
}

/** A short account of a body as the node decodes it, for a finding: sizes, counts and distinct items. */
export function describeBody(type: protobuf.Type, body: Uint8Array): string {
  let decoded: Record<string, unknown>;
  try {
    decoded = type.toObject(type.decode(body), { longs: Number, enums: String });
  } catch {
    return `${body.length} bytes that do not parse as ${type.name}`;
  }
  const text = `${type.name} of ${body.length} bytes ${summary(decoded)}`;
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}

function summary(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === "string") return v.length > 24 ? `"${v.slice(0, 24)}..."(${v.length})` : JSON.stringify(v);
  if (Array.isArray(v)) {
    const counts = new Map<string, number>();
    for (const item of v.map(summary)) counts.set(item, (counts.get(item) ?? 0) + 1);
    const [top, n] = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a), ["", 0]);
    return `[${v.length} items, ${counts.size} distinct${n > 1 ? `, ${top} x${n}` : ""}]`;
  }
  if (v && typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${k}: ${summary(x)}`).join(", ")}}`;
  }
  return String(v);
}
