/**
 * `kvstore bench`: a closed-loop load generator against a running cluster.
 *
 * Runs `--concurrency` callers through the routing client for `--duration`
 * seconds or exactly `--ops` calls, then prints throughput, latency
 * percentiles and errors by gRPC status (`--json`: one JSON line). Exit 0
 * when the load ran, even if calls failed (they are reported); 2 on bad
 * flags or when no node could be reached to start.
 */
import { clientTlsFrom, TLS_FLAGS, TLS_HELP } from "./tls_flags.ts";
import { clientTokenFrom, TOKEN_FLAG, TOKEN_HELP } from "./token_flag.ts";
import type { ClientTls } from "../security/tls.ts";
import { KvClient } from "../grpc/kv_client.ts";
import { errorMessage } from "../errors.ts";
import { type BenchOp, type LoadResult, preloadKeys, type PreloadResult, runLoad } from "../bench/load.ts";
import { configFrom, EXIT, intFlag, numberFlag, parseAddress, parseFlags, UsageError } from "./common.ts";

const HELP = `kvstore bench [flags]

Sends requests from concurrent callers, each waiting for its answer before
sending the next, and reports throughput, latency and errors.

Flags:
  --addr HOST:PORT     node(s) to contact; repeat or separate with commas
                       (default: every node of the config file)
  --config FILE        cluster file whose nodes are the default --addr
  --op OP              put, get, delete or mixed (default mixed)
  --read-ratio R       share of gets in a mixed load, 0..1 (default 0.9)
  --concurrency N      concurrent callers (default 32)
  --duration S         run for S seconds (default 10)
  --ops N              send exactly N calls instead of running for a duration
  --keys N             size of the key space bench:0 .. bench:N-1 (default 10000)
  --value-size BYTES   bytes per value (default 100)
  --preload            write every key of the key space first (not measured)
  --warmup S           run the same load for S seconds first, not measured (default 0)
  --batch N            N keys per call with MultiPut/MultiGet/MultiDelete (default 1: unary calls)
  --no-route           send every call to the first address (it forwards);
                       default: each key straight to its owner
  --spread             with --no-route, send calls round-robin over every --addr
                       (a plain client that knows all nodes but not the ring)
  --timeout MS         deadline of each call (default 5000)
  --json               print one JSON line instead of the report
${TLS_HELP}
${TOKEN_HELP}
  -h, --help           this help

A call is one request: with --batch N it carries N keys, so keys/s = N x ops/s.
Values are derived from their keys, so every value read is checked.`;

/** Settings of one bench run, as parsed from the flags. */
export interface BenchSettings {
  addresses: string[];
  /** TLS to the nodes (--tls, --ca, --cert, --key); plaintext when absent. */
  tls?: ClientTls;
  /** The client token's file (--token-file), for clusters with security.client_token_file. */
  tokenFile?: string;
  op: BenchOp;
  readRatio: number;
  concurrency: number;
  durationS?: number;
  ops?: number;
  keys: number;
  valueSize: number;
  preload: boolean;
  warmupS: number;
  batch: number;
  route: boolean;
  /** Without routing: round-robin over the addresses. */
  spread?: boolean;
  timeoutMs: number;
  json: boolean;
}

