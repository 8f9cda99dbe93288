/**
 * The cold-start window: peers that are not up yet at a cold start are
 * "waiting for nodeN" (once, at info), not warnings; a cluster whose nodes
 * start a little apart logs no WARN and no empty "Resolution note".
 */
import assert from "node:assert/strict";
import { ColdStart } from "../lib/cold_start.ts";
import { Logger } from "../lib/log.ts";
import { clusterTest, endCluster, logLines, sleep, TestCluster } from "./helpers/cluster.ts";

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "debug", format: "text", write: (l) => lines.push(l) }), lines };
}

Deno.test("a silent peer is 'waiting for' once, inside the window only", async () => {
  let now = 1000;
  const { log, lines } = capture();
  const cs = new ColdStart({ windowMs: 50, log, clock: () => now });
  assert.equal(cs.open(), true);
  assert.equal(cs.closesAt(), 1050);
  assert.equal(cs.expected("node2"), true);
  assert.equal(cs.expected("node2"), true);
  await sleep(120); // the notice waits min(1 s, window) for the peer to answer
  assert.deepEqual(lines.filter((l) => l.includes("waiting for node2")).length, 1);
  cs.heard("node2");
  assert.equal(lines.filter((l) => l.includes("node2 is up")).length, 1);
  now = 1050;
  assert.equal(cs.open(), false);
  assert.equal(cs.expected("node3"), false, "after the window a failure is a failure");
});

Deno.test("a peer heard from before the notice is never 'waited for'", async () => {
  const { log, lines } = capture();
  const cs = new ColdStart({ windowMs: 40, log });
  cs.expected("node2");
  cs.heard("node2");
  await sleep(100);
  assert.deepEqual(lines, []);
});

clusterTest(
  "nodes started a little apart log no WARN, no Resolution note, and wait for the late peer once",
  async () => {
    const cluster = await TestCluster.start({ startOnly: [], heartbeatMs: 200, failureMs: 6000 });
    try {
      // Processes spawned 0.7 s apart (each takes a second or more to listen).
      const started = [cluster.startNode("node1")];
      await sleep(700);
      started.push(cluster.startNode("node2"));
      await sleep(700);
      started.push(cluster.startNode("node3"));
      await Promise.all(started);
      await cluster.waitActive();
      await sleep(500);
      for (const n of cluster.nodes) {
        const bad = cluster.logs(n.id).split("\n").filter((l) =>
          / (WARN|ERROR) /.test(l) || l.includes("Resolution note") || l.includes("SUSPECTED")
        );
        assert.deepEqual(bad, [], `${n.id} logged:\n${cluster.logs(n.id)}`);
      }
      // node1 listens well before node3 (how long before depends on the load), so
      // it waits for node3 at most once, and says when it is up if it did.
      const waited = logLines(cluster, "node1", "waiting for node3").length;
      assert.ok(waited <= 1, cluster.logs("node1"));
      assert.equal(logLines(cluster, "node1", "node3 is up").length, waited, cluster.logs("node1"));
      // Each node recovered from both peers: none gave up on a late one.
      for (const n of cluster.nodes) {
        const [done] = logLines(cluster, n.id, "recovery finished");
        assert.match(done, /from=node\d,node\d/, cluster.logs(n.id));
      }
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);
