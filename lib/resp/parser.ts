/**
 * The request side of RESP: bytes read from a socket, parsed into commands.
 *
 * Clients send commands as arrays of bulk strings (`*2\r\n$3\r\nGET\r\n...`)
 * or, typed by hand and by redis-benchmark's PING, as inline lines
 * (`PING\r\n`). Reads split commands anywhere, so the parser keeps what it
 * could not finish and starts again from that command's first byte on the
 * next read. A bulk announced longer than the limit is refused from its
 * header alone, before any of it is read (Redis's `proto-max-bulk-len`);
 * every protocol error is fatal to the connection, as in Redis, since the
 * stream can no longer be followed.
 */

/** A protocol error: the connection is answered `-ERR Protocol error: ...` and closed. */
export class ProtocolError extends Error {
  constructor(detail: string) {
    super(`Protocol error: ${detail}`);
    this.name = "ProtocolError";
  }
}

/** Limits of {@link RequestParser}. */
export interface ParserLimits {
  /** Longest bulk string accepted. */
  maxBulkBytes: number;
  /** Bytes an unfinished command may hold before the connection is refused. */
  maxQueryBytes: number;
}

/** Redis's limits on what a request line can announce. */
const MAX_MULTIBULK = 1024 * 1024;
const MAX_INLINE = 64 * 1024;
const CR = 13;
const LF = 10;
const EMPTY = new Uint8Array(0);

/** An incremental parser of one connection's requests. */
export class RequestParser {
  #buf: Uint8Array = EMPTY;
  #pos = 0;

  constructor(private readonly limits: ParserLimits) {}

  /** Bytes held of a command not yet complete. */
  get pending(): number {
    return this.#buf.length - this.#pos;
  }

  /**
   * Adds bytes read and returns every command now complete, in order.
   * The arguments are views of the read buffers: copy one to keep it.
   */
  push(chunk: Uint8Array): Uint8Array[][] {
    if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
    } else {
      const rest = this.#buf.subarray(this.#pos);
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      this.#buf = joined;
    }
    this.#pos = 0;
    const out: Uint8Array[][] = [];
    while (this.#pos < this.#buf.length) {
      const cmd = this.#buf[this.#pos] === 42 /* '*' */ ? this.#multibulk() : this.#inline();
      if (cmd === undefined) break;
      if (cmd.length > 0) out.push(cmd);
    }
    if (this.pending > this.limits.maxQueryBytes) {
      throw new ProtocolError(`query buffer of ${this.pending} bytes exceeds the limit`);
    }
    return out;
  }

  /** The index of the next "\r\n" from `from`, or -1. */
  #lineEnd(from: number, max: number): number {
    const at = this.#buf.indexOf(CR, from);
    if (at < 0 || at + 1 >= this.#buf.length) {
      if (this.#buf.length - from > max) throw new ProtocolError("too big count line");
      return -1;
    }
    return at;
  }

  #number(from: number, to: number): number {
    let n = 0;
    let neg = false;
    let i = from;
    if (this.#buf[i] === 45 /* '-' */) neg = true, i++;
    if (i === to) return NaN;
    for (; i < to; i++) {
      const d = this.#buf[i] - 48;
      if (d < 0 || d > 9) return NaN;
      n = n * 10 + d;
    }
    return neg ? -n : n;
  }

  #multibulk(): Uint8Array[] | undefined {
    const b = this.#buf;
    let p = this.#pos + 1;
    const end = this.#lineEnd(p, 32);
    if (end < 0) return undefined;
    const count = this.#number(p, end);
    if (Number.isNaN(count) || count > MAX_MULTIBULK) throw new ProtocolError("invalid multibulk length");
    p = end + 2;
    if (count <= 0) {
      this.#pos = p;
      return [];
    }
    // Grown as arguments arrive: a huge announced count trickled in costs no up-front array per read.
    const args: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      if (p >= b.length) return undefined;
      if (b[p] !== 36 /* '$' */) {
        throw new ProtocolError(`expected '$', got '${String.fromCharCode(b[p])}'`);
      }
      const lineEnd = this.#lineEnd(p + 1, 32);
      if (lineEnd < 0) return undefined;
      const len = this.#number(p + 1, lineEnd);
      if (Number.isNaN(len) || len < 0 || len > this.limits.maxBulkBytes) {
        throw new ProtocolError("invalid bulk length");
      }
      const start = lineEnd + 2;
      if (start + len + 2 > b.length) return undefined;
      args.push(b.subarray(start, start + len));
      p = start + len + 2;
    }
    this.#pos = p;
    return args;
  }

  #inline(): Uint8Array[] | undefined {
    const b = this.#buf;
    const nl = b.indexOf(LF, this.#pos);
    if (nl < 0) {
      if (b.length - this.#pos > MAX_INLINE) throw new ProtocolError("too big inline request");
      return undefined;
    }
    const lineEnd = nl > this.#pos && b[nl - 1] === CR ? nl - 1 : nl;
    const line = new TextDecoder("latin1").decode(b.subarray(this.#pos, lineEnd));
    this.#pos = nl + 1;
    return splitInline(line).map((s) => Uint8Array.from(s, (c) => c.charCodeAt(0)));
  }
}

const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", b: "\b", a: "\x07" };

/**
 * Splits an inline command as Redis's sdssplitargs does: spaces separate
 * arguments, "double quotes" take \n \r \t \b \a \xHH escapes, 'single
 * quotes' take \'. Works on latin1 text so every byte maps to one char.
 */
export function splitInline(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (true) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) return out;
    let cur = "";
    const quote = line[i] === '"' || line[i] === "'" ? line[i++] : "";
    for (;;) {
      if (i >= line.length) {
        if (quote) throw new ProtocolError("unbalanced quotes in request");
        break;
      }
      const c = line[i];
      if (!quote && /\s/.test(c)) break;
      if (quote && c === quote) {
        i++;
        if (i < line.length && !/\s/.test(line[i])) throw new ProtocolError("unbalanced quotes in request");
        break;
      }
      if (quote === '"' && c === "\\" && i + 1 < line.length) {
        const e = line[i + 1];
        const hex = e === "x" ? line.slice(i + 2, i + 4) : "";
        if (/^[0-9a-fA-F]{2}$/.test(hex)) {
          cur += String.fromCharCode(parseInt(hex, 16));
          i += 4;
        } else {
          cur += ESCAPES[e] ?? e;
          i += 2;
        }
        continue;
      }
      if (quote === "'" && c === "\\" && line[i + 1] === "'") {
        cur += "'";
        i += 2;
        continue;
      }
      cur += c;
      i++;
    }
    out.push(cur);
  }
}
