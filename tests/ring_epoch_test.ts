/**
 * Routing clients follow the ring version. Unit: a node answers with its
 * epoch only to a client that sent an older one. Real processes: a routing
 * client made before node4 joins learns the new ring from the trailer of an
 * ordinary call (no error needed) and then sends node4's keys straight to
 * node4, shown by node4's served Put calls and by no node forwarding them.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { announcedEpoch, epochHeader, epochTrailer, RING_EPOCH_KEY } from "../lib/grpc/ring_epoch.ts";
import { clusterTest, endCluster, TestCluster } from "./helpers/cluster.ts";
import { waitSettled } from "./helpers/membership.ts";
import { scrapeAt, total } from "./helpers/metrics.ts";
import { freePort } from "./helpers/ports.ts";
import { HashRing } from "../lib/ring.ts";

Deno.test("a node announces its epoch only to a client that routes by an older one", () => {
  assert.equal(epochTrailer(new grpc.Metadata(), 5), undefined, "a client that sends none gets none");
  assert.equal(epochTrailer(epochHeader(5), 5), undefined);
  assert.equal(epochTrailer(epochHeader(6), 5), undefined);
  assert.equal(announcedEpoch(epochTrailer(epochHeader(4), 5)), 5);
  const junk = new grpc.Metadata();
  junk.set(RING_EPOCH_KEY, "soon");
  assert.equal(epochTrailer(junk, 5), undefined);
  assert.equal(announcedEpoch(junk), undefined);
  assert.equal(announcedEpoch(new grpc.Metadata()), undefined);
});

clusterTest(
  "a routing client made before node4 joined sends node4's keys straight to node4 after the join",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, extra: { membership: { cleanup_grace_ms: 1000 } } });
    try {
      const client = await cluster.client();
      assert.equal(client.lastMembership?.epoch, 0);
      const probe = await cluster.client({ route: false });
      const node4 = cluster.addNode("node4");
      node4.adminPort = freePort();
      await cluster.startJoiner("node4", ["node1"], ["--admin-port", String(node4.adminPort)]);
      await waitSettled(cluster, probe, "node1", (ids) => ids.includes("node4"), 60_000);

      const ring = new HashRing(["node1", "node2", "node3", "node4"], 150);
      const keys = Array.from({ length: 400 }, (_, i) => `follow-${i}`).filter((k) =>
        ring.owner(k) === "node4"
      );
      assert.ok(keys.length >= 40, `${keys.length} keys owned by node4`);
      // The client still routes by the 3-node ring: node4's keys go elsewhere.
      assert.ok(keys.every((k) => client.addressFor(k) !== node4.address));

      // Ordinary reads (of keys not on node4): one of them brings back the newer epoch.
      let calls = 0;
      const t0 = Date.now();
      while (client.lastMembership!.epoch < 2) {
        assert.ok(calls < 50, `still at epoch ${client.lastMembership!.epoch} after ${calls} calls`);
        await client.get(`other-${calls++}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      console.log(
        `  the client moved to epoch ${client.lastMembership!.epoch} after ${calls} call(s), ${
          Date.now() - t0
        } ms`,
      );
      assert.ok(keys.every((k) => client.addressFor(k) === node4.address));

      const others = ["node1", "node2", "node3"].map((id) => cluster.node(id).adminPort);
      const forwardedTo4 = async () => {
        let n = 0;
        for (const port of others) {
          n += total(await scrapeAt(port), "kvstore_forwarded_keys_total", {
            peer: "node4",
          });
        }
        return n;
      };
      const putsOn4 = async () =>
        total(await scrapeAt(node4.adminPort), "kvstore_grpc_server_calls_total", {
          method: "Put",
          code: "OK",
        });
      const [fwdBefore, putsBefore] = [await forwardedTo4(), await putsOn4()];
      for (const k of keys) assert.equal((await client.put(k, "v")).ok, true);
      const [fwdAfter, putsAfter] = [await forwardedTo4(), await putsOn4()];
      console.log(
        `  ${keys.length} puts of node4's keys: node4 served ${putsAfter - putsBefore} directly, ` +
          `the others forwarded ${fwdAfter - fwdBefore} keys to it`,
      );
      assert.equal(putsAfter - putsBefore, keys.length);
      assert.equal(fwdAfter - fwdBefore, 0);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000 },
);
