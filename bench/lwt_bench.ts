/**
 * What conditional writes and counters cost beside plain puts, for
 * `deno task benchmark`: the same client, cluster and concurrency, four
 * short rows: plain put, put-if-absent on fresh keys (one Paxos round per
 * write: prepare with the read, accept, commit), increment over the key
 * space, and increment of one hot counter (every caller on one key: the
 * key's leader runs them one at a time).
 */
import { Histogram } from "../lib/bench/histogram.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import { sleep } from "../lib/async.ts";

/** One measured row. */
export interface LwtRow {
  row: string;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** Options of {@link runLwtRows}. */
export interface LwtBenchOptions {
  durationS: number;
  concurrency: number;
  keys: number;
  valueSize: number;
}

type Call = (worker: number, i: number) => Promise<unknown>;

/** Runs the rows against a cluster (waiting first, bounded, until its nodes vote: acceptor.ts). */
export async function runLwtRows(client: KvClient, o: LwtBenchOptions): Promise<LwtRow[]> {
  await waitVoting(client);
  const value = "x".repeat(o.valueSize);
  const run = Date.now().toString(36);
  const key = (i: number) => `lwt:${run}:${i % o.keys}`;
  const rows: [string, Call][] = [
    ["plain put", (_, i) => client.put(key(i), value)],
    ["put if absent", (w, i) => client.putIf(`lwt:${run}:new:${w}:${i}`, value, { kind: "absent" })],
    ["increment", (_, i) => client.increment(`lwt:${run}:n:${i % o.keys}`)],
    ["increment 1 key", () => client.increment(`lwt:${run}:hot`)],
  ];
  const out: LwtRow[] = [];
  for (const [row, call] of rows) out.push(await measure(row, call, o));
  return out;
}

async function measure(row: string, call: Call, o: LwtBenchOptions): Promise<LwtRow> {
  const hist = new Histogram();
  let errors = 0;
  const end = performance.now() + o.durationS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.concurrency }, async (_, w) => {
    for (let i = w; performance.now() < end; i += o.concurrency) {
      const s = performance.now();
      try {
        await call(w, i);
        hist.record((performance.now() - s) * 1000);
      } catch {
        errors++;
      }
    }
  }));
  const s = hist.summary();
  const seconds = (performance.now() - t0) / 1000;
  return { row, opsPerS: Math.round(hist.count / seconds), p50Ms: s.p50Ms, p99Ms: s.p99Ms, errors };
}

/** A memory node votes only after 2 × max_clock_skew_ms from its start: wait for it (at most ~3 min). */
async function waitVoting(client: KvClient): Promise<void> {
  for (let i = 0; i < 360; i++) {
    const probes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, k) => client.increment(`lwt:probe:${k}`, 0)),
    );
    if (probes.every((p) => p.status === "fulfilled")) return;
    await sleep(500);
  }
}

/** The rows as a small table. */
export function lwtText(rows: LwtRow[]): string {
  const lines = rows.map((r) =>
    `  ${r.row.padEnd(16)} ${String(r.opsPerS).padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${
      r.p99Ms.toFixed(2).padStart(8)
    } ${String(r.errors).padStart(6)}`
  );
  return [
    "conditional writes and counters (memory cluster, rf 2):",
    "  row                 ops/s  p50 ms   p99 ms  errors",
    ...lines,
  ]
    .join("\n");
}
