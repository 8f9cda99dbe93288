/**
 * A node whose own process was paused (SIGSTOP here; a long GC, a starved
 * CPU, a VM stall in life) heard nothing from its peers meanwhile because
 * it was not running, not because they were silent: when it resumes it
 * must not suspect them (lib/detector.ts credits the pause), while its
 * peers, which kept running, do notice it was gone.
 */
import assert from "node:assert/strict";
import { clusterTest, logLines, TestCluster } from "./helpers/cluster.ts";
import { sleep } from "../lib/async.ts";

const HEARTBEAT_MS = 250;
const SUSPECT_MS = 4 * HEARTBEAT_MS;
const FAILURE_MS = 16 * HEARTBEAT_MS;
/** Longer than the suspect timeout, shorter than the failure timeout. */
const PAUSE_MS = 3 * SUSPECT_MS;

clusterTest("a node resuming from a pause of its own does not suspect its peers", async () => {
  const cluster = await TestCluster.start({
    nodes: 3,
    heartbeatMs: HEARTBEAT_MS,
    suspectMs: SUSPECT_MS,
    failureMs: FAILURE_MS,
  });
  try {
    // Past the cold-start window (failure_timeout_ms), whose transitions are logged at debug only.
    await sleep(FAILURE_MS + 2 * HEARTBEAT_MS);
    const before = logLines(cluster, "node1", "is now SUSPECTED").length;
    await cluster.signal("node1", "SIGSTOP");
    await sleep(PAUSE_MS);
    await cluster.signal("node1", "SIGCONT");
    await sleep(5 * HEARTBEAT_MS);
    const after = logLines(cluster, "node1", "is now SUSPECTED").slice(before);
    const noticed = ["node2", "node3"].filter((id) =>
      logLines(cluster, id, "peer node1 is now SUSPECTED").length > 0
    );
    console.log(
      `  paused ${PAUSE_MS} ms; node1 suspected afterwards: ${after.length}; peers that noticed: ${noticed}`,
    );
    for (const line of after) console.log(`    ${line}`);
    assert.deepEqual(after, [], "node1 suspected its peers for its own pause");
    assert.deepEqual(noticed, ["node2", "node3"], "the peers that kept running noticed node1's silence");
  } finally {
    await cluster.stop();
  }
});
