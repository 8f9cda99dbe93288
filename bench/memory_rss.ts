/**
 * Memory of the memory engine alone: loads N records of a given size into a
 * MemoryStorage in this process, then reports resident memory and V8 heap
 * after a full collection, after overwriting a share of the keys, and the
 * peak during full scans (what anti-entropy digests and recovery streaming
 * do). Run with the collector exposed:
 *
 *   deno run -A --v8-flags=--expose-gc bench/memory_rss.ts --records 1000000
 */
import { parseArgs } from "node:util";
import { MemoryStorage } from "../lib/storage/memory.ts";
import type { KvRecord } from "../lib/record.ts";

const { values } = parseArgs({
  options: {
    records: { type: "string", default: "1000000" },
    "value-size": { type: "string", default: "100" },
    overwrite: { type: "string", default: "0.2" },
    page: { type: "string", default: "1000" },
  },
});
const records = Number(values.records);
const valueSize = Number(values["value-size"]);
const page = Number(values.page);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

function mb(n: number): string {
  return (n / 1e6).toFixed(0).padStart(5);
}

function report(phase: string, peakRss?: number): void {
  gc!();
  const m = Deno.memoryUsage();
  const peak = peakRss === undefined ? "" : `  peak rss ${mb(peakRss)} MB`;
  console.log(
    `${phase.padEnd(26)} rss ${mb(m.rss)} MB  heap used ${mb(m.heapUsed)} MB  heap total ${
      mb(m.heapTotal)
    } MB  external ${mb(m.external)} MB${peak}`,
  );
}

function record(i: number, timestamp: number): KvRecord {
  const value = new Uint8Array(valueSize);
  for (let j = 0; j < valueSize; j++) value[j] = (i + j + timestamp) & 0xff;
  return { key: `key-${i}`, value, timestamp, versionNode: `node${1 + (i % 3)}`, tombstone: false };
}

async function load(s: MemoryStorage, from: number, to: number, timestamp: number): Promise<void> {
  for (let i = from; i < to; i += 1000) {
    const batch: KvRecord[] = [];
    for (let j = i; j < Math.min(to, i + 1000); j++) batch.push(record(j, timestamp));
    await s.apply(batch);
  }
}

async function scanPeak(s: MemoryStorage, versionsOnly: boolean): Promise<number> {
  let peak = 0;
  let cursor = "";
  let n = 0;
  do {
    const p = versionsOnly ? await s.scanVersions(cursor, page) : await s.scan(cursor, page);
    cursor = p.nextCursor;
    if (++n % 50 === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  } while (cursor !== "");
  return Math.max(peak, Deno.memoryUsage().rss);
}

report("empty");
const s = new MemoryStorage();
const t0 = performance.now();
await load(s, 0, records, 1);
console.log(
  `loaded ${records} records of ${valueSize} B in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
report("loaded");
await load(s, 0, Math.floor(records * Number(values.overwrite)), 2);
report(`overwrote ${values.overwrite} of keys`);
report("scan (records)", await scanPeak(s, false));
report("scan (versions)", await scanPeak(s, true));
console.log(`countLive ${await s.countLive()}  bytesHeld ${mb(s.bytesHeld())} MB`);
