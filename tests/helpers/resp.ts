/**
 * Helpers of the Redis protocol gateway's tests: a test cluster whose nodes
 * each serve RESP on a free port, redis-cli as a subprocess, and a raw
 * socket that sends exact bytes and reads replies (for byte-exact checks
 * and misbehaving clients the real client libraries cannot imitate).
 */
import { TestCluster, type TestClusterOptions } from "./cluster.ts";
import { freePort } from "./ports.ts";

/** A test cluster with a RESP listener on every node. */
export interface RespCluster {
  cluster: TestCluster;
  /** RESP port of each node, in node order. */
  ports: number[];
}

/** Starts a test cluster whose nodes all have a free `resp_port`. */
export async function startRespCluster(opts: TestClusterOptions = {}): Promise<RespCluster> {
  const count = opts.nodes ?? 3;
  const ports = Array.from({ length: count }, () => freePort());
  const nodeExtra: Record<string, Record<string, unknown>> = {};
  ports.forEach((p, i) => nodeExtra[`node${i + 1}`] = { resp_port: p, ...opts.nodeExtra?.[`node${i + 1}`] });
  const cluster = await TestCluster.start({ ...opts, nodeExtra });
  return { cluster, ports };
}

/** Settings of a cluster that runs conditional writes soon after it starts: a small clock-skew bound. */
export const LWT_LIMITS = {
  limits: { max_clock_skew_ms: 2000 },
  failure_detection: { rpc_timeout_ms: 1000 },
};

/**
 * A RESP cluster ready for conditional writes (SET NX, INCR, GETEX EX...):
 * started with LWT_LIMITS merged under `opts.extra`, then waited out past the
 * latest the vote floor can hold (a started memory node votes once every
 * member told it its highest ballot, at the latest 2 × max_clock_skew_ms
 * after its start: lib/lwt/vote_floor.ts), so tests do not depend on load.
 */
export async function startLwtRespCluster(opts: TestClusterOptions = {}): Promise<RespCluster> {
  const extra = opts.extra ?? {};
  const merged = {
    ...extra,
    limits: { ...LWT_LIMITS.limits, ...extra.limits },
    failure_detection: { ...LWT_LIMITS.failure_detection, ...extra.failure_detection },
  };
  const rc = await startRespCluster({ ...opts, extra: merged });
  const skew = Number(merged.limits.max_clock_skew_ms);
  await new Promise((r) => setTimeout(r, 2 * skew + 300));
  return rc;
}

/** Runs redis-cli against a port; its stdout (trailing newline removed) and exit code. */
export async function redisCli(
  port: number,
  args: string[],
  stdin?: string,
): Promise<{ out: string; code: number; err: string }> {
  const child = new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  const dec = new TextDecoder();
  return { out: dec.decode(r.stdout).replace(/\n$/, ""), code: r.code, err: dec.decode(r.stderr) };
}

/** Runs a redis-py script (Debian python3-redis) with the given ports as arguments; fails unless it prints "python ok". */
export async function runRedisPy(script: string, ports: number[]): Promise<void> {
  const py = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", script, ...ports.map(String)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(py.stdout) + new TextDecoder().decode(py.stderr);
  if (py.code !== 0 || !/python ok/.test(out)) {
    throw new Error(`redis-py script failed (exit ${py.code}): ${out}`);
  }
}

/** A decoded reply: strings for simple/bulk (Uint8Array kept in `bytes` mode), Error for errors. */
export type Decoded = string | number | null | Error | Uint8Array | Decoded[] | Map<Decoded, Decoded>;

/** A raw RESP connection. */
export class RawResp {
  #buf = new Uint8Array(0);
  closed = false;

  private constructor(readonly conn: Deno.TcpConn) {}

  static async connect(port: number, hostname = "127.0.0.1"): Promise<RawResp> {
    return new RawResp(await Deno.connect({ hostname, port }));
  }

  /** Sends exact bytes (a string is sent as latin1: one byte per char). */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? Uint8Array.from(data, (c) => c.charCodeAt(0)) : data;
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  /** Sends a command as a RESP array of bulk strings. */
  command(...args: (string | Uint8Array)[]): Promise<void> {
    return this.send(encodeCommand(args));
  }

  /** Sends a command and reads its reply. */
  async call(...args: (string | Uint8Array)[]): Promise<Decoded> {
    await this.command(...args);
    return await this.reply();
  }

  /** Reads one reply; bulk strings as text unless `bytes`. */
  async reply(bytes = false): Promise<Decoded> {
    while (true) {
      const parsed = parseReply(this.#buf, 0, bytes);
      if (parsed) {
        this.#buf = this.#buf.subarray(parsed.end);
        return parsed.value;
      }
      if (!await this.#fill()) throw new Error("connection closed before a whole reply");
    }
  }

  /** Reads until the server closes the connection (or `maxMs`); the bytes read. Resets count as closes. */
  async readToClose(maxMs: number): Promise<{ bytes: number; closed: boolean }> {
    let bytes = this.#buf.length;
    this.#buf = new Uint8Array(0);
    const timer = setTimeout(() => this.close(), maxMs);
    try {
      const buf = new Uint8Array(1 << 16);
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) return { bytes, closed: true };
        bytes += n;
      }
    } catch {
      return { bytes, closed: !this.closed };
    } finally {
      clearTimeout(timer);
    }
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(1 << 16);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** A command as RESP bytes. */
export function encodeCommand(args: (string | Uint8Array)[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? enc.encode(a) : a;
    parts.push(enc.encode(`$${b.length}\r\n`), b, enc.encode("\r\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

/** Parses one reply at `at`, or undefined when incomplete. */
function parseReply(b: Uint8Array, at: number, bytes: boolean): { value: Decoded; end: number } | undefined {
  const cr = b.indexOf(13, at);
  if (cr < 0 || cr + 1 >= b.length) return undefined;
  const line = new TextDecoder().decode(b.subarray(at + 1, cr));
  const next = cr + 2;
  switch (String.fromCharCode(b[at])) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new Error(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "_":
      return { value: null, end: next };
    case ",":
      return { value: Number(line), end: next };
    case "#":
      return { value: line === "t" ? 1 : 0, end: next };
    case "$": {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (next + len + 2 > b.length) return undefined;
      const v = b.slice(next, next + len);
      return { value: bytes ? v : new TextDecoder().decode(v), end: next + len + 2 };
    }
    case "*":
    case "~":
    case "%": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const count = b[at] === 37 ? 2 * n : n;
      const items: Decoded[] = [];
      let p = next;
      for (let i = 0; i < count; i++) {
        const r = parseReply(b, p, bytes);
        if (!r) return undefined;
        items.push(r.value);
        p = r.end;
      }
      if (b[at] !== 37) return { value: items, end: p };
      const m = new Map<Decoded, Decoded>();
      for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
      return { value: m, end: p };
    }
  }
  throw new Error(`unexpected reply type byte ${b[at]}`);
}
