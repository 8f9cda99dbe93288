/**
 * The reply side of RESP: typed replies, and their bytes in RESP2 or RESP3.
 *
 * Handlers return {@link Reply} values; the connection encodes them in the
 * protocol its client chose with HELLO. The two protocols differ only in a
 * few types (RESP2 has no null, map, set, double or boolean, and spells them
 * as `$-1`, flat arrays, bulk strings and integers), so the difference lives
 * here and nowhere else.
 */

/** One reply to a command. */
export type Reply =
  | { k: "status"; s: string }
  /** An error; `s` starts with its code (ERR, NOAUTH, WRONGPASS...). */
  | { k: "err"; s: string }
  /** An integer; a bigint where the value may pass 2^53 (counters). */
  | { k: "int"; n: number | bigint }
  /** A bulk string; null is Redis's nil. */
  | { k: "bulk"; v: Uint8Array | string | null }
  | { k: "arr"; v: Reply[] | null }
  | { k: "map"; v: [Reply, Reply][] }
  | { k: "set"; v: Reply[] }
  | { k: "dbl"; n: number }
  | { k: "bool"; b: boolean };

export const OK: Reply = { k: "status", s: "OK" };
export const NIL: Reply = { k: "bulk", v: null };
export const status = (s: string): Reply => ({ k: "status", s });
export const err = (s: string): Reply => ({ k: "err", s: s.startsWith("-") ? s.slice(1) : `ERR ${s}` });
/** An error whose code is not ERR: `coded("NOAUTH", "Authentication required.")`. */
export const coded = (code: string, s: string): Reply => ({ k: "err", s: `${code} ${s}` });
export const int = (n: number | bigint): Reply => ({ k: "int", n });
export const bulk = (v: Uint8Array | string | null): Reply => ({ k: "bulk", v });
export const arr = (v: Reply[] | null): Reply => ({ k: "arr", v });
export const bulks = (vs: readonly (Uint8Array | string | null)[]): Reply => arr(vs.map(bulk));
export const map = (v: [string, Reply][]): Reply => ({ k: "map", v: v.map(([a, b]) => [bulk(a), b]) });

const enc = new TextEncoder();
const CRLF = enc.encode("\r\n");
const SMALL_INTS = Array.from({ length: 1024 }, (_, i) => enc.encode(String(i)));
/** Bytes written for every reply of a pipelined run, encoded once. */
const PREFIXES: Record<string, Uint8Array> = Object.fromEntries(
  ["*", "$", "%", "~"].map((p) => [p, enc.encode(p)]),
);
const OK_BYTES = enc.encode("+OK\r\n");
const NULL2 = enc.encode("$-1\r\n");
const NULL3 = enc.encode("_\r\n");

/** Replies encoded into one buffer per write. */
export class ReplyWriter {
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(public proto: 2 | 3 = 2) {}

  get size(): number {
    return this.#size;
  }

  /** Everything written so far, as one buffer, and starts afresh. */
  take(): Uint8Array {
    const parts = this.#parts;
    this.#parts = [];
    const size = this.#size;
    this.#size = 0;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) out.set(p, at), at += p.length;
    return out;
  }

  #raw(b: Uint8Array): void {
    this.#parts.push(b);
    this.#size += b.length;
  }

  #line(prefix: string, n: number): void {
    this.#raw(PREFIXES[prefix] ?? enc.encode(prefix));
    this.#raw(n >= 0 && n < SMALL_INTS.length ? SMALL_INTS[n] : enc.encode(String(n)));
    this.#raw(CRLF);
  }

  write(r: Reply): void {
    switch (r.k) {
      case "status":
        return this.#raw(r.s === "OK" ? OK_BYTES : enc.encode(`+${r.s}\r\n`));
      case "err":
        return this.#raw(enc.encode(`-${r.s.replace(/[\r\n]+/g, " ")}\r\n`));
      case "int":
        return this.#raw(enc.encode(`:${r.n}\r\n`));
      case "bulk":
        return this.bulk(r.v);
      case "arr":
        if (r.v === null) return this.#raw(enc.encode(this.proto === 3 ? "_\r\n" : "*-1\r\n"));
        this.#line("*", r.v.length);
        for (const x of r.v) this.write(x);
        return;
      case "map":
        this.#line(this.proto === 3 ? "%" : "*", this.proto === 3 ? r.v.length : 2 * r.v.length);
        for (const [a, b] of r.v) this.write(a), this.write(b);
        return;
      case "set":
        this.#line(this.proto === 3 ? "~" : "*", r.v.length);
        for (const x of r.v) this.write(x);
        return;
      case "dbl":
        return this.proto === 3 ? this.#raw(enc.encode(`,${r.n}\r\n`)) : this.bulk(String(r.n));
      case "bool":
        return this.#raw(
          enc.encode(this.proto === 3 ? (r.b ? "#t\r\n" : "#f\r\n") : (r.b ? ":1\r\n" : ":0\r\n")),
        );
    }
  }

  /** A bulk string (nil for null) without building a Reply: the GET path. */
  bulk(v: Uint8Array | string | null): void {
    if (v === null) return this.#raw(this.proto === 3 ? NULL3 : NULL2);
    const bytes = typeof v === "string" ? enc.encode(v) : v;
    this.#line("$", bytes.length);
    this.#raw(bytes);
    this.#raw(CRLF);
  }
}
