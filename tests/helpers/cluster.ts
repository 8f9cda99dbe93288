/**
 * A test cluster of real node processes on free loopback ports.
 *
 * Each node is `main.ts server` in its own OS process, started from a
 * temporary directory (so nothing may depend on the working directory), with
 * a cluster file written for the test. Nodes can be killed with any signal
 * (SIGKILL, SIGSTOP, SIGCONT) and started again; `stop()` ends every process
 * the cluster started, by PID, and closes every client it handed out.
 */
import { sleep } from "../../lib/async.ts";
import assert from "node:assert/strict";
import { type ClientOptions, KvClient } from "../../lib/grpc/kv_client.ts";
import { KvError } from "../../lib/errors.ts";
import { HashRing } from "../../lib/ring.ts";
import type { ClientTls } from "../../lib/security/tls.ts";
import { loadNodeSecurity, randomSecret } from "../../lib/security/settings.ts";
import { findNode, loadConfig } from "../../lib/config.ts";
import { GrpcPeerTransport } from "../../lib/grpc/peer_client.ts";
import type { Keepalive } from "../../lib/grpc/call.ts";
import { freePort } from "./ports.ts";

/** Path of main.ts, for tests that start it themselves. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Ring points per node in every test cluster's config. */
const VIRTUAL_NODES = 150;

/** Options of {@link TestCluster.start}. */
export interface TestClusterOptions {
  nodes?: number;
  replicationFactor?: number;
  writeQuorum?: number;
  readQuorum?: number;
  heartbeatMs?: number;
  failureMs?: number;
  suspectMs?: number;
  storage?: "memory" | "redis";
  /** Redis ports, one per node, for the redis engine. */
  redisPorts?: number[];
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Leave `consistent_hashing` out of the cluster file, so the nodes use the built-in default. */
  defaultVirtualNodes?: boolean;
  /** Extra top-level config sections, merged over the generated ones. */
  extra?: Record<string, Record<string, unknown>>;
  /** Start only these nodes (default: all). */
  startOnly?: string[];
  /**
   * Node traffic is authenticated with a random secret in a file beside the
   * cluster file (`security.cluster_secret_file`) unless this is false.
   */
  secret?: boolean;
  /** Extra environment of some nodes' processes, by node id (e.g. libfaketime's). */
  nodeEnv?: Record<string, Record<string, string>>;
  /** Extra keys of some nodes' entries, by node id (e.g. their own TLS files). */
  nodeExtra?: Record<string, Record<string, unknown>>;
  /** TLS of the harness's own probe and of `client()` (the nodes' `security.tls` goes in `extra`). */
  clientTls?: ClientTls;
}

/** A node of the test cluster. */
export interface TestNode {
  id: string;
  port: number;
  address: string;
  /** Port of the node's admin HTTP listener (metrics, health, status page). */
  adminPort: number;
}

interface Running {
  child: Deno.ChildProcess;
  output: string[];
  /** Resolves once the process has exited and its output is read. */
  done: Promise<Deno.CommandStatus>;
  /** The exit status, once the process has exited. */
  status?: Deno.CommandStatus;
  /**
   * What the test asked of it: nothing yet, a kill (any end is fine), a
   * graceful stop, or a graceful stop it outlived (then killed).
   */
  ended?: Ended;
}

type Ended = "killed" | "stopped" | "hung";

/** How long a node may take to exit after SIGTERM before the harness kills it (a failure). */
const STOP_GRACE_MS = 15_000;

/**
 * Why a node's exit is a failure of the test, or undefined when it is not:
 * any exit the test did not ask for, and a graceful stop that did not end
 * with code 0 (a node that aborts while shutting down is a crash too).
 */
export function unexpectedExit(ended: Ended | undefined, status: Deno.CommandStatus): string | undefined {
  const how = `exit code ${status.code}${status.signal ? `, signal ${status.signal}` : ""}`;
  if (ended === "killed") return undefined;
  if (ended === undefined) return `died by itself (${how})`;
  if (ended === "hung") return `did not exit within ${STOP_GRACE_MS} ms of SIGTERM and was killed (${how})`;
  // SIGTERM itself ends a node that has not yet installed its handler (still starting).
  if (status.success || status.signal === "SIGTERM") return undefined;
  return `did not stop cleanly when asked to (${how})`;
}

