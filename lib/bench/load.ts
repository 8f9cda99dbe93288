/**
 * The closed-loop load generator behind `kvstore bench`.
 *
 * `concurrency` callers each send one request, wait for its answer, and send
 * the next, for a duration or until exactly `totalOps` requests have been
 * sent in all. A request is one call: a unary Put/Get/Delete, or with
 * `batch` > 1 one MultiPut/MultiGet/MultiDelete of `batch` keys (keys/s
 * counts those keys). Every call's latency goes into a histogram; failures
 * are counted by gRPC status name, for whole calls and for single items of a
 * batch. Values are a function of their key, so every value read back is
 * checked: a wrong one counts as a mismatch.
 */
import * as grpc from "@grpc/grpc-js";
import type { KvClient, PutItem } from "../grpc/kv_client.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import { KvError } from "../errors.ts";
import { Histogram } from "./histogram.ts";

/** What the load needs of a client: the store's, or another store's for comparison. */
export type LoadClient = Pick<KvClient, "get" | "put" | "delete" | "multiGet" | "multiPut" | "multiDelete">;

/** What the callers send. */
export type BenchOp = "put" | "get" | "delete" | "mixed";

/** Options of {@link runLoad}. */
export interface LoadOptions {
  op: BenchOp;
  /** Share of gets in a mixed load, 0..1. */
  readRatio: number;
  concurrency: number;
  /** Run this long; ignored when `totalOps` is set. */
  durationMs?: number;
  /** Send exactly this many calls in all. */
  totalOps?: number;
  /** Size of the key space: keys are `${keyPrefix}0` .. `${keyPrefix}${keys - 1}`. */
  keys: number;
  valueSize: number;
  /** Keys per call; 1 uses the unary RPCs. */
  batch: number;
  keyPrefix?: string;
  /** Called about once per `progressMs` while the load runs. */
  onProgress?: (p: Progress) => void;
  progressMs?: number;
  /** Stops the callers early (Ctrl+C); what ran is still reported. */
  signal?: AbortSignal;
}

/** Where a running load stands. */
export interface Progress {
  elapsedMs: number;
  ops: number;
  errors: number;
  /** Calls per second over the last interval. */
  recentOpsPerSec: number;
}

/** What a load achieved. */
export interface LoadResult {
  /** Calls completed (successful or not). */
  ops: number;
  /** Keys those calls carried. */
  keys: number;
  elapsedMs: number;
  /** Latency of every call, in microseconds. */
  latency: Histogram;
  /** Failed calls and failed batch items, by gRPC status name. */
  errors: Record<string, number>;
  /** Calls by kind. */
  calls: { put: number; get: number; delete: number };
  /** Reads answered: found with the expected value, not found, found with another value. */
  reads: { found: number; notFound: number; mismatched: number };
}

const DEFAULT_PREFIX = "bench:";

/** The key of index `i` in the bench key space. */
export function benchKey(i: number, prefix: string = DEFAULT_PREFIX): string {
  return prefix + i;
}

/**
 * The value the bench stores under a key: the key's text repeated to
 * `size` bytes (after a `|`), so a value read back can be checked.
 */
export function benchValue(key: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const pattern = new TextEncoder().encode(`${key}|`);
  for (let i = 0; i < size; i++) out[i] = pattern[i % pattern.length];
  return out;
}

/** The name of a gRPC status code ("UNAVAILABLE"), for reports. */
export function statusName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** Keys and their values, built once for small key spaces and on demand for large ones. */
class KeySpace {
  readonly #keys?: string[];
  readonly #values?: Uint8Array[];

  constructor(readonly size: number, readonly valueSize: number, readonly prefix: string) {
    if (size * (valueSize + 32) <= 64 << 20) {
      this.#keys = Array.from({ length: size }, (_, i) => benchKey(i, prefix));
      this.#values = this.#keys.map((k) => benchValue(k, valueSize));
    }
  }

  key(i: number): string {
    return this.#keys ? this.#keys[i] : benchKey(i, this.prefix);
  }

  value(i: number, key: string): Uint8Array {
    return this.#values ? this.#values[i] : benchValue(key, this.valueSize);
  }

  /** `count` consecutive distinct indexes from a random start, wrapping. */
  window(count: number): number[] {
    const start = Math.floor(Math.random() * this.size);
    const n = Math.min(count, this.size);
    const out = new Array<number>(n);
    for (let j = 0; j < n; j++) out[j] = (start + j) % this.size;
    return out;
  }
}

