/**
 * Node processes of a chaos run, one per network namespace.
 *
 * Each node is `main.ts server` started with `ip netns exec` in its own
 * namespace (the `ip` process execs into Deno, so the PID we hold is the
 * node's), listening on its own address. The cluster records how every node
 * process ended, so a node that died by itself (exit 134/139, a signal we did
 * not send) fails the run instead of passing as part of the fault.
 */
import { MAIN } from "../helpers/cluster.ts";
import { LWT_MAX_CLOCK_SKEW_MS } from "../helpers/lwt.ts";
import { redisServerArgs, redisServerPath } from "../../lib/redis_server.ts";
import { sleep } from "../../lib/async.ts";
import { randomSecret } from "../../lib/security/settings.ts";
import { type ChaosNetwork, run } from "./netns.ts";

/** Port every node listens on (each node has its own address, in its own namespace). */
const NODE_PORT = 7400;
/** Port of each node's redis-server, on the loopback of the node's own namespace. */
const REDIS_PORT = 6390;

/** Settings of one run. */
export interface ClusterSettings {
  replicationFactor: number;
  writeQuorum: number;
  readQuorum: number;
  /** replication.sloppy_quorum: stand-ins' hinted copies count toward writeQuorum. */
  sloppyQuorum?: boolean;
  antiEntropyMs: number;
  /** memory (default), or one redis-server per node inside its namespace. */
  storage?: "memory" | "redis";
}

/** A node process and what became of it. */
interface NodeProcess {
  child: Deno.ChildProcess;
  done: Promise<Deno.CommandStatus>;
  /** Set when this harness sent the signal that ends it. */
  expectedEnd: boolean;
}

/** How a node process ended without the harness ending it. */
export interface UnexpectedExit {
  id: string;
  code: number;
  signal: Deno.Signal | null;
}

/** The nodes of a chaos run. */
export class NsCluster {
  readonly ids: string[];
  readonly #procs = new Map<string, NodeProcess>();
  readonly #logs = new Map<string, string[]>();
  readonly #redis: Deno.ChildProcess[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];

  private constructor(
    readonly net: ChaosNetwork,
    readonly dir: string,
    readonly configPath: string,
    ids: string[],
  ) {
    this.ids = ids;
  }

  /** Writes the cluster file; nodes are started with {@link startNode}. */
  static async create(net: ChaosNetwork, ids: string[], s: ClusterSettings): Promise<NsCluster> {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-chaos-" });
    const config = {
      cluster_name: "chaos",
      nodes: ids.map((id) => ({
        id,
        host: net.member(id).ip,
        port: NODE_PORT,
        redis_host: "127.0.0.1",
        redis_port: REDIS_PORT,
      })),
      replication: {
        replication_factor: s.replicationFactor,
        write_quorum: s.writeQuorum,
        read_quorum: s.readQuorum,
        sloppy_quorum: s.sloppyQuorum ?? false,
      },
      failure_detection: { heartbeat_interval_ms: 200, failure_timeout_ms: 1000, rpc_timeout_ms: 500 },
      recovery: { anti_entropy_interval_ms: s.antiEntropyMs },
      consistent_hashing: { virtual_nodes: 150 },
      storage: { engine: s.storage ?? "memory" },
      logging: { level: "info" },
      limits: { max_clock_skew_ms: LWT_MAX_CLOCK_SKEW_MS },
      // The nodes are on non-loopback addresses: without a secret they would
      // refuse to start (protected mode), and node traffic would be open.
      security: { cluster_secret_file: "cluster.secret" },
    };
    const configPath = `${dir}/cluster.json`;
    await Deno.writeTextFile(`${dir}/cluster.secret`, `${randomSecret()}\n`);
    await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
    const cluster = new NsCluster(net, dir, configPath, ids);
    if (s.storage === "redis") {
      try {
        for (const id of ids) await cluster.#startRedis(id);
      } catch (err) {
        await cluster.stop();
        throw err;
      }
    }
    return cluster;
  }

