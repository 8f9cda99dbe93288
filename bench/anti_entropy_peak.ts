/**
 * The benchmark's memory during anti-entropy: each node's peak resident
 * memory over its next anti-entropy round (the node logs "anti-entropy round
 * finished" after each). Peaks are reset first, so they cover the round and
 * what the node served meanwhile, not the loading before.
 */
import { type BenchCluster, memoryOf, resetPeakOf, sleep } from "./_procs.ts";

/** One node's round: its peak and what the round reported. */
export interface AntiEntropyPeak {
  id: string;
  peakMB: number;
  /** The round's duration and repairs, as the node logged them. */
  roundMs?: number;
  /** Buckets that differed, summed over the node's peers (each is streamed both ways). */
  buckets?: number;
  repaired?: number;
}

const ROUND = /anti-entropy round finished/;

/** Waits (up to `timeoutMs`) for one more round on every node; the peak of each meanwhile. */
export async function antiEntropyPeaks(cluster: BenchCluster, timeoutMs: number): Promise<AntiEntropyPeak[]> {
  const since = new Date().toISOString();
  for (const proc of cluster.procs.values()) resetPeakOf(proc.pid);
  // Log lines start with their ISO time: the first round line after `since` is the next round.
  const next = (lines: string[]) => lines.find((l) => l.slice(0, since.length) > since);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && [...cluster.procs.values()].some((p) => !next(p.grep(ROUND)))) {
    await sleep(250);
  }
  return [...cluster.procs].map(([id, proc]) => {
    const line = next(proc.grep(ROUND));
    const field = (name: string) => {
      const m = line && new RegExp(`${name}=([0-9]+)`).exec(line);
      return m ? Number(m[1]) : undefined;
    };
    const hwm = memoryOf(proc.pid)?.hwm ?? NaN;
    return {
      id,
      peakMB: Math.round(hwm / 1e6),
      roundMs: field("ms"),
      buckets: field("buckets"),
      repaired: field("repaired"),
    };
  });
}