/** Real node processes and the clients that talk to them. */
export class TestCluster {
  readonly nodes: TestNode[];
  readonly #running = new Map<string, Running>();
  /** Clients and stubs to close before the nodes stop. */
  readonly #clients: { close(): void }[] = [];
  readonly #logs = new Map<string, string[]>();
  /** Nodes that ended without the test asking, or crashed when asked to stop: each fails `stop()`. */
  readonly #failures: string[] = [];
  #probe?: KvClient;

  private constructor(
    readonly dir: string,
    readonly configPath: string,
    nodes: TestNode[],
    /** The cluster secret, when node traffic is authenticated. */
    readonly secret?: Uint8Array,
    /** The TLS the harness's clients speak, when the nodes serve TLS. */
    readonly clientTls?: ClientTls,
  ) {
    this.nodes = nodes;
  }

  /** Writes a cluster file for the test and starts its nodes; resolves when they serve. */
  static async start(opts: TestClusterOptions = {}): Promise<TestCluster> {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
    const count = opts.nodes ?? 3;
    const nodes = Array.from({ length: count }, (_, i) => {
      const port = freePort();
      return { id: `node${i + 1}`, port, address: `127.0.0.1:${port}`, adminPort: freePort() };
    });
    const secret = opts.secret === false ? undefined : new TextEncoder().encode(randomSecret(16));
    if (secret) await Deno.writeTextFile(`${dir}/cluster.secret`, `${new TextDecoder().decode(secret)}\n`);
    const config = {
      cluster_name: "test",
      security: {
        // A relative path: the node reads it from the cluster file's folder.
        ...(secret ? { cluster_secret_file: "cluster.secret" } : {}),
        ...opts.extra?.security,
      },
      nodes: nodes.map((n, i) => ({
        id: n.id,
        host: "127.0.0.1",
        port: n.port,
        redis_host: "127.0.0.1",
        redis_port: opts.redisPorts?.[i] ?? 1,
        admin_port: n.adminPort,
        ...opts.nodeExtra?.[n.id],
      })),
      replication: {
        replication_factor: opts.replicationFactor ?? Math.min(2, count),
        write_quorum: opts.writeQuorum ?? 1,
        read_quorum: opts.readQuorum ?? 1,
        ...opts.extra?.replication,
      },
      failure_detection: {
        heartbeat_interval_ms: opts.heartbeatMs ?? 200,
        failure_timeout_ms: opts.failureMs ?? 1000,
        ...(opts.suspectMs ? { suspect_timeout_ms: opts.suspectMs } : {}),
        ...opts.extra?.failure_detection,
      },
      consistent_hashing: opts.defaultVirtualNodes ? undefined : { virtual_nodes: VIRTUAL_NODES },
      storage: { engine: opts.storage ?? "memory", ...opts.extra?.storage },
      logging: { level: opts.logLevel ?? "info" },
      ...Object.fromEntries(
        Object.entries(opts.extra ?? {}).filter(([k]) =>
          !["replication", "failure_detection", "storage", "security"].includes(k)
        ),
      ),
    };
    const configPath = `${dir}/cluster.json`;
    await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
    const cluster = new TestCluster(dir, configPath, nodes, secret, opts.clientTls);
    try {
      await Promise.all(
        nodes.filter((n) => !opts.startOnly || opts.startOnly.includes(n.id)).map((n) =>
          cluster.startNode(n.id, [], { env: opts.nodeEnv?.[n.id] })
        ),
      );
      await cluster.waitActive();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  node(id: string): TestNode {
    const n = this.nodes.find((n) => n.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds a node that is in no cluster file (it joins with `startJoiner`); a free port. */
  addNode(id: string): TestNode {
    const port = freePort();
    const node = { id, port, address: `127.0.0.1:${port}`, adminPort: 0 };
    this.nodes.push(node);
    return node;
  }

  /** Starts an added node with `--join` through `via` (no cluster file); waits until it answers. */
  startJoiner(id: string, via: string[], extraArgs: string[] = []): Promise<void> {
    const n = this.node(id);
    const join = via.map((v) => this.node(v).address).join(",");
    // The secret never travels with the settings: the joiner is given it, as an operator would.
    const secret = this.secret ? ["--cluster-secret-file", `${this.dir}/cluster.secret`] : [];
    const args = ["--host", "127.0.0.1", "--port", String(n.port), "--join", join, ...secret, ...extraArgs];
    return this.startNode(id, args, { withConfig: false });
  }

  /**
   * Starts a node's process and waits until it answers GetMembership (or,
   * with `readyLine`, until it logs a matching line: for a node the
   * harness's client cannot talk to).
   */
  async startNode(
    id: string,
    extraArgs: string[] = [],
    opts: { readyLine?: RegExp; withConfig?: boolean; env?: Record<string, string> } = {},
  ): Promise<void> {
    if (this.#running.has(id)) throw new Error(`${id} is already running`);
    const config = opts.withConfig === false ? [] : ["--config", this.configPath];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "server", "--id", id, ...config, ...extraArgs],
      cwd: this.dir,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = this.#logs.get(id) ?? [];
    this.#logs.set(id, output);
    const firstLine = output.length;
    const pump = (s: ReadableStream<Uint8Array>) =>
      s.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({
          write: (chunk) => void output.push(...chunk.split("\n").filter((l) => l !== "")),
        }),
      );
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    const running: Running = { child, output, done: Promise.resolve(undefined as never) };
    // Watch the process itself, so a crash is seen whether or not the test stops the node.
    void child.status.then((status) => running.status = status);
    running.done = pumps.catch(() => {}).then(() => child.status).then((status) => {
      if (this.#running.get(id) === running) this.#running.delete(id);
      const why = unexpectedExit(running.ended, status);
      if (why) {
        const tail = output.slice(Math.max(firstLine, output.length - 20)).join("\n");
        this.#failures.push(`${id} (pid ${child.pid}) ${why}; its last lines:\n${tail}`);
      }
      return status;
    });
    this.#running.set(id, running);
    await this.waitFor(
      async () => {
        const up = opts.readyLine
          ? Promise.resolve(output.some((l) => opts.readyLine!.test(l)) ? "up" as const : "down" as const)
          : this.#isUp(id);
        const status = await Promise.race([child.status.then(() => "exited" as const), up]);
        if (status === "exited") throw new Error(`${id} exited while starting:\n${this.logs(id)}`);
        return status === "up";
      },
      30_000,
      `${id} to listen`,
    );
  }

  /**
   * Waits until every running node sees every running node ACTIVE (nodes
   * report JOINING while they recover from their peers after a start).
   */
  async waitActive(timeoutMs = 30_000): Promise<void> {
    const running = this.nodes.filter((n) => this.#running.has(n.id));
    const probe = await this.#probeClient();
    await this.waitFor(
      async () => {
        for (const n of running) {
          const m = await probe.membership(n.address).catch(() => undefined);
          const active = new Set(m?.members.filter((x) => x.status === "ACTIVE").map((x) => x.id));
          if (!running.every((r) => active.has(r.id))) return false;
        }
        return true;
      },
      timeoutMs,
      "every running node to see every running node ACTIVE",
    );
  }

  /**
   * Says a node will exit by itself (a decommissioned node does), cleanly:
   * resolves with its exit status once it has; an exit code other than 0
   * still fails the test.
   */
  expectExit(id: string): Promise<Deno.CommandStatus> {
    const r = this.#running.get(id);
    if (!r || r.status) throw new Error(`${id} is not running${this.#failureOf(id)}`);
    r.ended = "stopped";
    return r.done;
  }

  /** Sends a signal to a node's process; SIGKILL and SIGTERM also wait for it to exit. */
  async signal(id: string, signal: Deno.Signal): Promise<void> {
    const r = this.#running.get(id);
    if (!r || r.status) throw new Error(`${id} is not running${this.#failureOf(id)}`);
    if (signal === "SIGTERM") return await this.#terminate(r);
    if (signal === "SIGKILL") r.ended = "killed";
    r.child.kill(signal);
    if (signal === "SIGKILL") await r.done;
  }

  /** kill -9 a node. */
  kill(id: string): Promise<void> {
    return this.signal(id, "SIGKILL");
  }

  /**
   * Whether a node's process is running now: false once it has exited for any
   * reason, including a crash the test did not cause (read from the process
   * table, so it does not wait for Deno to reap the child).
   */
  isRunning(id: string): boolean {
    const r = this.#running.get(id);
    return r !== undefined && r.status === undefined && processAlive(r.child.pid);
  }

  /**
   * Nodes that died without the test killing them (or crashed when asked to
   * stop), with their exit status and last log lines; `stop()` fails with
   * these.
   */
  failures(): readonly string[] {
    return this.#failures;
  }

  /** The PID of a node's current process. */
  pid(id: string): number {
    const r = this.#running.get(id);
    if (!r) throw new Error(`${id} is not running${this.#failureOf(id)}`);
    return r.child.pid;
  }

  /** Everything a node printed, across restarts. */
  logs(id: string): string {
    return (this.#logs.get(id) ?? []).join("\n");
  }

  /** Closes `c` (a client or stub of this cluster) in `stop()`, before the nodes stop. */
  closeOnStop<C extends { close(): void }>(c: C): C {
    this.#clients.push(c);
    return c;
  }

  /**
   * The transport node `self` uses to reach `peer`, with this cluster's
   * secret or certificate (a peer answers only a node of its cluster), for a
   * test process that plays `self` against a real `peer`. The caller closes it.
   */
  peerTransport(
    self: string,
    peer: string,
    o: { timeoutMs: number; keepalive?: Keepalive },
  ): GrpcPeerTransport {
    const config = loadConfig(this.configPath);
    const node = findNode(config, self);
    return new GrpcPeerTransport({
      self: node,
      peers: [findNode(config, peer)],
      timeoutMs: o.timeoutMs,
      maxMessageBytes: config.limits.maxMessageBytes,
      security: loadNodeSecurity(config, node),
      keepalive: o.keepalive,
    });
  }

  /** A client of the cluster, closed by `stop()`. */
  async client(opts: ClientOptions & { via?: string } = {}): Promise<KvClient> {
    const first = opts.via
      ? this.node(opts.via).address
      : this.nodes.find((n) => this.#running.has(n.id))!.address;
    const others = this.nodes.map((n) => n.address).filter((a) => a !== first);
    const client = await KvClient.connect(opts.route === false ? [first] : [first, ...others], {
      tls: this.clientTls,
      ...opts,
    });
    this.#clients.push(client);
    return client;
  }

  /** Polls until `cond` holds; fails with `what` after `timeoutMs`. */
  async waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (await cond()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  }

  /**
   * Closes the clients (each node gets their GOAWAYs), then stops every node
   * with SIGTERM, as an operator would, and fails if any node of the test
   * ended on its own, crashed while stopping or outlived STOP_GRACE_MS.
   */
  async stop(): Promise<void> {
    for (const c of this.#clients) c.close();
    await Promise.all([...this.#running.values()].map((r) => this.#terminate(r)));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (this.#failures.length > 0) {
      throw new Error(`a node of this test failed:\n${this.#failures.join("\n\n")}`);
    }
  }

  /** SIGTERM (after SIGCONT, for a paused node), SIGKILL if it outlives STOP_GRACE_MS. */
  async #terminate(r: Running): Promise<void> {
    if (!r.status) r.ended ??= "stopped";
    try {
      r.child.kill("SIGCONT");
      r.child.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        r.ended = "hung";
        r.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, STOP_GRACE_MS);
    await r.done;
    clearTimeout(timer);
  }

  #failureOf(id: string): string {
    const f = this.#failures.filter((l) => l.startsWith(`${id} `));
    return f.length > 0 ? `: ${f.join("\n")}` : "";
  }

  /** One client for every probe, kept until `stop()` (see there). */
  async #probeClient(): Promise<KvClient> {
    if (!this.#probe) {
      this.#probe = await KvClient.connect(this.nodes.map((n) => n.address), {
        route: false,
        timeoutMs: 500,
        tls: this.clientTls,
      });
      this.#clients.push(this.#probe);
    }
    return this.#probe;
  }

  async #isUp(id: string): Promise<"up" | "down"> {
    const probe = await this.#probeClient();
    return await probe.membership(this.node(id).address).then(() => "up" as const, () => "down" as const);
  }
}

/** Whether a process exists and is not a zombie (Linux /proc). */
export function processAlive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** Options of {@link clusterTest}. */
export interface ClusterTestOptions {
  timeoutMs?: number;
  ignore?: boolean;
}

/**
 * A test that runs real processes: bounded in time, and gRPC's background
 * timers are not counted as leaks (every process is stopped by the test).
 */
export function clusterTest(name: string, fn: () => Promise<void>, opts: ClusterTestOptions = {}): void {
  Deno.test({
    name,
    ignore: opts.ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => withTimeout(fn(), opts.timeoutMs ?? 120_000, name),
  });
}

/** Rejects when a promise takes longer than `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Text as bytes and back, for comparing values. */
export const text = {
  encode: (s: string) => new TextEncoder().encode(s),
  decode: (b: Uint8Array) => new TextDecoder().decode(b),
};

/** The ring every node and client of a test cluster builds from its node ids. */
export function ringOf(cluster: TestCluster): HashRing {
  return new HashRing(cluster.nodes.map((n) => n.id), VIRTUAL_NODES);
}

/** `count` keys `${prefix}${i}` whose first node on the ring is `owner`. */
export function keysOwnedBy(ring: HashRing, owner: string, prefix: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    if (ring.owner(`${prefix}${i}`) === owner) out.push(`${prefix}${i}`);
  }
  return out;
}

/** The keys of `keys` whose preference list of `copies` nodes names `nodeId`. */
export function keysPlacedOn(
  ring: HashRing,
  keys: Iterable<string>,
  nodeId: string,
  copies: number,
): string[] {
  return [...keys].filter((k) => ring.preferenceList(k, copies).includes(nodeId));
}

/** Which of `keys` node `id` holds a live copy of, by its own storage. */
export async function heldBy(cluster: TestCluster, id: string, keys: string[]): Promise<string[]> {
  const direct = await cluster.client({ via: id, route: false });
  const rs = await direct.multiGet(keys, { fromReplica: true });
  return rs.filter((r) => r.found).map((r) => r.key);
}

/** How node `viewer` sees `target` now: a status, UNREACHABLE (no answer) or MISSING (not listed). */
export async function statusSeenBy(
  client: KvClient,
  cluster: TestCluster,
  viewer: string,
  target: string,
): Promise<string> {
  try {
    const m = await client.membership(cluster.node(viewer).address);
    return m.members.find((x) => x.id === target)?.status ?? "MISSING";
  } catch {
    return "UNREACHABLE";
  }
}

/** Waits until every viewer reports `target` with one of `wanted`; resolves with the ms it took. */
export async function waitForStatus(
  cluster: TestCluster,
  client: KvClient,
  viewers: string[],
  target: string,
  wanted: string[],
  timeoutMs: number,
): Promise<number> {
  const started = Date.now();
  let seen: string[] = [];
  await cluster.waitFor(
    async () => {
      seen = await Promise.all(viewers.map((v) => statusSeenBy(client, cluster, v, target)));
      return seen.every((s) => wanted.includes(s));
    },
    timeoutMs,
    `${viewers.join(", ")} to report ${target} as ${wanted.join(" or ")}`,
  ).catch((err) => {
    const tails = cluster.nodes.map((n) =>
      `--- ${n.id}:\n${cluster.logs(n.id).split("\n").slice(-10).join("\n")}`
    );
    throw new Error(`${err.message} (they report ${seen.join(", ")})\n${tails.join("\n")}`);
  });
  return Date.now() - started;
}

/** Runs `fn` and returns the KvError it throws (fails if it does not throw one). */
export async function kvError(fn: () => Promise<unknown>): Promise<KvError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof KvError, `expected a KvError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

/** Ends a test cluster: every node stops gracefully (see `TestCluster.stop`). */
export async function endCluster(cluster: TestCluster): Promise<void> {
  await cluster.stop();
}

/** Lines of a node's log that contain `needle`. */
export function logLines(cluster: TestCluster, id: string, needle: string): string[] {
  return cluster.logs(id).split("\n").filter((l) => l.includes(needle));
}

/** A log line's `field=value` (undefined when the line has no such field). */
export function logField(line: string, field: string): string | undefined {
  return new RegExp(`\\b${field}=(\\S+)`).exec(line)?.[1];
}

/** Exit code and output of a finished `main.ts` run. */
export interface MainRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts ARGS` from `cwd` (never the repository root) until it exits. */
export async function runMain(cwd: string, ...args: string[]): Promise<MainRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Re-exported so callers of these helpers need one import. */
export { sleep };
