/**
 * What one forward costs each end: this process plays node1 with the
 * transport a node uses (lib/grpc/peer_client.ts) and sends one-key
 * forwards, one at a time, to a real node2 process that owns the keys
 * (cluster secret on, as nodes run). It prints, per forward, the round
 * trip and the CPU time of node2 (/proc/PID/stat) and of this process.
 * One at a time, so nothing is coalesced: the cost of a lone forward.
 *
 *   deno run -A bench/forward_cost.ts [--count 3000] [--rounds 2]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { keysOwnedBy, ringOf, TestCluster } from "../tests/helpers/cluster.ts";
import { cpuSecondsOf } from "./_procs.ts";

const { values } = parseArgs({
  options: { count: { type: "string", default: "3000" }, rounds: { type: "string", default: "2" } },
});
const count = Number(values.count);
const rounds = Number(values.rounds);

const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1, startOnly: ["node2"] });
const transport = cluster.peerTransport("node1", "node2", { timeoutMs: 5000 });
try {
  const keys = keysOwnedBy(ringOf(cluster), "node2", "fc:", 1000);
  const value = new Uint8Array(100);
  const pid = cluster.pid("node2");
  for (let round = 0; round < rounds; round++) {
    for (const kind of ["get", "put"] as const) {
      const owner0 = cpuSecondsOf(pid) ?? NaN;
      const self0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const key = keys[i % keys.length];
        if (kind === "put") {
          await transport.forwardWrites("node2", [{ key, value, timestamp: 0, tombstone: false }]);
        } else await transport.forwardReads("node2", [key]);
      }
      const us = (performance.now() - t0) * 1000 / count;
      const owner = ((cpuSecondsOf(pid) ?? NaN) - owner0) * 1e6 / count;
      const used = process.cpuUsage(self0);
      const sender = (used.user + used.system) / count;
      console.log(
        `${kind}: ${us.toFixed(0)} us per forward; CPU per forward: owner ${owner.toFixed(0)} us, sender ${
          sender.toFixed(0)
        } us`,
      );
    }
  }
} finally {
  transport.close();
  await cluster.stop();
}