/** Runs the bench mode; resolves with the exit code. */
export async function benchCommand(args: string[]): Promise<number> {
  const s = parseBenchFlags(args);
  if (s === undefined) return EXIT.OK;
  const clientToken = await clientTokenFrom({ "token-file": s.tokenFile });
  let client: KvClient;
  try {
    client = await KvClient.connect(s.addresses, {
      route: s.route,
      spread: s.spread,
      timeoutMs: s.timeoutMs,
      tls: s.tls,
      clientToken,
    });
  } catch (err) {
    console.error(`error: cannot reach the cluster at ${s.addresses.join(", ")}: ${errorMessage(err)}`);
    return EXIT.ERROR;
  }
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const preload = s.preload
      ? await preloadKeys(client, {
        keys: s.keys,
        valueSize: s.valueSize,
        batch: Math.min(500, Math.max(s.batch, 100)),
        concurrency: Math.min(s.concurrency, 8),
      })
      : undefined;
    const live = !s.json && Deno.stdout.isTerminal();
    if (!s.json) console.log(describe(s, preload));
    const load = {
      op: s.op,
      readRatio: s.readRatio,
      concurrency: s.concurrency,
      keys: s.keys,
      valueSize: s.valueSize,
      batch: s.batch,
      signal: abort.signal,
    };
    if (s.warmupS > 0) await runLoad(client, { ...load, durationMs: s.warmupS * 1000 });
    const result = await runLoad(client, {
      ...load,
      durationMs: s.durationS !== undefined ? s.durationS * 1000 : undefined,
      totalOps: s.ops,
      onProgress: live ? (p) => progressLine(p.elapsedMs, p.ops, p.errors, p.recentOpsPerSec) : undefined,
    });
    if (live) writeOut("\r\x1b[K");
    console.log(s.json ? JSON.stringify(benchJson(s, result, preload)) : report(result));
    return EXIT.OK;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    client.close();
  }
}