  /** Starts a node's redis-server in its namespace (AOF, fsync always) and waits until it answers. */
  async #startRedis(id: string): Promise<void> {
    const server = redisServerPath();
    if (!server) throw new Error("redis-server is not installed: apt-get install -y redis-server");
    const args = redisServerArgs({ port: REDIS_PORT, dir: `${this.dir}/redis-${id}`, appendFsync: "always" });
    await Deno.mkdir(`${this.dir}/redis-${id}`, { recursive: true });
    const { cmd, args: full } = this.net.exec(id, server, args);
    this.#redis.push(new Deno.Command(cmd, { args: full, stdout: "null", stderr: "null" }).spawn());
    for (let i = 0; i < 100; i++) {
      if ((await this.redisCli(id, "PING").catch(() => "")).trim() === "PONG") return;
      await sleep(100);
    }
    throw new Error(`redis-server of ${id} did not answer within 10 s`);
  }

  /** Runs a redis-cli command against a node's redis-server, from its namespace. */
  redisCli(id: string, ...command: string[]): Promise<string> {
    const { cmd, args } = this.net.exec(id, "redis-cli", ["-p", String(REDIS_PORT), ...command]);
    return run(cmd, args);
  }

  /** The address clients use for a node. */
  address(id: string): string {
    return `${this.net.member(id).ip}:${NODE_PORT}`;
  }

  /** Starts a node in its namespace (it serves once the workload sees it ACTIVE). */
  startNode(id: string, extraArgs: string[] = []): void {
    if (this.#procs.has(id)) throw new Error(`${id} is already running`);
    const { cmd, args } = this.net.exec(id, Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "server",
      "--id",
      id,
      "--config",
      this.configPath,
      ...extraArgs,
    ]);
    const child = new Deno.Command(cmd, {
      args,
      cwd: this.dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const lines = this.#logs.get(id) ?? [];
    this.#logs.set(id, lines);
    const pump = (s: ReadableStream<Uint8Array>) =>
      s.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({ write: (c) => void lines.push(...c.split("\n").filter((l) => l !== "")) }),
      );
    const proc: NodeProcess = { child, done: Promise.resolve() as never, expectedEnd: false };
    proc.done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => child.status).then((st) => {
      if (!proc.expectedEnd) this.unexpectedExits.push({ id, code: st.code, signal: st.signal });
      if (this.#procs.get(id) === proc) this.#procs.delete(id);
      return st;
    });
    this.#procs.set(id, proc);
  }

  /** Sends a signal to a node; SIGKILL and SIGTERM wait until it has exited. */
  async signal(id: string, signal: Deno.Signal): Promise<void> {
    const p = this.#procs.get(id);
    if (!p) throw new Error(`${id} is not running`);
    if (signal === "SIGKILL" || signal === "SIGTERM") p.expectedEnd = true;
    p.child.kill(signal);
    if (p.expectedEnd) await p.done;
  }

  /** Everything a node printed, across restarts. */
  logs(id: string): string {
    return (this.#logs.get(id) ?? []).join("\n");
  }

  /** The last lines of every node's log, for a failure message. */
  tails(lines = 15): string {
    return this.ids.map((id) => `--- ${id}:\n${this.logs(id).split("\n").slice(-lines).join("\n")}`).join(
      "\n",
    );
  }

  /** kill -9 every node still running (no GOAWAY reaches anyone) and every redis-server, and remove the files. */
  async stop(): Promise<void> {
    await Promise.all([...this.#procs.values()].map(async (p) => {
      p.expectedEnd = true;
      try {
        p.child.kill("SIGKILL");
      } catch { /* already gone */ }
      await p.done;
    }));
    await Promise.all(this.#redis.map(async (r) => {
      try {
        r.kill("SIGKILL");
      } catch { /* already gone */ }
      await r.status;
    }));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
