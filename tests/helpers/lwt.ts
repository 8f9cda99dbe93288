/**
 * Clusters for tests of conditional writes and counters. On the memory
 * engine a started node votes on a key once every member has told it its
 * highest ballot, and at the latest 2 × limits.max_clock_skew_ms after its
 * start (lib/lwt/vote_floor.ts): these clusters take a small skew and wait
 * that long, so their conditional operations run at once whatever the
 * load. Also a check that every copy of a key holds one expiry.
 */
import assert from "node:assert/strict";
import type { KvClient } from "../../lib/grpc/kv_client.ts";
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

/**
 * The expiry every copy of `key` holds, read from each node's own copy;
 * fails unless `copies` nodes hold it, all with the same expiry still ahead.
 */
export async function sharedExpiry(
  cluster: TestCluster,
  probe: KvClient,
  key: string,
  copies: number,
): Promise<number> {
  const reads = await Promise.all(
    cluster.nodes.map((n) => probe.get(key, { fromReplica: true, address: n.address })),
  );
  const expiries = reads.filter((r) => r.found).map((r) => r.expiresAtMs);
  assert.equal(expiries.length, copies, `${key}: ${expiries.length} copies`);
  assert.ok(
    expiries[0]! > Date.now() && expiries.every((e) => e === expiries[0]),
    `${key}: copies disagree: ${expiries}`,
  );
  return expiries[0]!;
}
