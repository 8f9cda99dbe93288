/**
 * Starting and stopping a local redis-server process, for `cluster --redis`
 * and for tests.
 *
 * Every setting is passed on the command line (they override a config file
 * if one is given), so nothing from the working directory is needed at run
 * time; `config/redis-node*.conf` are the documented equivalent for users who
 * run redis-server themselves. The server is ready when it answers INFO with
 * its own process id (not some other server already on the port) and has
 * finished loading its data.
 */

import { sleep } from "./async.ts";

/** Append-only file fsync policy; see config/redis-node1.conf. */
export type AppendFsync = "always" | "everysec" | "no";

/** Options of {@link startRedisServer}. */
export interface StartRedisOptions {
  port: number;
  /** Data directory (RDB and AOF files); created if missing. */
  dir: string;
  /** A redis.conf to start from; the options below override it. */
  configFile?: string;
  /**
   * Persistence (default true): AOF with `appendFsync` plus RDB save points,
   * as in config/redis-node1.conf. False runs a throwaway server that writes
   * nothing to disk. With `configFile`, an unset value leaves the file's.
   */
  appendOnly?: boolean;
  /** Default "everysec" (up to ~1 s of writes lost on a crash). */
  appendFsync?: AppendFsync;
  /** Where the server logs; by default only kept in memory for error messages. */
  logFile?: string;
  /** How long to wait for the server to be ready (default 10000). */
  readyTimeoutMs?: number;
}

/** A running redis-server started by {@link startRedisServer}. */
export interface RedisProcess {
  readonly pid: number;
  readonly port: number;
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Sends `signal` (default SIGTERM: Redis saves and exits) and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<void>;
  /** Kills the process outright, as a crash would, and waits for the exit. */
  kill9(): Promise<void>;
  /** The last lines the server wrote to stdout and stderr. */
  output(): string;
}

const INSTALL_HINT = "install it: apt-get install -y redis-server";
const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** SIGTERM makes Redis write an RDB before exiting; give it this long. */
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_TAIL_CHARS = 4000;
/** The RDB save points of config/redis-node*.conf. */
const SAVE_POINTS = ["900", "1", "300", "10", "60", "10000"];

