/**
 * The test harness itself (tests/helpers/cluster.ts): a node that dies
 * without the test killing it fails the test that started it, and
 * `isRunning()` follows the real process, not what the test asked.
 */
import assert from "node:assert/strict";
import { clusterTest, TestCluster, unexpectedExit } from "./helpers/cluster.ts";

const status = (code: number, signal: Deno.Signal | null = null): Deno.CommandStatus => ({
  success: code === 0,
  code,
  signal,
});

Deno.test("an exit the test did not ask for is a failure; a kill or a clean stop is not", () => {
  assert.match(unexpectedExit(undefined, status(134, "SIGABRT"))!, /died by itself.*134.*SIGABRT/);
  assert.match(unexpectedExit(undefined, status(139, "SIGSEGV"))!, /died by itself/);
  assert.match(unexpectedExit(undefined, status(0))!, /died by itself/);
  assert.equal(unexpectedExit("killed", status(137, "SIGKILL")), undefined);
  assert.equal(unexpectedExit("killed", status(134, "SIGABRT")), undefined);
  assert.equal(unexpectedExit("stopped", status(0)), undefined);
  assert.equal(unexpectedExit("stopped", status(143, "SIGTERM")), undefined);
  assert.match(unexpectedExit("stopped", status(134, "SIGABRT"))!, /did not stop cleanly/);
  assert.match(unexpectedExit("stopped", status(1))!, /did not stop cleanly/);
  assert.match(unexpectedExit("hung", status(137, "SIGKILL"))!, /did not exit within \d+ ms of SIGTERM/);
});

clusterTest("a node killed behind the harness's back turns isRunning false and fails stop()", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1 });
  let stopError: unknown;
  try {
    assert.equal(cluster.isRunning("node2"), true);
    // Not through the harness: as if the node had crashed.
    Deno.kill(cluster.pid("node2"), "SIGKILL");
    await cluster.waitFor(() => !cluster.isRunning("node2"), 10_000, "isRunning(node2) to turn false");
    assert.equal(cluster.isRunning("node1"), true);
    await cluster.waitFor(() => cluster.failures().length > 0, 10_000, "the harness to record the death");
    assert.match(
      cluster.failures()[0],
      /^node2 \(pid \d+\) died by itself \(exit code 137, signal SIGKILL\)/,
    );
    await assert.rejects(() => cluster.kill("node2"), /node2 is not running: node2 .* died by itself/);
  } finally {
    await cluster.stop().catch((err) => stopError = err);
  }
  assert.match(String(stopError), /a node of this test failed:\nnode2 .*died by itself/);
});

clusterTest("nodes the test kills or stops do not fail it", async () => {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1 });
  await cluster.kill("node2");
  assert.equal(cluster.isRunning("node2"), false);
  await cluster.signal("node1", "SIGTERM");
  assert.equal(cluster.isRunning("node1"), false);
  await cluster.stop();
  assert.deepEqual(cluster.failures(), []);
});
