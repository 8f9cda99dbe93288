/**
 * Replication with three real node processes and replication_factor 2
 * (issue 4): each key on exactly the two nodes the ring names, deletes as
 * tombstones on both, synchronous copies with write_quorum 2, convergence of
 * concurrent writers, last-write-wins against late or replayed older
 * versions (Put with an old timestamp, Replicate and ReplicateBatch sent
 * directly), and read repair with read_quorum 2.
 */
import assert from "node:assert/strict";
import {
  clusterTest,
  keysPlacedOn,
  ringOf,
  TestCluster,
  type TestClusterOptions,
  text,
} from "./helpers/cluster.ts";
import type { HashRing } from "../lib/ring.ts";
import { Code } from "../lib/errors.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";

/** Starts three nodes (rf 2 unless told); resolves once each sees all three ACTIVE. */
function startCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  return TestCluster.start({ nodes: 3, replicationFactor: 2, ...opts });
}

/** A stored record as ReadRecords answers it. */
interface PairMsg {
  key: string;
  value: Uint8Array;
  timestamp: number;
  version_node: string;
  tombstone: boolean;
}

/**
 * Raw NodeService calls to each node, as a peer would make them; the
 * cluster closes the stubs when it stops.
 */
class Peers {
  readonly #stubs = new Map<string, NodeStub>();

  constructor(private readonly cluster: TestCluster) {
    for (const n of cluster.nodes) this.#stubs.set(n.id, new NodeStub(cluster, n.id));
  }

  /** Sends one Replicate as `from` would (a replayed or forged version). */
  replicate(
    to: string,
    r: { key: string; value?: string; timestamp: number; from: string; op?: "PUT" | "DELETE" },
  ): Promise<{ success: boolean; replica_node_id: string }> {
    return this.#stub(to).call("Replicate", replicateItem(r));
  }

  replicateBatch(
    to: string,
    from: string,
    items: { key: string; value?: string; timestamp: number; op?: "PUT" | "DELETE" }[],
  ): Promise<{ success: boolean; applied: number }> {
    return this.#stub(to).call("ReplicateBatch", {
      items: items.map((i) => replicateItem({ ...i, from })),
      primary_node: from,
    });
  }

  /** A node's stored record of a key (tombstones included), if it holds one. */
  async record(on: string, key: string): Promise<PairMsg | undefined> {
    const res = await this.#stub(on).call<{ records: PairMsg[] }>("ReadRecords", {
      keys: [key],
      requesting_node_id: "test",
    });
    return res.records.find((r) => r.key === key);
  }

  #stub(id: string): NodeStub {
    const s = this.#stubs.get(id);
    if (!s) throw new Error(`no node ${id}`);
    return s;
  }
}

/** Keys whose preference list (rf 2) is each ordered pair of nodes, `perPair` of each. */
function keysPerPair(ring: HashRing, prefix: string, perPair: number): string[] {
  const seen = new Map<string, number>();
  const keys: string[] = [];
  for (let i = 0; keys.length < 6 * perPair && i < 100_000; i++) {
    const key = `${prefix}${i}`;
    const pair = ring.preferenceList(key, 2).join(">");
    if ((seen.get(pair) ?? 0) >= perPair) continue;
    seen.set(pair, (seen.get(pair) ?? 0) + 1);
    keys.push(key);
  }
  assert.equal(keys.length, 6 * perPair, "every ordered pair of nodes occurs on the ring");
  return keys;
}