/** Path of the redis-server executable, from PATH or the usual places. */
export function redisServerPath(): string | undefined {
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch {
    // No env permission: fall back to the usual places.
  }
  const dirs = [...path.split(":").filter(Boolean), "/usr/bin", "/usr/local/bin", "/usr/sbin"];
  for (const dir of dirs) {
    const candidate = `${dir}/redis-server`;
    try {
      const st = Deno.statSync(candidate);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Command-line arguments of redis-server for these options. */
export function redisServerArgs(opts: StartRedisOptions): string[] {
  const args = opts.configFile ? [opts.configFile] : [];
  args.push("--port", String(opts.port), "--dir", opts.dir, "--bind", "127.0.0.1", "--daemonize", "no");
  if (opts.logFile) args.push("--logfile", opts.logFile);
  const persist = opts.appendOnly ?? (opts.configFile ? undefined : true);
  if (persist === true) {
    args.push("--appendonly", "yes", "--save", ...SAVE_POINTS);
  } else if (persist === false) {
    args.push("--appendonly", "no", "--save", "");
  }
  const fsync = opts.appendFsync ?? (opts.configFile ? undefined : "everysec");
  if (fsync) args.push("--appendfsync", fsync);
  if (!opts.configFile) args.push("--maxmemory-policy", "noeviction", "--hash-max-listpack-value", "4096");
  return args;
}

/**
 * Starts redis-server and waits until it is ready.
 * @throws Error naming the install command if redis-server is missing, or
 *   with the server's last output if it exits or is not ready in time.
 */
export async function startRedisServer(opts: StartRedisOptions): Promise<RedisProcess> {
  const bin = redisServerPath();
  if (!bin) throw new Error(`redis-server not found on PATH or in /usr/bin, /usr/local/bin; ${INSTALL_HINT}`);
  await Deno.mkdir(opts.dir, { recursive: true });
  const child = new Deno.Command(bin, {
    args: redisServerArgs(opts),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail = new OutputTail(OUTPUT_TAIL_CHARS);
  const drained = Promise.all([tail.drain(child.stdout), tail.drain(child.stderr)]);
  let done: Deno.CommandStatus | undefined;
  const exited = child.status.then(async (status) => {
    done = status;
    await drained;
    return status;
  });
  const proc = makeProcess(child, opts.port, exited, () => done !== undefined, tail);
  try {
    await waitReady(opts.port, child.pid, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, () => done);
  } catch (err) {
    await proc.kill9();
    const out = tail.text() + (opts.logFile ? await fileTail(opts.logFile) : "");
    throw new Error(`redis-server on port ${opts.port}: ${(err as Error).message}\n${out.trimEnd()}`);
  }
  return proc;
}

function makeProcess(
  child: Deno.ChildProcess,
  port: number,
  exited: Promise<Deno.CommandStatus>,
  hasExited: () => boolean,
  tail: OutputTail,
): RedisProcess {
  const signal = (sig: Deno.Signal) => {
    if (hasExited()) return;
    try {
      child.kill(sig);
    } catch {
      // Exited between the check and the kill.
    }
  };
  return {
    pid: child.pid,
    port,
    exited,
    async stop(sig: Deno.Signal = "SIGTERM") {
      signal(sig);
      if (await settlesWithin(exited, STOP_TIMEOUT_MS)) return;
      signal("SIGKILL");
      await exited;
    },
    async kill9() {
      signal("SIGKILL");
      await exited;
    },
    output: () => tail.text(),
  };
}

/** Polls INFO until this very process answers with its data loaded. */
async function waitReady(
  port: number,
  pid: number,
  timeoutMs: number,
  exitStatus: () => Deno.CommandStatus | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    const status = exitStatus();
    if (status) throw new Error(`exited with code ${status.code} before it was ready`);
    const info = await probeInfo(port, 1000);
    if (info === undefined) {
      last = "no answer";
    } else if (info.startsWith("-")) {
      last = info.trim();
    } else {
      const owner = /process_id:(\d+)/.exec(info)?.[1];
      const loading = /loading:(\d)/.exec(info)?.[1];
      if (owner === String(pid) && loading === "0") return;
      last = owner === String(pid)
        ? "still loading its data"
        : `port ${port} is answered by process ${owner}`;
    }
    await sleep(50);
  }
  throw new Error(`not ready within ${timeoutMs} ms (${last})`);
}

/** One INFO over a fresh connection: the reply text, or undefined if none. */
async function probeInfo(port: number, timeoutMs: number): Promise<string | undefined> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("INFO\r\n"));
    return await readReply(conn);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Reads one RESP reply: a status or error line, or a whole bulk string. */
async function readReply(conn: Deno.Conn): Promise<string | undefined> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return undefined;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
    const eol = text.indexOf("\r\n");
    if (eol < 0) continue;
    if (text[0] !== "$") return text.slice(0, eol);
    // Lengths are in bytes; INFO is ASCII, so characters are bytes.
    const len = Number(text.slice(1, eol));
    if (text.length >= eol + 2 + len) return text.slice(eol + 2, eol + 2 + len);
  }
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** Keeps the last characters of a process's output for error messages. */
class OutputTail {
  #text = "";
  constructor(private readonly max: number) {}

  async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) this.#add(decoder.decode(chunk, { stream: true }));
    } catch {
      // The pipe broke; what was read is kept.
    }
  }

  #add(s: string): void {
    this.#text += s;
    if (this.#text.length > 2 * this.max) this.#text = this.#text.slice(-this.max);
  }

  text(): string {
    return this.#text.slice(-this.max);
  }
}

async function fileTail(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).slice(-OUTPUT_TAIL_CHARS);
  } catch {
    return "";
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const settled = await Promise.race([p.then(() => true), late]);
  clearTimeout(timer);
  return settled;
}