/** Parses and checks the flags; undefined after printing --help. */
export function parseBenchFlags(args: string[]): BenchSettings | undefined {
  const { values, positionals } = parseFlags(args, {
    addr: { type: "string", multiple: true },
    config: { type: "string" },
    op: { type: "string" },
    "read-ratio": { type: "string" },
    concurrency: { type: "string" },
    duration: { type: "string" },
    ops: { type: "string" },
    keys: { type: "string" },
    "value-size": { type: "string" },
    preload: { type: "boolean" },
    warmup: { type: "string" },
    batch: { type: "string" },
    "no-route": { type: "boolean" },
    spread: { type: "boolean" },
    timeout: { type: "string" },
    json: { type: "boolean" },
    ...TLS_FLAGS,
    ...TOKEN_FLAG,
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const op = values.op ?? "mixed";
  if (!["put", "get", "delete", "mixed"].includes(op)) {
    throw new UsageError(`--op must be put, get, delete or mixed, not "${op}"`);
  }
  if (values.spread && !values["no-route"]) throw new UsageError("--spread goes with --no-route");
  if (values.duration !== undefined && values.ops !== undefined) {
    throw new UsageError("give --duration or --ops, not both");
  }
  const addresses = values.addr && values.addr.length > 0
    ? values.addr.flatMap((a) => a.split(",")).map((a) => a.trim()).filter((a) => a !== "").map(parseAddress)
    : configFrom(values.config).nodes.map((n) => `${n.host}:${n.port}`);
  if (addresses.length === 0) throw new UsageError("--addr names no address");
  const durationS = values.ops !== undefined
    ? undefined
    : numberFlag(values.duration ?? "10", "--duration", 0.001);
  return {
    addresses,
    tls: clientTlsFrom(values),
    ...(values["token-file"] !== undefined ? { tokenFile: values["token-file"] } : {}),
    op: op as BenchOp,
    readRatio: numberFlag(values["read-ratio"] ?? "0.9", "--read-ratio", 0, 1),
    concurrency: intFlag(values.concurrency ?? "32", "--concurrency", 1),
    durationS,
    ops: values.ops !== undefined ? intFlag(values.ops, "--ops", 1) : undefined,
    keys: intFlag(values.keys ?? "10000", "--keys", 1),
    valueSize: intFlag(values["value-size"] ?? "100", "--value-size", 0),
    preload: values.preload ?? false,
    warmupS: numberFlag(values.warmup ?? "0", "--warmup", 0),
    batch: intFlag(values.batch ?? "1", "--batch", 1),
    route: !values["no-route"],
    spread: values.spread ?? false,
    timeoutMs: intFlag(values.timeout ?? "5000", "--timeout", 1),
    json: values.json ?? false,
  };
}

/** The machine-readable result of a run (the `--json` line). */
export function benchJson(s: BenchSettings, r: LoadResult, preload?: PreloadResult) {
  const secs = r.elapsedMs / 1000;
  const lat = r.latency.summary();
  return {
    op: s.op,
    read_ratio: s.op === "mixed" ? s.readRatio : undefined,
    concurrency: s.concurrency,
    batch: s.batch,
    key_space: s.keys,
    value_size: s.valueSize,
    route: s.route,
    spread: s.spread ?? false,
    addresses: s.addresses,
    duration_s: s.durationS ?? null,
    ops_target: s.ops ?? null,
    warmup_s: s.warmupS,
    preload: preload
      ? { keys: preload.keys, seconds: round(preload.elapsedMs / 1000, 3), errors: preload.errors }
      : null,
    elapsed_s: round(secs, 3),
    ops: r.ops,
    keys: r.keys,
    ops_per_s: round(r.ops / Math.max(secs, 1e-9), 1),
    keys_per_s: round(r.keys / Math.max(secs, 1e-9), 1),
    latency_ms: {
      count: lat.count,
      min: lat.minMs,
      mean: round(lat.meanMs, 3),
      p50: lat.p50Ms,
      p95: lat.p95Ms,
      p99: lat.p99Ms,
      p999: lat.p999Ms,
      max: lat.maxMs,
    },
    calls: r.calls,
    reads: { found: r.reads.found, not_found: r.reads.notFound, mismatched: r.reads.mismatched },
    errors: r.errors,
    error_count: Object.values(r.errors).reduce((a, b) => a + b, 0),
  };
}

function describe(s: BenchSettings, preload?: PreloadResult): string {
  const what = s.op === "mixed" ? `mixed (${Math.round(s.readRatio * 100)}% get)` : s.op;
  const amount = s.ops !== undefined ? `${s.ops} calls` : `${s.durationS} s`;
  const calls = s.batch > 1 ? `batches of ${s.batch}` : "unary calls";
  const route = s.route
    ? `routed over ${s.addresses.join(", ")}`
    : s.spread
    ? `round-robin over ${s.addresses.join(", ")}`
    : `all via ${s.addresses[0]}`;
  const pre = preload
    ? `\npreloaded ${preload.keys} keys in ${(preload.elapsedMs / 1000).toFixed(2)} s${
      errorText(preload.errors) === "none" ? "" : ` (errors: ${errorText(preload.errors)})`
    }`
    : "";
  return `bench: ${what}, ${s.concurrency} callers, ${amount}, ${s.keys} keys, ${s.valueSize}-byte values, ` +
    `${calls}, ${route}${pre}`;
}

function report(r: LoadResult): string {
  const secs = r.elapsedMs / 1000;
  const lat = r.latency.summary();
  const reads = r.calls.get > 0
    ? `\nreads    ${r.reads.found} found, ${r.reads.notFound} not found, ${r.reads.mismatched} wrong value`
    : "";
  return [
    `calls    ${r.ops} in ${
      secs.toFixed(2)
    } s (put ${r.calls.put}, get ${r.calls.get}, delete ${r.calls.delete})`,
    `rate     ${fmt(r.ops / secs)} ops/s, ${fmt(r.keys / secs)} keys/s`,
    `latency  p50 ${lat.p50Ms} ms, p95 ${lat.p95Ms} ms, p99 ${lat.p99Ms} ms, max ${lat.maxMs} ms ` +
    `(mean ${lat.meanMs.toFixed(3)} ms)`,
  ].join("\n") + reads + `\nerrors   ${errorText(r.errors)}`;
}

function errorText(errors: Record<string, number>): string {
  const parts = Object.entries(errors).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

function progressLine(elapsedMs: number, ops: number, errors: number, recent: number): void {
  writeOut(
    `\r\x1b[K${(elapsedMs / 1000).toFixed(0)} s: ${ops} calls, ${fmt(recent)} ops/s, ${errors} errors`,
  );
}

const encoder = new TextEncoder();

function writeOut(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
