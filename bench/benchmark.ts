/**
 * The side-by-side benchmark (`deno task benchmark`).
 *
 * In one invocation it starts, measures and stops:
 *   (a) the ceiling: bench/ceiling_server.ts, a gRPC server answering from a
 *       plain Map, the fastest any node can be on this runtime; and three of
 *       them loaded round-robin ("ceiling3"), which is what splitting the
 *       same calls over three processes on this machine costs by itself;
 *       and three that split the keys by the ring and forward the calls
 *       they do not own to the owner ("ceiling3fwd", loaded round-robin):
 *       the any-node path with nothing but the forward;
 *   (b) etcd, three members (bench/etcd.ts), when `etcd` is on PATH;
 *   (c) a 3-node cluster, replication_factor 2, asynchronous replication
 *       (write_quorum 1), on the memory engine, loaded twice: by a plain
 *       client sending calls round-robin to any node ("any", two calls in
 *       three are forwarded) and by the routing client ("memory");
 *   (d) the same cluster on Redis (three redis-servers), when redis-server
 *       is installed;
 *   (e) with --baseline DIR, a memory cluster running DIR/main.ts (another
 *       checkout) under the any-node client, and under DIR's own routing
 *       client library, to compare a change (of the nodes, or of the
 *       client) in one run.
 * Each runs the same rows with the load generator of `kvstore bench`
 * (lib/bench/load.ts; same settings, same JSON): unary put, unary get, mixed
 * 90/10, batched put, batched get. It prints one table (ops/s, keys/s, p50,
 * p99, the servers' CPU time per call, ratio to the ceiling row of the same
 * op), checks the issue's targets, and saves everything to
 * bench-results/<timestamp>.json. Server CPU is user + system time of the
 * target's server processes (/proc/PID/stat) over the measured seconds,
 * divided by the calls made; on this shared machine it is the steadier
 * figure. On the memory
 * cluster it then loads about 1M records per node with batched puts, records
 * each node's resident memory, kills -9 the fullest node and times its
 * recovery.
 *
 * The load runs in this process, with one client per target that stays
 * connected until that target's servers are killed: no connection set-up or
 * teardown falls inside a measured row. (On Deno 2.9.4-2.9.6 a closing
 * client could also abort a server, denoland/deno#36788; 2.9.3, the tested
 * runtime, survives it.)
 *
 * Every process it starts uses a free port and is stopped by PID at the end,
 * also on error or Ctrl+C. Flags: see HELP.
 */
import { freePort } from "../tests/helpers/ports.ts";
import { redisServerPath, startRedisServer } from "../lib/redis_server.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { type BenchOp, type LoadClient, preloadKeys, runLoad } from "../lib/bench/load.ts";
import { benchJson, type BenchSettings } from "../lib/cli/bench_cmd.ts";
import { numberFlag, parseFlags, UsageError } from "../lib/cli/common.ts";
import {
  BenchCluster,
  cpuSecondsOf,
  memoryOf,
  type NodeSpec,
  Proc,
  ProcessGroup,
  runQueueSecondsOf,
  sleep,
} from "./_procs.ts";
import { EtcdClient, etcdPath, startEtcd } from "./etcd.ts";
import { type MembershipResult, membershipText, runMembershipChanges } from "./membership_bench.ts";
import { randomSecret } from "../lib/security/settings.ts";
import { LoopLag } from "../lib/bench/loop_lag.ts";
import { type LwtRow, lwtText, runLwtRows } from "./lwt_bench.ts";
import { errorMessage } from "../lib/errors.ts";
import { type RespRow, respText, runRespRows } from "./resp_bench.ts";
import { type AntiEntropyPeak, antiEntropyPeaks } from "./anti_entropy_peak.ts";

const HELP = `deno task benchmark [flags]

  --duration S        seconds measured per row (default 10)
  --warmup S          seconds of unmeasured load before each row (default 2)
  --concurrency N     concurrent callers (default 32)
  --keys N            key space of the rows (default 10000)
  --value-size B      bytes per value (default 100)
  --batch N           keys per call in the batched rows (default 100)
  --records N         records per node for the memory and recovery test (default 1000000)
  --skip-redis        leave out the Redis cluster
  --skip-1m           leave out the 1M-record memory and recovery test
  --skip-resp         leave out the RESP rows (redis-benchmark against the gateways and a redis-server)
  --resp-requests N   redis-benchmark requests per test, times the pipeline depth (default 20000)
  --skip-membership   leave out the join and decommission timed after the 1M test
  --skip-lwt          leave out conditional writes and increments beside plain puts
  --targets LIST      only these of ceiling,ceiling3,ceiling3fwd,etcd,any,memory,redis
                      (default all)
  --secret            run the kvstore clusters with security.cluster_secret set (every
                      node-to-node call then carries an HMAC token), to measure its cost
  --baseline DIR      also run a memory cluster from DIR/main.ts (another checkout)
                      under the any-node client (target "baseline") and under DIR's
                      own routing client (target "baseline-routing")
  --rows LIST         only these of put,get,mixed,batch-put,batch-get ("" for none)
  --node-flags=FLAGS  extra deno flags for every node and the ceiling server, e.g.
                      --node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"; with --cpu-prof
                      servers are stopped gracefully so they write their profiles, which
                      this process may not survive (see the top of bench/benchmark.ts)
  --out DIR           where the JSON goes (default bench-results)
  -h, --help          this help`;

