/**
 * Bounded versions with real node processes: a client timestamp far ahead
 * of the nodes' clocks is refused and stores nothing; second and
 * millisecond timestamps keep last-write-wins order by real time against
 * cluster-stamped writes; a version pushed by a peer far ahead is refused.
 */
import assert from "node:assert/strict";
import { clusterTest, kvError, ringOf, TestCluster, text } from "./helpers/cluster.ts";
import { Code } from "../lib/errors.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";

const TEN_YEARS_MS = 10 * 365 * 86_400_000;

clusterTest(
  "a Put ten years ahead, in seconds, milliseconds or microseconds, is INVALID_ARGUMENT and stores nothing",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3 });
    try {
      const client = await cluster.client();
      const far = Date.now() + TEN_YEARS_MS;
      for (const [unit, ts] of [["s", Math.floor(far / 1000)], ["ms", far], ["us", far * 1000]] as const) {
        const key = `frozen-${unit}`;
        const err = await kvError(() => client.put(key, "evil", { timestamp: ts }));
        assert.equal(err.code, Code.INVALID_ARGUMENT, err.message);
        assert.match(
          err.message,
          /ahead of this node's clock; the limit is 60000 ms \(limits.max_clock_skew_ms\)/,
        );
        for (const n of cluster.nodes) {
          const r = await client.get(key, { fromReplica: true, address: n.address });
          assert.equal(r.found, false, `${key} on ${n.id}`);
        }
        // The key is not frozen: an honest write right after is applied.
        const ok = await client.put(key, "honest");
        assert.equal(ok.ok, true, ok.message);
        assert.equal(text.decode((await client.get(key)).value), "honest");
      }
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "second and millisecond timestamps interleaved with cluster-stamped puts keep last-write-wins order by real time",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3 });
    try {
      const client = await cluster.client();
      const modes = ["cluster", "seconds", "millis", "seconds", "cluster", "millis", "millis", "seconds"];
      for (const key of ["order-a", "order-b", "order-c"]) {
        let last = 0;
        for (let i = 0; i < 40; i++) {
          const mode = modes[i % modes.length];
          const now = Date.now();
          const timestamp = mode === "seconds" ? Math.floor(now / 1000) : mode === "millis" ? now : 0;
          const r = await client.put(key, `${mode}-${i}`, { timestamp });
          assert.equal(r.ok, true, `put ${i} (${mode}) after a newer-looking one: ${r.message}`);
          assert.ok(r.timestamp > last, `version ${r.timestamp} of put ${i} (${mode}) is after ${last}`);
          last = r.timestamp;
          assert.equal(text.decode((await client.get(key)).value), `${mode}-${i}`);
        }
        // A timestamp truly in the past still loses, in either unit.
        for (const ts of [Math.floor(Date.now() / 1000) - 5, Date.now() - 5000]) {
          const stale = await client.put(key, "stale", { timestamp: ts });
          assert.equal(stale.ok, false);
          assert.equal(stale.code, Code.FAILED_PRECONDITION);
        }
        // Both copies agree on the newest value.
        for (const id of ringOf(cluster).preferenceList(key, 2)) {
          await cluster.waitFor(
            async () =>
              text.decode(
                (await client.get(key, { fromReplica: true, address: cluster.node(id).address })).value,
              ) ===
                "seconds-39",
            5000,
            `${key} replicated to ${id}`,
          );
        }
      }
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "a Replicate or ReplicateBatch version ten years ahead is refused, logged once and stored nowhere",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3 });
    try {
      const client = await cluster.client();
      const far = (Date.now() + TEN_YEARS_MS) * 1000;
      for (const n of cluster.nodes) {
        const stub = new NodeStub(cluster, n.id);
        const err = await kvError(() =>
          stub.call(
            "Replicate",
            replicateItem({ key: "victim", value: "evil", timestamp: far, from: stub.as }),
          )
        );
        assert.equal(err.code, Code.INVALID_ARGUMENT, err.message);
        assert.match(err.message, /twice limits.max_clock_skew_ms/);
        const res = await stub.call<{ applied: number; message: string }>("ReplicateBatch", {
          items: [
            replicateItem({ key: "victim", value: "evil", timestamp: far, from: stub.as }),
            replicateItem({ key: "victim", value: "evil", timestamp: far, from: stub.as, op: "DELETE" }),
          ],
          primary_node: stub.as,
        });
        assert.equal(res.applied, 0);
        assert.match(res.message, /2 refused/);
      }
      assert.equal((await client.put("victim", "honest")).ok, true);
      for (const n of cluster.nodes) {
        const r = await client.get("victim", { fromReplica: true, address: n.address });
        if (r.found) assert.equal(text.decode(r.value), "honest", n.id);
        const warnings = cluster.logs(n.id).split("\n").filter((l) =>
          l.includes("refused versions from a peer")
        );
        assert.equal(warnings.length, 1, `${n.id} warns once for three refusals:\n${warnings.join("\n")}`);
      }
    } finally {
      await cluster.stop();
    }
  },
);
