/**
 * The processes the benchmark starts: spawned, watched, measured, stopped.
 *
 * Every child is registered in a {@link ProcessGroup}, which stops them all
 * by PID at the end, on error, and on Ctrl+C. Nodes are started here rather
 * than through tests/helpers/cluster.ts because the benchmark needs their
 * PIDs (resident memory) and extra runtime flags (`--cpu-prof`).
 */
import { sleep } from "../lib/async.ts";
import { withNodeFlags } from "../lib/cli/node_flags.ts";
import { KvClient, type Membership } from "../lib/grpc/kv_client.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const OUTPUT_LINES = 400;

/** A child process with the tail of its output. */
export class Proc {
  readonly pid: number;
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #done = false;

  constructor(readonly name: string, cmd: string, args: string[], opts: { cwd?: string } = {}) {
    this.#child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    this.pid = this.#child.pid;
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        for (const line of chunk.split("\n")) if (line !== "") this.#lines.push(line);
        if (this.#lines.length > OUTPUT_LINES * 2) this.#lines.splice(0, this.#lines.length - OUTPUT_LINES);
      }
    };
    const pumps = Promise.all([pump(this.#child.stdout), pump(this.#child.stderr)]).catch(() => {});
    this.exited = this.#child.status.then(async (st) => {
      this.#done = true;
      await pumps;
      return st;
    });
  }

  get running(): boolean {
    return !this.#done;
  }

  /** The last lines the process wrote. */
  output(): string {
    return this.#lines.slice(-OUTPUT_LINES).join("\n");
  }

  /** Lines matching a pattern, oldest first. */
  grep(pattern: RegExp): string[] {
    return this.#lines.filter((l) => pattern.test(l));
  }

  /** Sends a signal, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<void> {
    if (this.#done) return;
    this.#signal(signal);
    if (signal === "SIGKILL") {
      await this.exited;
      return;
    }
    const timer = setTimeout(() => this.#signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Everything the benchmark started, stopped together. */
export class ProcessGroup {
  readonly #procs = new Set<{ name: string; stop: () => Promise<void> }>();

  /** Registers something to stop at the end; returns it. */
  add<T extends { name?: string; stop: () => Promise<void> }>(p: T, name = p.name ?? "process"): T {
    this.#procs.add({ name, stop: () => p.stop() });
    return p;
  }