const CEILING = new URL("./ceiling_server.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;

/** Targets, in the order they run. */
const TARGETS = [
  "ceiling",
  "ceiling3",
  "ceiling3fwd",
  "etcd",
  "baseline",
  "baseline-routing",
  "any",
  "memory",
  "redis",
] as const;
/** Targets that exist only with --baseline (and always with it). */
const BASELINE_TARGETS: readonly Target[] = ["baseline", "baseline-routing"];
type Target = typeof TARGETS[number];

/** How each target is named in the table. */
const TARGET_LABELS: Record<Target, string> = {
  ceiling: "ceiling (Map server)",
  ceiling3: "ceiling x3 (3 Map servers)",
  ceiling3fwd: "ceiling x3, forwarding",
  etcd: "etcd, 3 members",
  baseline: "baseline any-node",
  "baseline-routing": "baseline routing",
  any: "kvstore any-node",
  memory: "kvstore routing",
  redis: "kvstore routing, redis",
};

interface Row {
  id: string;
  label: string;
  op: BenchOp;
  batched?: boolean;
  readRatio?: number;
  preload?: boolean;
}

const ROWS: Row[] = [
  { id: "put", label: "unary put", op: "put" },
  { id: "get", label: "unary get", op: "get", preload: true },
  { id: "mixed", label: "mixed 90/10", op: "mixed", readRatio: 0.9, preload: true },
  { id: "batch-put", label: "batched put", op: "put", batched: true },
  { id: "batch-get", label: "batched get", op: "get", batched: true, preload: true },
];

interface Options {
  durationS: number;
  warmupS: number;
  concurrency: number;
  keys: number;
  valueSize: number;
  batch: number;
  records: number;
  skipRedis: boolean;
  skip1m: boolean;
  skipMembership: boolean;
  skipResp: boolean;
  respRequests: number;
  skipLwt: boolean;
  targets: Target[];
  baseline?: string;
  secret: boolean;
  rows: string[];
  nodeFlags: string[];
  out: string;
}

/** What `main.ts bench --json` prints for a run. */
type BenchLine = ReturnType<typeof benchJson>;

interface RowResult {
  target: Target;
  row: string;
  label: string;
  bench: BenchLine;
  /** Server CPU (user + system) per call and per key, microseconds. */
  cpuUsPerOp?: number;
  cpuUsPerKey?: number;
  /** CPU of this process (the load generator) per call, microseconds. */
  loadCpuUsPerOp?: number;
  /** How late this process's event loop ran a 5 ms timer during the row. */
  loadLag?: ReturnType<LoopLag["stop"]>;
  /**
   * Share of the row's seconds this process (the load generator) and, on
   * average, each server process spent runnable but waiting for a CPU.
   */
  loadRunQueue?: number;
  serverRunQueue?: number;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseFlags(args, {
    duration: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string" },
    keys: { type: "string" },
    "value-size": { type: "string" },
    batch: { type: "string" },
    records: { type: "string" },
    "skip-redis": { type: "boolean" },
    "skip-1m": { type: "boolean" },
    "skip-membership": { type: "boolean" },
    "skip-resp": { type: "boolean" },
    "resp-requests": { type: "string" },
    "skip-lwt": { type: "boolean" },
    targets: { type: "string" },
    baseline: { type: "string" },
    secret: { type: "boolean" },
    rows: { type: "string" },
    "node-flags": { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const num = (v: string | undefined, def: number, name: string, min = 0) =>
    numberFlag(v ?? String(def), `--${name}`, min);
  const list = <T extends string>(v: string | undefined, all: readonly T[], name: string): T[] => {
    if (v === undefined) return [...all];
    const picked = v.split(",").map((s) => s.trim()).filter((s) => s !== "") as T[];
    for (const p of picked) {
      if (!all.includes(p)) throw new Error(`--${name}: unknown "${p}" (${all.join(", ")})`);
    }
    return picked;
  };
  return {
    durationS: num(values.duration, 10, "duration", 0.1),
    warmupS: num(values.warmup, 2, "warmup"),
    concurrency: num(values.concurrency, 32, "concurrency", 1),
    keys: num(values.keys, 10_000, "keys", 1),
    valueSize: num(values["value-size"], 100, "value-size"),
    batch: num(values.batch, 100, "batch", 2),
    records: num(values.records, 1_000_000, "records", 1),
    skipRedis: values["skip-redis"] ?? false,
    skip1m: values["skip-1m"] ?? false,
    skipMembership: values["skip-membership"] ?? false,
    skipResp: values["skip-resp"] ?? false,
    respRequests: values["resp-requests"] === undefined
      ? 20_000
      : numberFlag(values["resp-requests"], "--resp-requests", 100, 10_000_000),
    skipLwt: values["skip-lwt"] ?? false,
    targets: [
      // Named in --targets or not, the baseline targets run exactly when --baseline is given.
      ...list(values.targets, TARGETS, "targets").filter((t) => !BASELINE_TARGETS.includes(t)),
      ...(values.baseline ? BASELINE_TARGETS : []),
    ],
    baseline: values.baseline,
    secret: values.secret ?? false,
    rows: list(values.rows, ROWS.map((r) => r.id), "rows"),
    nodeFlags: (values["node-flags"] ?? "").split(" ").filter((f) => f !== ""),
    out: values.out ?? `${ROOT}bench-results`,
  };
}

/**
 * Runs one row with `kvstore bench`'s load generator (the same JSON as
 * `bench --json`) and the CPU time the servers spent in its measured part.
 */
async function runRow(o: Options, t: Running, row: Row) {
  const { client, addresses, route } = t;
  const s: BenchSettings = {
    addresses,
    op: row.op,
    readRatio: row.readRatio ?? 0.9,
    concurrency: o.concurrency,
    durationS: o.durationS,
    keys: o.keys,
    valueSize: o.valueSize,
    preload: row.preload ?? false,
    warmupS: o.warmupS,
    batch: row.batched ? o.batch : 1,
    route,
    timeoutMs: 5000,
    json: true,
  };
  const preload = s.preload
    ? await preloadKeys(client, { keys: s.keys, valueSize: s.valueSize, batch: 500, concurrency: 8 })
    : undefined;
  const load = {
    op: s.op,
    readRatio: s.readRatio,
    concurrency: s.concurrency,
    keys: s.keys,
    valueSize: s.valueSize,
    batch: s.batch,
  };
  if (s.warmupS > 0) await runLoad(client, { ...load, durationMs: s.warmupS * 1000 });
  const cpuBefore = serverCpuSeconds(t);
  const loadCpuBefore = cpuSecondsOf(Deno.pid) ?? 0;
  const waitBefore = [runQueueSecondsOf(Deno.pid) ?? 0, serverRunQueueSeconds(t)];
  const lag = new LoopLag();
  lag.start();
  const result = await runLoad(client, { ...load, durationMs: s.durationS! * 1000 });
  const loadLag = lag.stop();
  const seconds = result.elapsedMs / 1000;
  const loadRunQueue = round(((runQueueSecondsOf(Deno.pid) ?? 0) - waitBefore[0]) / seconds, 2);
  const serverRunQueue = round(
    (serverRunQueueSeconds(t) - waitBefore[1]) / seconds / Math.max(t.pids().length, 1),
    2,
  );
  const loadCpu = (cpuSecondsOf(Deno.pid) ?? 0) - loadCpuBefore;
  const cpu = serverCpuSeconds(t) - cpuBefore;
  const perOp = (seconds: number) => round((seconds * 1e6) / Math.max(result.ops, 1), 1);
  return {
    bench: benchJson({ ...s, spread: t.spread }, result, preload),
    cpuUsPerOp: perOp(cpu),
    cpuUsPerKey: round((cpu * 1e6) / Math.max(result.keys, 1), 1),
    loadCpuUsPerOp: perOp(loadCpu),
    loadLag,
    loadRunQueue,
    serverRunQueue,
  };
}

/** Seconds the target's server processes have waited for a CPU so far. */
function serverRunQueueSeconds(t: Running): number {
  return t.pids().reduce((sum, pid) => sum + (runQueueSecondsOf(pid) ?? 0), 0);
}

/** CPU seconds the target's server processes have used so far. */
function serverCpuSeconds(t: Running): number {
  return t.pids().reduce((sum, pid) => sum + (cpuSecondsOf(pid) ?? 0), 0);
}

/** A target that is up: where its load goes, and how to stop it. */
interface Running {
  target: Target;
  addresses: string[];
  route: boolean;
  /** Without routing, calls go round-robin over `addresses`. */
  spread?: boolean;
  /** Never closed: it stays connected until the servers are gone (see the top of this file). */
  client: LoadClient;
  cluster?: BenchCluster;
  /** The server processes whose CPU time a row counts. */
  pids: () => number[];
  stop: () => Promise<void>;
}

async function runRowOn(o: Options, t: Running, row: Row): Promise<RowResult> {
  log(`${t.target}: ${row.label} (${o.warmupS} s warm-up + ${o.durationS} s)`);
  const { bench, cpuUsPerOp, cpuUsPerKey, loadCpuUsPerOp, loadLag, loadRunQueue, serverRunQueue } =
    await runRow(o, t, row);
  const lat = bench.latency_ms;
  log(
    `  ${fmt(bench.ops_per_s)} ops/s, ${
      fmt(bench.keys_per_s)
    } keys/s, p50 ${lat.p50} ms, p99 ${lat.p99} ms, ` +
      `server CPU ${cpuUsPerOp} us/call, load CPU ${loadCpuUsPerOp} us/call, ` +
      `load loop lag p99 ${loadLag.p99Ms} ms (max ${loadLag.maxMs}, ${loadLag.stalledMs} ms in lags > 10 ms), ` +
      `waiting for a CPU: load ${pct(loadRunQueue)}, servers ${pct(serverRunQueue)} of the time` +
      (bench.error_count > 0 ? `, errors ${JSON.stringify(bench.errors)}` : ""),
  );
  return {
    target: t.target,
    row: row.id,
    label: row.label,
    bench,
    cpuUsPerOp,
    cpuUsPerKey,
    loadCpuUsPerOp,
    loadLag,
    loadRunQueue,
    serverRunQueue,
  };
}

function pct(share: number): string {
  return `${Math.round(share * 100)}%`;
}

function nodeSpecs(count: number, redisPorts?: number[]): NodeSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const port = freePort();
    return {
      id: `node${i + 1}`,
      port,
      address: `127.0.0.1:${port}`,
      redisPort: redisPorts?.[i],
      respPort: freePort(),
    };
  });
}

/** How servers are stopped: killed, unless profiling needs them to exit by themselves. */
function stopSignal(o: Options): Deno.Signal {
  return o.nodeFlags.some((f) => f.startsWith("--cpu-prof")) ? "SIGTERM" : "SIGKILL";
}

/**
 * A ceiling target: one ceiling server, or three loaded round-robin (like
 * the any-node client), which with "ceiling3fwd" split the keys and forward
 * what they do not own.
 */
async function startCeiling(
  group: ProcessGroup,
  o: Options,
  target: "ceiling" | "ceiling3" | "ceiling3fwd",
): Promise<Running> {
  const count = target === "ceiling" ? 1 : 3;
  const forward = target === "ceiling3fwd";
  log(`${target}: starting ${count} ceiling server${count === 1 ? "" : "s"}`);
  const ports = Array.from({ length: count }, () => freePort());
  const trio = (self: number) =>
    forward ? ["--peers", ports.map((p) => `127.0.0.1:${p}`).join(","), "--self", String(self)] : [];
  const procs = await Promise.all(ports.map((port, i) => startCeilingServer(group, o, port, trio(i))));
  const addresses = procs.map((p) => p.address);
  const spread = count > 1;
  return {
    target,
    addresses,
    route: false,
    spread,
    client: await KvClient.connect(addresses, { route: false, spread, timeoutMs: 5000 }),
    pids: () => procs.map((p) => p.proc.pid),
    // Killed, not stopped: they hold nothing worth a graceful stop.
    stop: async () => void await Promise.all(procs.map((p) => p.proc.stop(stopSignal(o)))),
  };
}

/** One ceiling server process, once it listens. */
async function startCeilingServer(
  group: ProcessGroup,
  o: Options,
  port: number,
  extra: string[],
): Promise<{ proc: Proc; address: string }> {
  const args = ["run", "-A", "--quiet", ...o.nodeFlags, CEILING, "--port", String(port), ...extra];
  const proc = new Proc("ceiling", Deno.execPath(), args);
  group.add({ stop: () => proc.stop("SIGKILL") }, `ceiling ${port}`);
  const deadline = Date.now() + 30_000;
  while (proc.grep(/^listening on/).length === 0) {
    if (!proc.running || Date.now() > deadline) {
      throw new Error(`ceiling server did not start:\n${proc.output()}`);
    }
    await sleep(50);
  }
  return { proc, address: `127.0.0.1:${port}` };
}

/** Memory and recovery figures of the 1M-record test. */
interface MillionResult {
  loadedKeys: number;
  loadSeconds: number;
  loadKeysPerSec: number;
  loadErrors: Record<string, number>;
  /** `suspected` counts the peers a node suspected or declared failed while loading (hints pile up then). */
  nodes: { id: string; keys: number; rssMB: number; peakMB: number; suspected: number }[];
  /** Each node's peak over its next anti-entropy round after the steady reading. */
  antiEntropy?: AntiEntropyPeak[];
  recovery?: {
    node: string;
    keysBefore: number;
    rssBeforeMB: number;
    seconds: number;
    records: number;
    recordsPerSec: number;
    nodeReportedSeconds?: number;
    nodeReportedRecordsPerSec?: number;
    peakRssDuringMB: number;
    rssAfterMB: number;
    keysAfter: number;
  };
}

/** Idle time after loading before resident memory is read. */
const SETTLE_MS = 10_000;

/**
 * Loads enough keys that each node holds about `o.records` (rf 2 of 3
 * nodes: 1.5 times as many keys), records resident memory, then kills -9
 * the fullest node, restarts it and times its recovery until ACTIVE.
 */
async function runMillion(o: Options, cluster: BenchCluster): Promise<MillionResult> {
  const nodes = cluster.o.nodes.length;
  const total = Math.ceil((o.records * nodes) / cluster.o.replicationFactor);
  log(`memory: loading ${fmt(total)} keys of ${o.valueSize} bytes (about ${fmt(o.records)} per node)`);
  // Never closed, like every client here (see the top of this file).
  const client = await KvClient.connect(cluster.addresses, { timeoutMs: 30_000 });
  const loaded = await preloadKeys(client, {
    keys: total,
    valueSize: o.valueSize,
    batch: 500,
    concurrency: 8,
  });
  const pre = { seconds: round(loaded.elapsedMs / 1000, 3), errors: loaded.errors };
  log(`  loaded in ${pre.seconds} s (${fmt(total / pre.seconds)} keys/s)`);
  // Let replication queues drain and key counts refresh (every heartbeat),
  // then give the collector the idle time it takes to shrink the heap.
  await waitStable(cluster, 30_000);
  await sleep(SETTLE_MS);
  const views = await Promise.all(
    cluster.addresses.map((a) => cluster.membershipPatient(a, 30_000, missed(a))),
  );
  const nodeRows = cluster.o.nodes.map((n, i) => {
    const self = views[i].members.find((m) => m.id === n.id)!;
    const mem = memoryOf(cluster.procs.get(n.id)!.pid);
    const suspicions = cluster.procs.get(n.id)!.grep(/is now (SUSPECTED|FAILED)/);
    return {
      id: n.id,
      keys: self.keysCount,
      rssMB: mb(mem?.rss),
      peakMB: mb(mem?.hwm),
      suspected: suspicions.length,
      suspicions,
    };
  });
  for (const r of nodeRows) {
    log(
      `  ${r.id}: ${fmt(r.keys)} keys, RSS ${r.rssMB} MB (peak ${r.peakMB} MB)` +
        (r.suspected > 0 ? `, suspected a peer ${r.suspected} times while loading` : ""),
    );
    // A suspicion while loading makes the node hold hints, which is memory.
    for (const line of r.suspicions.slice(0, 3)) log(`    ${line.slice(0, 300)}`);
  }
  log("memory: peak resident memory of each node over its next anti-entropy round");
  const antiEntropy = await antiEntropyPeaks(cluster, 90_000);
  for (const a of antiEntropy) {
    log(
      `  ${a.id}: peak ${a.peakMB} MB; round took ${a.roundMs ?? "?"} ms, ${
        a.buckets ?? "?"
      } buckets differed, repaired ${a.repaired ?? "?"}`,
    );
  }
  const result: MillionResult = {
    loadedKeys: total,
    loadSeconds: pre.seconds,
    loadKeysPerSec: Math.round(total / pre.seconds),
    loadErrors: pre.errors,
    nodes: nodeRows,
    antiEntropy,
  };

  const victim = [...nodeRows].sort((a, b) => b.keys - a.keys)[0];
  const spec = cluster.o.nodes.find((n) => n.id === victim.id)!;
  log(`memory: kill -9 ${victim.id} (${fmt(victim.keys)} records) and time its recovery`);
  await cluster.procs.get(victim.id)!.stop("SIGKILL");
  const started = performance.now();
  const proc = cluster.startNode(victim.id);
  let peak = 0;
  let keysAfter = 0;
  while (true) {
    if (!proc.running) throw new Error(`${victim.id} exited while recovering:\n${proc.output()}`);
    peak = Math.max(peak, memoryOf(proc.pid)?.rss ?? 0);
    try {
      const view = await cluster.membershipAt(spec.address);
      const self = view.members.find((m) => m.id === victim.id)!;
      if (self.status === "ACTIVE" && proc.grep(/recovery finished/).length > 0) break;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - started > 600_000) throw new Error(`${victim.id} did not recover in 10 minutes`);
    await sleep(100);
  }
  const seconds = (performance.now() - started) / 1000;
  const line = proc.grep(/recovery finished/)[0] ?? "";
  const field = (name: string) => {
    const m = new RegExp(`${name}=([0-9.]+)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  const records = field("records") ?? 0;
  await sleep(1500);
  const view = await cluster.membershipPatient(spec.address, 30_000, missed(spec.address));
  keysAfter = view.members.find((m) => m.id === victim.id)!.keysCount;
  const memAfter = memoryOf(proc.pid);
  const rssAfter = memAfter?.rss;
  // The process's own high-water mark: a peak between two samples counts too.
  peak = Math.max(peak, memAfter?.hwm ?? 0);
  result.recovery = {
    node: victim.id,
    keysBefore: victim.keys,
    rssBeforeMB: victim.rssMB,
    seconds: round(seconds, 2),
    records,
    recordsPerSec: Math.round(records / seconds),
    nodeReportedSeconds: field("seconds"),
    nodeReportedRecordsPerSec: field("records_per_s"),
    peakRssDuringMB: mb(peak),
    rssAfterMB: mb(rssAfter),
    keysAfter,
  };
  const r = result.recovery;
  log(
    `  ACTIVE after ${r.seconds} s: ${fmt(r.records)} records (${
      fmt(r.recordsPerSec)
    } records/s from spawn; ` +
      `node says ${r.nodeReportedSeconds} s, ${fmt(r.nodeReportedRecordsPerSec ?? 0)} records/s), ` +
      `peak RSS ${r.peakRssDuringMB} MB, now ${fmt(r.keysAfter)} keys, RSS ${r.rssAfterMB} MB`,
  );
  return result;
}

/** Logs the event-loop stalls each node of a cluster reported (lib/stall_watch.ts), for the record. */
function logStalls(target: Target, cluster: BenchCluster): void {
  for (const [id, proc] of cluster.procs) {
    const lines = proc.grep(/event loop was blocked/);
    if (lines.length === 0) continue;
    const ms = lines.map((l) => Number(/ms=(\d+)/.exec(l)?.[1] ?? 0));
    log(
      `${target} ${id}: event loop blocked ${ms.length} times for 500 ms or more (longest ${
        Math.max(...ms)
      } ms)`,
    );
    // When, to set against the phases logged above (a node's lines start with their ISO time).
    for (const l of lines.slice(-5)) log(`  at ${l.slice(11, 19)}: ${l.slice(l.indexOf("ms="))}`);
  }
}

/** Logs a node's missed GetMembership deadline. */
function missed(address: string): (err: unknown) => void {
  return (err) => log(`  ${address} did not answer GetMembership in time: ${errorMessage(err)}`);
}

/** Waits until every node's key count stops changing (replication drained). */
async function waitStable(cluster: BenchCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let same = 0;
  while (Date.now() < deadline) {
    // A node busy draining replication may miss a deadline: ask again.
    const views = await Promise.all(cluster.addresses.map((a) => cluster.membershipAt(a))).catch(() =>
      undefined
    );
    if (!views) {
      await sleep(1100);
      continue;
    }
    const counts = views.map((v) => v.members.find((m) => m.id === v.responder)?.keysCount).join(",");
    same = counts === last ? same + 1 : 0;
    last = counts;
    if (same >= 2) return;
    await sleep(1100);
  }
}

async function startCluster(
  group: ProcessGroup,
  o: Options,
  storage: "memory" | "redis",
  dir: string,
  how: { redisPorts?: number[]; main?: string } = {},
): Promise<Running> {
  log(
    `${storage}: starting 3 nodes (replication_factor 2, write_quorum 1)${
      how.main ? ` from ${how.main}` : ""
    }`,
  );
  const cluster = await BenchCluster.start({
    dir,
    nodes: nodeSpecs(3, how.redisPorts),
    replicationFactor: 2,
    storage,
    denoFlags: o.nodeFlags,
    main: how.main,
    extraConfig: o.secret ? { security: { cluster_secret: randomSecret() } } : undefined,
  }, group);
  return {
    target: storage,
    addresses: cluster.addresses,
    route: true,
    client: await KvClient.connect(cluster.addresses, { route: true, timeoutMs: 5000 }),
    cluster,
    pids: () => [...cluster.procs.values()].map((p) => p.pid),
    stop: () => cluster.stop(stopSignal(o)),
  };
}

/** The same cluster under a plain client that sends calls round-robin to any node. */
async function anyNode(t: Running, target: Target): Promise<Running> {
  return {
    ...t,
    target,
    route: false,
    spread: true,
    client: await KvClient.connect(t.addresses, { route: false, spread: true, timeoutMs: 5000 }),
  };
}

async function startEtcdTarget(group: ProcessGroup, tmp: string): Promise<Running> {
  log("etcd: starting 3 members");
  const etcd = await startEtcd(group, await Deno.makeTempDir({ dir: tmp }));
  return {
    target: "etcd",
    addresses: etcd.addresses,
    route: false,
    spread: true,
    client: new EtcdClient(etcd.addresses),
    pids: () => etcd.procs.map((p) => p.pid),
    stop: () => etcd.stop(),
  };
}

async function startRedisCluster(group: ProcessGroup, o: Options, tmp: string): Promise<Running> {
  log("redis: starting 3 redis-servers");
  const servers = await Promise.all([1, 2, 3].map(async (i) => {
    const port = freePort();
    const server = await startRedisServer({ port, dir: `${tmp}/redis-${i}` });
    group.add(server, `redis-server ${port}`);
    return server;
  }));
  const dir = await Deno.makeTempDir({ dir: tmp });
  const redis = await startCluster(group, o, "redis", dir, { redisPorts: servers.map((s) => s.port) });
  return {
    ...redis,
    stop: async () => {
      await redis.stop();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

/** The RESP rows: redis-benchmark on the memory cluster's gateways and on a redis-server of its own. */
async function respRows(
  o: Options,
  group: ProcessGroup,
  memory: Running,
  tmp: string,
  notes: string[],
): Promise<RespRow[] | undefined> {
  const ports = memory.cluster?.o.nodes.map((n) => n.respPort ?? 0) ?? [];
  if (ports.length === 0 || ports.some((p) => p === 0) || !redisServerPath()) {
    notes.push("resp: skipped (needs the memory cluster's gateways and redis-server / redis-benchmark)");
    return undefined;
  }
  const server = await startRedisServer({ port: freePort(), dir: `${tmp}/resp-redis` });
  group.add(server, `redis-server ${server.port}`);
  try {
    return await runRespRows({ respPorts: ports, redisPort: server.port, requests: o.respRequests, log });
  } finally {
    await server.stop();
  }
}

async function main(args: string[]): Promise<number> {
  const o = parseOptions(args);
  if (!o) return 0;
  const group = new ProcessGroup();
  const tmp = await Deno.makeTempDir({ prefix: "kvstore-bench-" });
  const cleanup = async () => {
    await group.stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    log("interrupted: stopping every process");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const started = new Date();
  const rows: RowResult[] = [];
  const running: Running[] = [];
  let million: MillionResult | undefined;
  let membership: MembershipResult | undefined;
  let resp: RespRow[] | undefined;
  let lwt: LwtRow[] | undefined;
  const notes: string[] = [];
  try {
    // Every target is up at once and each row runs on them back to back, so
    // a row's ratios compare measurements taken seconds apart: whatever else
    // loads the machine drifts less between them.
    for (const ceiling of ["ceiling", "ceiling3", "ceiling3fwd"] as const) {
      if (o.targets.includes(ceiling)) running.push(await startCeiling(group, o, ceiling));
    }
    if (o.targets.includes("etcd")) {
      if (etcdPath()) running.push(await startEtcdTarget(group, tmp));
      else notes.push("etcd: skipped, `etcd` is not on PATH (Debian: apt-get install etcd-server)");
    }
    if (o.baseline) {
      const main = `${o.baseline.replace(/\/$/, "")}/main.ts`;
      const base = await startCluster(group, o, "memory", await Deno.makeTempDir({ dir: tmp }), { main });
      running.push(await anyNode(base, "baseline"));
      // The baseline's own client library: a change to the routing client is compared too.
      const lib = await import(`${o.baseline.replace(/\/$/, "")}/lib/grpc/kv_client.ts`) as {
        KvClient: typeof KvClient;
      };
      running.push({
        ...base,
        target: "baseline-routing",
        client: await lib.KvClient.connect(base.addresses, { route: true, timeoutMs: 5000 }),
      });
    }
    let memory: Running | undefined;
    if (o.targets.includes("memory") || o.targets.includes("any")) {
      memory = await startCluster(group, o, "memory", await Deno.makeTempDir({ dir: tmp }));
      if (o.targets.includes("any")) running.push(await anyNode(memory, "any"));
      if (o.targets.includes("memory")) running.push(memory);
    }
    if (o.targets.includes("redis")) {
      if (o.skipRedis) notes.push("redis: skipped (--skip-redis)");
      else if (!redisServerPath()) notes.push("redis: skipped, redis-server is not installed");
      else running.push(await startRedisCluster(group, o, tmp));
    }
    for (const row of ROWS.filter((r) => o.rows.includes(r.id))) {
      for (const t of running) rows.push(await runRowOn(o, t, row));
    }
    // In the same run as the gRPC rows, on the same memory cluster, before the 1M test loads it.
    if (memory && !o.skipResp) resp = await respRows(o, group, memory, tmp, notes);
    if (memory && !o.skipLwt) {
      const client = await KvClient.connect(memory.addresses, { route: true, timeoutMs: 5000 });
      try {
        lwt = await runLwtRows(client, {
          durationS: Math.min(o.durationS, 5),
          concurrency: o.concurrency,
          keys: o.keys,
          valueSize: o.valueSize,
        });
      } finally {
        client.close();
      }
    }
    if (memory && !o.skip1m) {
      // The other targets stop first, so the memory nodes have the machine.
      for (const t of running) if (t.cluster !== memory.cluster) await t.stop();
      million = await runMillion(o, memory.cluster!);
      if (!o.skipMembership) {
        membership = await runMembershipChanges(memory.cluster!, group, million.loadedKeys, log);
      }
    }
    for (const t of running) if (t.cluster) logStalls(t.target, t.cluster);
  } catch (err) {
    for (const t of running) {
      const dead = await t.cluster?.deadNodes();
      if (dead && err instanceof Error) err.message += `\n${dead}`;
    }
    throw err;
  } finally {
    for (const t of new Set(running.map((t) => t.stop))) await t().catch(() => {});
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const targets = checkTargets(rows, million);
  console.log("\n" + table(rows, o));
  if (million) console.log("\n" + millionText(million));
  if (membership) console.log("\n" + membershipText(membership));
  if (resp) {
    const unary = (row: string) => findRow(rows, "any", row)?.bench.keys_per_s;
    console.log("\n" + respText(resp, { put: unary("put"), get: unary("get") }));
  }
  if (lwt) console.log("\n" + lwtText(lwt));
  if (notes.length > 0) console.log("\n" + notes.join("\n"));
  console.log(
    "\ntargets:\n" + targets.map((t) => `  ${t.met ? "met    " : "NOT met"}  ${t.what}: ${t.got}`).join("\n"),
  );
  const reference = threeProcessReference(rows);
  if (reference.length > 0) console.log("\n" + reference.join("\n"));
  await Deno.mkdir(o.out, { recursive: true });
  const file = `${o.out}/${started.toISOString().replace(/[:.]/g, "-")}.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify(
      {
        started: started.toISOString(),
        finished: new Date().toISOString(),
        machine: { cpus: navigator.hardwareConcurrency, deno: Deno.version, loadavg: Deno.loadavg() },
        parameters: { ...o, nodes: 3, replication_factor: 2, write_quorum: 1, read_quorum: 1 },
        rows,
        million,
        membership,
        resp,
        lwt,
        notes,
        targets,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`\nraw results: ${file}`);
  return 0;
}

interface TargetCheck {
  what: string;
  got: string;
  met: boolean;
}

/** A target's result on a row, if it ran. */
function findRow(rows: RowResult[], target: Target, row: string): RowResult | undefined {
  return rows.find((r) => r.target === target && r.row === row);
}

function checkTargets(rows: RowResult[], million?: MillionResult): TargetCheck[] {
  const find = (target: Target, row: string) => findRow(rows, target, row);
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const out: TargetCheck[] = [];
  /** `target`'s keys/s on a row at least `min` times `than`'s. */
  const ratio = (target: Target, than: Target, row: string, min: number, what: string) => {
    const a = find(target, row)?.bench;
    const c = find(than, row)?.bench;
    if (!a || !c) return;
    const r = a.keys_per_s / c.keys_per_s;
    out.push({ what, got: `${pct(r)} (${fmt(a.keys_per_s)} vs ${fmt(c.keys_per_s)} keys/s)`, met: r >= min });
  };
  ratio("any", "etcd", "put", 1, "any-node put >= etcd put");
  ratio("any", "etcd", "get", 1, "any-node get >= etcd get");
  ratio("any", "ceiling", "put", 0.70, "any-node put >= 70% of the ceiling");
  ratio("any", "ceiling", "get", 0.85, "any-node get >= 85% of the ceiling");
  ratio("memory", "ceiling", "put", 0.85, "routing put >= 85% of the ceiling");
  ratio("memory", "ceiling", "get", 0.85, "routing get >= 85% of the ceiling");
  for (const row of ["put", "get"]) {
    const a = find("any", row)?.cpuUsPerOp;
    const c = find("ceiling", row)?.cpuUsPerOp;
    if (a === undefined || c === undefined) continue;
    out.push({
      what: `any-node server CPU per ${row} <= 2x the ceiling's`,
      got: `${(a / c).toFixed(2)}x (${a} vs ${c} us per call)`,
      met: a <= 2 * c,
    });
  }
  for (const t of ["any", "memory", "redis"] as const) {
    for (const r of rows.filter((r) => r.target === t && !r.row.startsWith("batch-"))) {
      const x = r.bench.latency_ms.p99 / r.bench.latency_ms.p50;
      out.push({
        what: `p99 <= 5x p50 (${TARGET_LABELS[t]}, ${r.label})`,
        got: `${x.toFixed(1)}x`,
        met: x <= 5,
      });
    }
    for (const [b, u] of [["batch-put", "put"], ["batch-get", "get"]]) {
      const batched = find(t, b)?.bench;
      const unary = find(t, u)?.bench;
      if (batched && unary) {
        const x = batched.keys_per_s / unary.keys_per_s;
        out.push({
          what: `${b} >= 20x unary keys/s (${TARGET_LABELS[t]})`,
          got: `${x.toFixed(1)}x`,
          met: x >= 20,
        });
      }
    }
  }
  for (const n of million?.nodes ?? []) {
    out.push({
      what: `${n.id} holding ${fmt(n.keys)} records < 400 MB resident`,
      got: `${n.rssMB} MB (peak ${n.peakMB} MB)`,
      met: n.rssMB < 400,
    });
  }
  for (const a of million?.antiEntropy ?? []) {
    out.push({
      what: `${a.id} < 400 MB resident during an anti-entropy round`,
      got: `peak ${a.peakMB} MB`,
      met: a.peakMB < 400,
    });
  }
  const rec = million?.recovery;
  if (rec) {
    out.push({
      what: `${rec.node} < 400 MB resident while recovering ${fmt(rec.records)} records`,
      got: `peak ${rec.peakRssDuringMB} MB, after ${rec.rssAfterMB} MB`,
      met: rec.peakRssDuringMB < 400,
    });
  }
  for (const r of rows.filter((r) => r.target === "redis")) {
    const m = find("memory", r.row)?.bench;
    if (m) {
      const x = r.bench.keys_per_s / m.keys_per_s;
      out.push({ what: `redis >= 80% of memory (${r.label})`, got: pct(x), met: x >= 0.8 });
    }
  }
  return out;
}

/**
 * The cluster's unary rows against three ceiling servers: a node is one of
 * three processes sharing the machine's cores, and this shows how much of
 * the distance to the one-process ceiling that alone accounts for; the
 * any-node rows also against three that forward, which adds what a bare
 * forward costs on this runtime.
 */
function threeProcessReference(rows: RowResult[]): string[] {
  const lines: string[] = [];
  const pairs = [["any", "ceiling3"], ["memory", "ceiling3"], ["any", "ceiling3fwd"]] as const;
  for (const [target, reference] of pairs) {
    for (const row of ["put", "get"]) {
      const a = findRow(rows, target, row);
      const c = findRow(rows, reference, row);
      if (!a || !c || a.cpuUsPerOp === undefined || c.cpuUsPerOp === undefined) continue;
      lines.push(
        `  ${TARGET_LABELS[target]}, unary ${row}, vs ${TARGET_LABELS[reference]}: ${
          Math.round((a.bench.keys_per_s / c.bench.keys_per_s) * 100)
        }% of its keys/s, ${(a.cpuUsPerOp / c.cpuUsPerOp).toFixed(2)}x its server CPU per call`,
      );
    }
  }
  return lines.length === 0 ? [] : [
    "against three ceiling servers, plain or forwarding (what three processes and a bare forward cost; not targets):",
    ...lines,
  ];
}

function table(rows: RowResult[], o: Options): string {
  const header = [
    "target",
    "row",
    "ops/s",
    "keys/s",
    "p50 ms",
    "p99 ms",
    "p99/p50",
    "server CPU us/call",
    "load CPU us/call",
    "load lag p99 ms",
    "CPU wait load/servers",
    "errors",
    "vs ceiling",
    "vs ceiling x3",
    "vs ceiling x3 fwd",
  ];
  const body = rows.map((r) => {
    const b = r.bench;
    const versus = (target: Target) => {
      const c = findRow(rows, target, r.row)?.bench;
      return c ? `${Math.round((b.keys_per_s / c.keys_per_s) * 100)}%` : "-";
    };
    return [
      TARGET_LABELS[r.target],
      r.label,
      fmt(b.ops_per_s),
      fmt(b.keys_per_s),
      b.latency_ms.p50.toFixed(2),
      b.latency_ms.p99.toFixed(2),
      (b.latency_ms.p99 / b.latency_ms.p50).toFixed(1),
      r.cpuUsPerOp === undefined ? "-" : fmt(r.cpuUsPerOp),
      r.loadCpuUsPerOp === undefined ? "-" : fmt(r.loadCpuUsPerOp),
      r.loadLag === undefined ? "-" : r.loadLag.p99Ms.toFixed(1),
      r.loadRunQueue === undefined ? "-" : `${pct(r.loadRunQueue)}/${pct(r.serverRunQueue ?? 0)}`,
      String(b.error_count),
      versus("ceiling"),
      versus("ceiling3"),
      versus("ceiling3fwd"),
    ];
  });
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return `${o.concurrency} callers, ${o.valueSize}-byte values, ${
    fmt(o.keys)
  } keys, ${o.durationS} s per row ` +
    `(after ${o.warmupS} s warm-up), batches of ${o.batch}; 3 nodes, replication_factor 2, write_quorum 1\n\n` +
    [line(header), ...body.map(line)].join("\n");
}

function millionText(m: MillionResult): string {
  const lines = [
    `1M test: loaded ${fmt(m.loadedKeys)} keys of 100 bytes in ${m.loadSeconds} s ` +
    `(${fmt(m.loadKeysPerSec)} keys/s, batched puts)`,
    ...m.nodes.map((n) =>
      `  ${n.id}: ${fmt(n.keys)} records, RSS ${n.rssMB} MB (peak ${n.peakMB} MB)` +
      (n.suspected > 0 ? `; suspected a peer ${n.suspected} times while loading` : "")
    ),
  ];
  if (m.antiEntropy) {
    lines.push(
      `anti-entropy: peak RSS over each node's next round ` +
        m.antiEntropy.map((a) => `${a.id} ${a.peakMB} MB (${a.roundMs ?? "?"} ms)`).join(", "),
    );
  }
  const r = m.recovery;
  if (r) {
    lines.push(
      `recovery: ${r.node} (${
        fmt(r.keysBefore)
      } records, RSS ${r.rssBeforeMB} MB) killed -9 and restarted: ` +
        `ACTIVE after ${r.seconds} s, ${fmt(r.records)} records streamed = ${
          fmt(r.recordsPerSec)
        } records/s ` +
        `(node's own count: ${r.nodeReportedSeconds} s, ${
          fmt(r.nodeReportedRecordsPerSec ?? 0)
        } records/s); ` +
        `peak RSS while recovering ${r.peakRssDuringMB} MB, after ${r.rssAfterMB} MB with ${
          fmt(r.keysAfter)
        } records`,
    );
  }
  return lines.join("\n");
}

function log(msg: string): void {
  console.error(`[benchmark ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function mb(bytes: number | undefined): number {
  return bytes === undefined || Number.isNaN(bytes) ? NaN : Math.round(bytes / (1 << 20));
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      Deno.exit(2);
    }
    console.error(`benchmark failed: ${(err as Error).stack ?? err}`);
    Deno.exit(1);
  }
}