/** Runs a closed-loop load against the cluster behind `client`. */
export async function runLoad(client: LoadClient, o: LoadOptions): Promise<LoadResult> {
  if (o.totalOps === undefined && o.durationMs === undefined) throw new RangeError("duration or ops needed");
  const space = new KeySpace(o.keys, o.valueSize, o.keyPrefix ?? DEFAULT_PREFIX);
  const result: LoadResult = {
    ops: 0,
    keys: 0,
    elapsedMs: 0,
    latency: new Histogram(),
    errors: {},
    calls: { put: 0, get: 0, delete: 0 },
    reads: { found: 0, notFound: 0, mismatched: 0 },
  };
  let errorCount = 0;
  const countError = (name: string, n = 1) => {
    result.errors[name] = (result.errors[name] ?? 0) + n;
    errorCount += n;
  };
  const checkRead = (r: ReadResult, expected: Uint8Array) => {
    if (r.code !== 0) countError(statusName(r.code));
    else if (!r.found) result.reads.notFound++;
    else if (sameBytes(r.value, expected)) result.reads.found++;
    else result.reads.mismatched++;
  };
  const checkWrite = (r: WriteResult) => {
    if (r.code !== 0) countError(statusName(r.code));
  };

  const started = performance.now();
  const deadline = o.totalOps === undefined ? started + o.durationMs! : Infinity;
  let issued = 0;
  const more = () => {
    if (o.signal?.aborted) return false;
    if (o.totalOps !== undefined) return issued < o.totalOps;
    return performance.now() < deadline;
  };

  async function one(): Promise<void> {
    const kind: "put" | "get" | "delete" = o.op === "mixed"
      ? (Math.random() < o.readRatio ? "get" : "put")
      : o.op;
    result.calls[kind]++;
    const idx = space.window(o.batch);
    const t0 = performance.now();
    try {
      if (o.batch === 1) {
        const i = idx[0];
        const key = space.key(i);
        if (kind === "get") checkRead(await client.get(key), space.value(i, key));
        else if (kind === "put") await client.put(key, space.value(i, key));
        else await client.delete(key);
      } else {
        const keys = idx.map((i) => space.key(i));
        if (kind === "get") {
          const rs = await client.multiGet(keys);
          rs.forEach((r, j) => checkRead(r, space.value(idx[j], keys[j])));
        } else if (kind === "put") {
          const items: PutItem[] = keys.map((key, j) => ({ key, value: space.value(idx[j], key) }));
          (await client.multiPut(items)).forEach(checkWrite);
        } else {
          (await client.multiDelete(keys)).forEach(checkWrite);
        }
      }
    } catch (err) {
      countError(err instanceof KvError ? statusName(err.code) : "CLIENT_ERROR");
    }
    result.latency.record((performance.now() - t0) * 1000);
    result.ops++;
    result.keys += idx.length;
  }

  async function caller(): Promise<void> {
    while (more()) {
      issued++;
      await one();
    }
  }

  let lastOps = 0;
  let lastAt = started;
  const timer = o.onProgress
    ? setInterval(() => {
      const now = performance.now();
      o.onProgress!({
        elapsedMs: now - started,
        ops: result.ops,
        errors: errorCount,
        recentOpsPerSec: ((result.ops - lastOps) * 1000) / Math.max(now - lastAt, 1),
      });
      lastOps = result.ops;
      lastAt = now;
    }, o.progressMs ?? 1000)
    : undefined;
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, caller));
  } finally {
    clearInterval(timer);
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/** Options of {@link preloadKeys}. */
export interface PreloadOptions {
  keys: number;
  valueSize: number;
  /** Keys per MultiPut call. */
  batch?: number;
  concurrency?: number;
  keyPrefix?: string;
  /** Writes from this index (default 0). */
  from?: number;
}

/** What a preload did. */
export interface PreloadResult {
  keys: number;
  elapsedMs: number;
  errors: Record<string, number>;
}

/** Writes every key of the key space once, in batches, so reads find them. */
export async function preloadKeys(client: LoadClient, o: PreloadOptions): Promise<PreloadResult> {
  const batch = Math.max(1, o.batch ?? 500);
  const prefix = o.keyPrefix ?? DEFAULT_PREFIX;
  const end = o.keys;
  let next = o.from ?? 0;
  const errors: Record<string, number> = {};
  const count = (name: string, n = 1) => errors[name] = (errors[name] ?? 0) + n;
  const started = performance.now();
  async function writer(): Promise<void> {
    while (next < end) {
      const from = next;
      next = Math.min(end, next + batch);
      const items: PutItem[] = [];
      for (let i = from; i < next; i++) {
        const key = benchKey(i, prefix);
        items.push({ key, value: benchValue(key, o.valueSize) });
      }
      try {
        for (const r of await client.multiPut(items)) if (r.code !== 0) count(statusName(r.code));
      } catch (err) {
        count(err instanceof KvError ? statusName(err.code) : "CLIENT_ERROR", items.length);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 8) }, writer));
  return { keys: end - (o.from ?? 0), elapsedMs: performance.now() - started, errors };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