  async stopAll(): Promise<void> {
    const all = [...this.#procs];
    this.#procs.clear();
    await Promise.all(all.map((p) => p.stop().catch(() => {})));
  }
}

/** Resident and peak resident memory of a process in bytes, from /proc. */
export function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

/**
 * Resets a process's peak resident memory (VmHWM) to its current RSS
 * (`5` to /proc/PID/clear_refs), so the next peak read covers one phase only.
 * False when the kernel or permissions refuse it.
 */
export function resetPeakOf(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Seconds a process's main thread has spent runnable but waiting for a CPU
 * (the second field of /proc/PID/schedstat); undefined once it is gone. On a
 * machine with more busy processes than cores this wait is where latency
 * comes from that neither the server nor the client spent.
 */
export function runQueueSecondsOf(pid: number): number | undefined {
  try {
    return Number(Deno.readTextFileSync(`/proc/${pid}/schedstat`).split(" ")[1]) / 1e9;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system, all threads) a process has used so far, from
 * /proc/PID/stat; undefined once it is gone.
 */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** One node of a benchmark cluster. */
export interface NodeSpec {
  id: string;
  port: number;
  address: string;
  redisPort?: number;
  /** The node's Redis protocol gateway, when it serves one. */
  respPort?: number;
}

/** Options of {@link BenchCluster.start}. */
export interface BenchClusterOptions {
  dir: string;
  nodes: NodeSpec[];
  replicationFactor: number;
  storage: "memory" | "redis";
  /** Extra flags of the deno runtime for each node (`--cpu-prof`, say). */
  denoFlags?: string[];
  /** The program the nodes run: this tree's main.ts unless given (another checkout's, for a baseline). */
  main?: string;
  logLevel?: string;
  /** Top-level sections merged over the generated cluster file (e.g. `security`). */
  extraConfig?: Record<string, unknown>;
}

/** A cluster of `main.ts server` processes for the benchmark. */
export class BenchCluster {
  readonly procs = new Map<string, Proc>();
  readonly configPath: string;
  #client?: KvClient;

  private constructor(readonly o: BenchClusterOptions, private readonly group: ProcessGroup) {
    this.configPath = `${o.dir}/cluster.json`;
  }

  /** Writes the cluster file, starts every node, and waits until all see each other ACTIVE. */
  static async start(o: BenchClusterOptions, group: ProcessGroup): Promise<BenchCluster> {
    const c = new BenchCluster(o, group);
    const config = {
      cluster_name: "benchmark",
      nodes: o.nodes.map((n) => ({
        id: n.id,
        host: "127.0.0.1",
        port: n.port,
        redis_host: "127.0.0.1",
        redis_port: n.redisPort ?? 6379,
        // Metrics are still counted; only their HTTP listener is off here.
        admin_port: 0,
        ...(n.respPort ? { resp_port: n.respPort } : {}),
      })),
      replication: { replication_factor: o.replicationFactor, write_quorum: 1, read_quorum: 1 },
      failure_detection: { heartbeat_interval_ms: 1000, failure_timeout_ms: 5000 },
      consistent_hashing: { virtual_nodes: 150 },
      storage: { engine: o.storage },
      logging: { level: o.logLevel ?? "info" },
      ...o.extraConfig,
    };
    await Deno.writeTextFile(c.configPath, JSON.stringify(config, null, 2));
    for (const n of o.nodes) c.startNode(n.id);
    await c.waitAllActive(60_000);
    return c;
  }

  get addresses(): string[] {
    return this.o.nodes.map((n) => n.address);
  }

  /** Starts one node's process (not waiting for it). */
  startNode(id: string): Proc {
    const args = [
      "run",
      "-A",
      "--quiet",
      // The flags a node runs with by default, unless the benchmark was given V8 flags of its own.
      ...withNodeFlags(this.o.denoFlags ?? []),
      this.o.main ?? MAIN,
      "server",
      "--id",
      id,
      "--config",
      this.configPath,
    ];
    const proc = new Proc(id, Deno.execPath(), args, { cwd: this.o.dir });
    this.procs.set(id, proc);
    // Killed, not stopped gracefully, if the benchmark ends early: see stop().
    this.group.add({ stop: () => proc.stop("SIGKILL") }, `node ${id} (${this.o.storage})`);
    return proc;
  }

  /**
   * The membership as one node sees it, through one client kept for every
   * call until the nodes are killed.
   */
  async membershipAt(address: string): Promise<Membership> {
    this.#client ??= await KvClient.connect([address], { route: false, timeoutMs: 2000 });
    return await this.#client.membership(address);
  }

  /**
   * {@link membershipAt}, asked again while the node misses the 2 s deadline
   * (up to `timeoutMs`); each miss is reported through `onMiss`, since a node
   * that cannot answer a small call for seconds is itself a finding.
   */
  async membershipPatient(
    address: string,
    timeoutMs: number,
    onMiss: (err: unknown) => void,
  ): Promise<Membership> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      try {
        return await this.membershipAt(address);
      } catch (err) {
        onMiss(err);
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  /** What the nodes that are no longer running printed last, for error messages. */
  async deadNodes(): Promise<string> {
    await sleep(200);
    const dead = [...this.procs].filter(([, p]) => !p.running);
    const parts = await Promise.all(dead.map(async ([id, p]) => {
      const st = await p.exited;
      return `--- ${id} exited (code ${st.code}, signal ${st.signal ?? "none"}); its last output:\n` +
        p.output().split("\n").slice(-15).join("\n");
    }));
    return parts.join("\n");
  }

  /** Waits until every node answers and sees every member ACTIVE. */
  async waitAllActive(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      for (const [id, p] of this.procs) {
        if (!p.running) throw new Error(`node ${id} exited while starting:\n${p.output()}`);
      }
      try {
        const views = await Promise.all(this.addresses.map((a) => this.membershipAt(a)));
        const notActive = views.flatMap((v) =>
          v.members.filter((m) => m.status !== "ACTIVE").map((m) => `${v.responder} sees ${m.id} ${m.status}`)
        );
        if (notActive.length === 0) return;
        last = notActive.join(", ");
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(200);
    }
    throw new Error(`cluster not ACTIVE within ${timeoutMs} ms: ${last}`);
  }

  /**
   * Stops every node. SIGKILL by default: the nodes hold nothing that needs
   * saving here, and a kill is quicker than a graceful stop. With
   * SIGTERM (needed to write CPU profiles) they stop one at a time.
   */
  async stop(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (signal === "SIGKILL") {
      await Promise.all([...this.procs.values()].map((p) => p.stop(signal)));
      return;
    }
    for (const p of this.procs.values()) await p.stop(signal);
  }
}

/** Re-exported so callers of these helpers need one import. */
export { sleep };
