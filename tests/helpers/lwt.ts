/**
 * Clusters for tests of conditional writes and counters. On the memory
 * engine a started node votes on a key only past 2 × limits.max_clock_skew_ms
 * after its start (lib/lwt/acceptor.ts): these clusters take a small skew
 * and wait that long, so their conditional operations run at once.
 */
import { sleep, TestCluster, type TestClusterOptions } from "./cluster.ts";

/** A skew small enough that the vote floor passes in seconds. */
export const LWT_MAX_CLOCK_SKEW_MS = 2000;

/** A memory cluster whose nodes already vote on conditional operations. */
export async function startConditionalCluster(opts: TestClusterOptions): Promise<TestCluster> {
  const cluster = await TestCluster.start({
    ...opts,
    extra: { ...opts.extra, limits: { max_clock_skew_ms: LWT_MAX_CLOCK_SKEW_MS, ...opts.extra?.limits } },
  });
  await sleep(2 * LWT_MAX_CLOCK_SKEW_MS + 300);
  return cluster;
}
