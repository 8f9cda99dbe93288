/**
 * The examples that need conditional writes and counters (per-key
 * consensus): the rate limiter (increment + TTL) and
 * the lock (ifAbsent + TTL, released with ifVersion), run against real
 * nodes, their output checked line by line. The nodes take a small
 * max_clock_skew_ms so that their vote floor (memory engine) passes soon.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster } from "./helpers/cluster.ts";
import { startConditionalCluster } from "./helpers/lwt.ts";
import { linesOf, RATE_LIMITER_OUTPUT, runDenoExample } from "./helpers/examples.ts";

clusterTest("examples: the rate limiter (increment + TTL) against three nodes", async () => {
  const cluster = await startConditionalCluster({ nodes: 3 });
  try {
    assert.deepEqual(
      linesOf(await runDenoExample("rate_limiter.ts", cluster.nodes[0].address)),
      RATE_LIMITER_OUTPUT,
    );
  } finally {
    await endCluster(cluster);
  }
});

clusterTest("examples: the lock (ifAbsent + TTL, release with ifVersion) against three nodes", async () => {
  const cluster = await startConditionalCluster({ nodes: 3 });
  try {
    assert.deepEqual(linesOf(await runDenoExample("lock.ts", cluster.nodes[2].address)), [
      "worker-a took the lock",
      "worker-b did not get the lock (held by worker-a)",
      "worker-a released it: true",
      "worker-b took the lock",
      "after worker-b's lease ran out worker-c took the lock",
      "worker-b's late release: false",
      "the lock is held by worker-c",
      "worker-c released it: true",
    ]);
  } finally {
    await endCluster(cluster);
  }
});