clusterTest(
  "a put lands on exactly the two nodes the ring names and a delete removes it from both",
  async () => {
    const cluster = await startCluster();
    try {
      const ring = ringOf(cluster);
      const client = await cluster.client({ via: "node2", route: false });
      const keys = keysPerPair(ring, "rep:", 2);
      const stamps = new Map<string, number>();
      for (const key of keys) {
        const put = await client.put(key, `v:${key}`);
        assert.equal(put.ok, true);
        assert.equal(put.nodeId, ring.owner(key));
        assert.equal(put.replicas, 1, "write_quorum 1 answers after the owner's write");
        stamps.set(key, put.timestamp);
      }
      const expectedOn = (id: string) => keysPlacedOn(ring, keys, id, 2).sort();
      await cluster.waitFor(
        async () => {
          for (const n of cluster.nodes) {
            const held = (await client.listAllKeys(n.address)).filter((k) => k.startsWith("rep:"));
            if (held.length !== expectedOn(n.id).length) return false;
          }
          return true;
        },
        10_000,
        "asynchronous replication to the second copies",
      );
      for (const n of cluster.nodes) {
        const held = (await client.listAllKeys(n.address)).sort();
        assert.deepEqual(held, expectedOn(n.id), `${n.id} lists exactly the keys whose list names it`);
      }
      for (const key of keys) {
        const [owner, replica] = ring.preferenceList(key, 2);
        const other = cluster.nodes.find((n) => n.id !== owner && n.id !== replica)!;
        const onReplica = await client.get(key, {
          fromReplica: true,
          address: cluster.node(replica).address,
        });
        assert.equal(onReplica.found, true, `${key} on its replica ${replica}`);
        assert.equal(onReplica.nodeId, replica, "answered by the replica itself, not forwarded");
        assert.equal(text.decode(onReplica.value), `v:${key}`);
        assert.equal(onReplica.timestamp, stamps.get(key), "the replica holds the owner's version");
        const onOther = await client.get(key, { fromReplica: true, address: other.address });
        assert.equal(onOther.found, false, `${key} is not on ${other.id}`);
      }

      const viaThree = await cluster.client({ via: "node3", route: false });
      for (const key of keys) {
        const del = await viaThree.delete(key);
        assert.equal(del.ok, true);
        assert.ok(del.timestamp > stamps.get(key)!);
      }
      await cluster.waitFor(
        async () => {
          for (const n of cluster.nodes) {
            if ((await client.listAllKeys(n.address)).some((k) => k.startsWith("rep:"))) return false;
          }
          return true;
        },
        10_000,
        "the deletes to reach the second copies",
      );
      const peers = new Peers(cluster);
      for (const key of keys) {
        for (const holder of ring.preferenceList(key, 2)) {
          const r = await client.get(key, { fromReplica: true, address: cluster.node(holder).address });
          assert.equal(r.found, false, `${key} is gone from ${holder}`);
          const rec = await peers.record(holder, key);
          assert.equal(rec?.tombstone, true, `${holder} keeps a tombstone for ${key}`);
        }
        assert.equal((await client.get(key)).found, false);
      }
      for (const n of cluster.nodes) assert.equal((await client.listKeys(n.address)).count, 0);
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest("with write_quorum 2 the replica holds the value when the client gets its answer", async () => {
  const cluster = await startCluster({ writeQuorum: 2 });
  try {
    const ring = ringOf(cluster);
    const client = await cluster.client();
    const viaOne = await cluster.client({ via: "node1", route: false });
    const keys = keysPerPair(ring, "wq:", 10);
    for (const [i, key] of keys.entries()) {
      // Alternate routing and forwarding, and overwrite each key once.
      const writer = i % 2 === 0 ? client : viaOne;
      for (const round of [1, 2]) {
        const put = await writer.put(key, `r${round}:${key}`);
        assert.equal(put.ok, true, put.message);
        assert.equal(put.replicas, 2, `${key}: two copies when the answer left`);
        const replica = ring.preferenceList(key, 2)[1];
        const r = await viaOne.get(key, { fromReplica: true, address: cluster.node(replica).address });
        assert.equal(r.found, true, `${key} on ${replica} right after the answer`);
        assert.equal(text.decode(r.value), `r${round}:${key}`);
        assert.equal(r.timestamp, put.timestamp);
      }
    }
    // Batches too.
    const batch = keys.map((key) => ({ key, value: `batch:${key}` }));
    const results = await client.multiPut(batch);
    assert.ok(results.every((r) => r.ok && r.replicas === 2));
    for (const key of keys) {
      const replica = ring.preferenceList(key, 2)[1];
      const r = await viaOne.get(key, { fromReplica: true, address: cluster.node(replica).address });
      assert.equal(text.decode(r.value), `batch:${key}`);
    }
    // And deletes: the replica has the tombstone when the answer arrives.
    for (const key of keys.slice(0, 12)) {
      const del = await client.delete(key);
      assert.equal(del.ok, true);
      assert.equal(del.replicas, 2);
      const replica = ring.preferenceList(key, 2)[1];
      const r = await viaOne.get(key, { fromReplica: true, address: cluster.node(replica).address });
      assert.equal(r.found, false, `${key} deleted on ${replica} right after the answer`);
    }
  } finally {
    await cluster.stop();
  }
});

clusterTest(
  "concurrent writers through different nodes leave every copy of a key with the same newest version",
  async () => {
    const cluster = await startCluster();
    const peers = new Peers(cluster);
    try {
      const ring = ringOf(cluster);
      const SHARED = ["conv:a", "conv:b", "conv:c", "conv:d"];
      const WRITERS = 20;
      const WRITES = 50;
      const clients = await Promise.all(
        Array.from(
          { length: WRITERS },
          (_, w) => cluster.client({ via: cluster.nodes[w % 3].id, route: w % 4 === 3 }),
        ),
      );
      const written = new Map(SHARED.map((k) => [k, new Set<string>()]));
      /** Acknowledged (applied) writes per key: value by timestamp. */
      const acked = new Map(SHARED.map((k) => [k, new Map<number, string>()]));
      let refused = 0;
      const started = Date.now();
      await Promise.all(clients.map(async (c, w) => {
        for (let i = 0; i < WRITES; i++) {
          const key = SHARED[(w + i) % SHARED.length];
          const value = `w${w}:i${i}`;
          written.get(key)!.add(value);
          // A quarter of the writers bring their own timestamps, from clocks up to
          // 200 ms behind or ahead: late ones must lose, early ones must win.
          const skewUs = Math.round((Math.random() * 2 - 1) * 200_000);
          const timestamp = w % 4 === 1 ? Date.now() * 1000 + skewUs : 0;
          const r = await c.put(key, value, { timestamp });
          if (r.ok) {
            assert.ok(
              !acked.get(key)!.has(r.timestamp) || timestamp !== 0,
              `two writes acknowledged at ${r.timestamp}`,
            );
            acked.get(key)!.set(r.timestamp, value);
          } else {
            assert.equal(r.code, Code.FAILED_PRECONDITION, r.message);
            assert.ok(timestamp !== 0, "only a client-chosen older timestamp may be refused");
            refused++;
          }
        }
      }));
      console.log(
        `${WRITERS} writers x ${WRITES} writes on ${SHARED.length} keys: ${Date.now() - started} ms, ` +
          `${refused} refused as older than the held version`,
      );

      assert.ok(refused > 0, "writes stamped by a clock 200 ms behind lose to newer held versions");

      const copies = async (key: string) =>
        await Promise.all(ring.preferenceList(key, 2).map((id) => peers.record(id, key)));
      await cluster.waitFor(
        async () => {
          for (const key of SHARED) {
            const [a, b] = await copies(key);
            if (!a || !b || a.timestamp !== b.timestamp) return false;
          }
          return true;
        },
        10_000,
        "the copies to converge",
      );
      for (const key of SHARED) {
        const [a, b] = await copies(key);
        assert.ok(a && b);
        assert.equal(a.timestamp, b.timestamp, `${key}: same version on both copies`);
        assert.equal(a.version_node, b.version_node);
        assert.equal(text.decode(a.value), text.decode(b.value), `${key}: same value on both copies`);
        assert.ok(written.get(key)!.has(text.decode(a.value)), `${key} holds a written value`);
        // Last write wins: the surviving version is the newest acknowledged one.
        const newest = Math.max(...acked.get(key)!.keys());
        assert.equal(a.timestamp, newest, `${key}: the newest acknowledged version survives`);
        assert.equal(text.decode(a.value), acked.get(key)!.get(newest));
        for (const holder of ring.preferenceList(key, 2)) {
          const r = await clients[0].get(key, { fromReplica: true, address: cluster.node(holder).address });
          assert.equal(r.timestamp, newest);
        }
        const third = cluster.nodes.find((n) => !ring.preferenceList(key, 2).includes(n.id))!;
        assert.equal(await peers.record(third.id, key), undefined, `${key} has no copy on ${third.id}`);
      }
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "an older version sent later never overwrites a newer one nor resurrects a deleted key",
  async () => {
    const cluster = await startCluster();
    const peers = new Peers(cluster);
    try {
      const ring = ringOf(cluster);
      const client = await cluster.client({ via: "node1", route: false });
      const key = "lww:key";
      const [owner, replica] = ring.preferenceList(key, 2);
      const bothHold = async (value: string, timestamp: number) => {
        await cluster.waitFor(
          async () => {
            const recs = await Promise.all([owner, replica].map((id) => peers.record(id, key)));
            return recs.every((r) => r && r.timestamp === timestamp);
          },
          10_000,
          `both copies of ${key} at ${timestamp}`,
        );
        for (const id of [owner, replica]) {
          const r = await client.get(key, { fromReplica: true, address: cluster.node(id).address });
          assert.equal(r.found, true, `${key} on ${id}`);
          assert.equal(text.decode(r.value), value, `${key} on ${id}`);
          assert.equal(r.timestamp, timestamp);
        }
      };

      const put = await client.put(key, "newest");
      assert.equal(put.ok, true);
      await bothHold("newest", put.timestamp);

      // A Put with an explicit older timestamp is answered "not applied".
      const older = await client.put(key, "older", { timestamp: put.timestamp - 1000 });
      assert.equal(older.ok, false);
      assert.equal(older.code, Code.FAILED_PRECONDITION);
      assert.match(older.message, /not applied/);
      const equal = await client.put(key, "same time", { timestamp: put.timestamp });
      assert.equal(equal.ok, false, "an equal timestamp from the same coordinator is not newer");
      await bothHold("newest", put.timestamp);

      // A replayed Replicate with an old version, to each copy, changes nothing.
      for (const id of [owner, replica]) {
        const res = await peers.replicate(id, {
          key,
          value: "replayed",
          timestamp: put.timestamp - 1,
          from: owner,
        });
        assert.equal(res.success, true);
        const batch = await peers.replicateBatch(id, owner, [{ key, value: "replayed batch", timestamp: 1 }]);
        assert.equal(batch.applied, 0, `${id} applied none of an old batch`);
      }
      await bothHold("newest", put.timestamp);

      // A newer explicit timestamp wins, and reaches both copies.
      const newer = await client.put(key, "explicitly newer", { timestamp: put.timestamp + 5000 });
      assert.equal(newer.ok, true);
      assert.equal(newer.timestamp, put.timestamp + 5000);
      await bothHold("explicitly newer", put.timestamp + 5000);

      // Delete, then replay older PUTs every way: the key stays deleted everywhere.
      const del = await client.delete(key);
      assert.equal(del.ok, true);
      assert.ok(del.timestamp > newer.timestamp);
      await cluster.waitFor(
        async () => {
          const recs = await Promise.all([owner, replica].map((id) => peers.record(id, key)));
          return recs.every((r) => r?.tombstone === true);
        },
        10_000,
        "the tombstone on both copies",
      );
      for (const id of [owner, replica]) {
        await peers.replicate(id, { key, value: "zombie", timestamp: newer.timestamp, from: owner });
        await peers.replicate(id, { key, value: "zombie", timestamp: del.timestamp - 1, from: "node9" });
        const batch = await peers.replicateBatch(id, owner, [{
          key,
          value: "zombie batch",
          timestamp: put.timestamp,
        }]);
        assert.equal(batch.applied, 0);
      }
      const late = await client.put(key, "late client write", { timestamp: del.timestamp - 1 });
      assert.equal(late.ok, false);
      assert.equal(late.code, Code.FAILED_PRECONDITION);
      for (const id of cluster.nodes.map((n) => n.id)) {
        const r = await client.get(key, { fromReplica: true, address: cluster.node(id).address });
        assert.equal(r.found, false, `${key} stays deleted on ${id}`);
        assert.equal((await client.listAllKeys(cluster.node(id).address)).includes(key), false);
      }
      for (const id of [owner, replica]) {
        const rec = await peers.record(id, key);
        assert.equal(rec?.tombstone, true);
        assert.equal(rec?.timestamp, del.timestamp);
      }
      assert.equal((await client.get(key)).found, false);

      // A newer version than the tombstone (a real new write) brings the key back.
      const reborn = await client.put(key, "reborn");
      assert.equal(reborn.ok, true);
      await bothHold("reborn", reborn.timestamp);
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest("with read_quorum 2 a read returns the newest copy and repairs the stale one", async () => {
  const cluster = await startCluster({ readQuorum: 2 });
  const peers = new Peers(cluster);
  try {
    const ring = ringOf(cluster);
    const client = await cluster.client();
    const viaOther = await cluster.client({ via: "node2", route: false });
    const keys = keysPerPair(ring, "rq:", 1);
    for (const [i, key] of keys.entries()) {
      const put = await client.put(key, "original");
      assert.equal(put.ok, true);
      const [owner, replica] = ring.preferenceList(key, 2);
      await cluster.waitFor(
        async () => (await peers.record(replica, key))?.timestamp === put.timestamp,
        10_000,
        `${key} on ${replica}`,
      );
      // Make one copy newer behind the coordinator's back: the replica for even keys, the owner for odd.
      const ahead = i % 2 === 0 ? replica : owner;
      const stale = ahead === owner ? replica : owner;
      const newTs = put.timestamp + 1000;
      await peers.replicate(ahead, { key, value: "newer", timestamp: newTs, from: owner });
      assert.equal((await peers.record(stale, key))?.timestamp, put.timestamp, `${stale} is stale`);

      const reader = i % 3 === 0 ? viaOther : client;
      const got = await reader.get(key);
      assert.equal(got.found, true);
      assert.equal(text.decode(got.value), "newer", `${key}: the newest of the two copies is returned`);
      assert.equal(got.timestamp, newTs);
      await cluster.waitFor(
        async () => (await peers.record(stale, key))?.timestamp === newTs,
        10_000,
        `read repair of ${key} on ${stale}`,
      );
      const repaired = await client.get(key, { fromReplica: true, address: cluster.node(stale).address });
      assert.equal(text.decode(repaired.value), "newer");
    }

    // A tombstone on one copy wins over an older value on the other, and is repaired too.
    const key = keys[0];
    const [owner, replica] = ring.preferenceList(key, 2);
    const current = (await peers.record(owner, key))!;
    await peers.replicate(replica, { key, timestamp: current.timestamp + 1000, from: owner, op: "DELETE" });
    assert.equal((await client.get(key)).found, false, "the newer tombstone hides the key");
    await cluster.waitFor(
      async () => (await peers.record(owner, key))?.tombstone === true,
      10_000,
      `read repair of the tombstone on ${owner}`,
    );
  } finally {
    await cluster.stop();
  }
});
