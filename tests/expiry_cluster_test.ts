/**
 * Expiry on real nodes: a key written with a ttl is gone from every copy
 * once the ttl passes, and nothing brings it or an older write back: not a
 * node that missed the write (paused), not a node killed before it that
 * returns with its old copies (Redis keeps them), not recovery, hinted
 * handoff or anti-entropy rounds after the expiry, not an older write
 * replayed by a peer. And with one node's clock skewed (libfaketime), its
 * copies expire within that skew of the others', since every copy carries
 * the same absolute expiry fixed by the coordinator.
 */
import assert from "node:assert/strict";
import {
  clusterTest,
  endCluster,
  kvError,
  logLines,
  sleep,
  type TestCluster,
  TestCluster as Cluster,
  text,
  waitForStatus,
} from "./helpers/cluster.ts";
import { ignoreRedis, REDIS_PREFIX, redisAt, startRedises, stopRedises } from "./helpers/redis.ts";
import { NodeStub, replicateItem } from "./helpers/node_stub.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import { Code } from "../lib/errors.ts";
import { MAX_TTL_MS } from "../lib/expiry.ts";
import { type ExpiryClient, setExpiry } from "../lib/grpc/set_expiry.ts";

const TTL_MS = 2000;
const KEYS = 20;
const AE_INTERVAL_MS = 400;
const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/** Which of `keys` each node's own copy still answers (read_from_replica). */
async function foundOn(cluster: TestCluster, keys: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const n of cluster.nodes) {
    const direct = await cluster.client({ via: n.id, route: false });
    out[n.id] = (await direct.multiGet(keys, { fromReplica: true })).filter((r) => r.found).map((r) => r.key);
  }
  return out;
}

/** Waits until every node has finished `rounds` more anti-entropy rounds than it had at `since`. */
async function waitRounds(cluster: TestCluster, since: Record<string, number>, rounds: number) {
  const count = (id: string) => logLines(cluster, id, "anti-entropy round finished").length;
  await cluster.waitFor(
    () => cluster.nodes.every((n) => count(n.id) >= (since[n.id] ?? 0) + rounds),
    30_000,
    `${rounds} anti-entropy rounds on every node`,
  );
}

function roundCounts(cluster: TestCluster): Record<string, number> {
  return Object.fromEntries(
    cluster.nodes.map((n) => [n.id, logLines(cluster, n.id, "anti-entropy round finished").length]),
  );
}

clusterTest(
  "expired keys stay gone on every node: partition, node down past expiry with old copies, anti-entropy, replayed older write",
  async () => {
    const { procs, dirs } = await startRedises(3);
    let cluster: TestCluster | undefined;
    try {
      cluster = await Cluster.start({
        nodes: 3,
        replicationFactor: 3,
        storage: "redis",
        redisPorts: procs.map((p) => p.port),
        extra: { recovery: { anti_entropy_interval_ms: AE_INTERVAL_MS } },
      });
      const c = cluster;
      const admin = await c.client({ via: "node1", route: false });
      const old = Array.from({ length: KEYS }, (_, i) => `old-${i}`);
      const fresh = Array.from({ length: KEYS }, (_, i) => `fresh-${i}`);
      const all = [...old, ...fresh];

      // Every node holds the old keys, without expiry.
      const first = await admin.multiPut(old.map((key) => ({ key, value: "old" })));
      assert.deepEqual(first.filter((r) => !r.ok).map((r) => r.message), []);
      await c.waitFor(
        async () => Object.values(await foundOn(c, old)).every((f) => f.length === KEYS),
        15_000,
        "the old keys on every node",
      );
      const oldVersions = (await admin.multiGet(old, { fromReplica: true })).map((r) => r.timestamp);

      // node3 dies (its Redis keeps the old copies); node2 is cut off (paused).
      await c.kill("node3");
      await c.signal("node2", "SIGSTOP");
      await waitForStatus(c, admin, ["node1"], "node2", ["SUSPECTED", "FAILED"], 15_000);
      await waitForStatus(c, admin, ["node1"], "node3", ["SUSPECTED", "FAILED"], 15_000);

      // During the partition: the old keys rewritten with a ttl, and fresh keys with one.
      const written = Date.now();
      const during = await admin.multiPut(all.map((key) => ({ key, value: "ttl", ttlMs: TTL_MS })));
      assert.deepEqual(during.filter((r) => !r.ok).map((r) => r.message), []);
      const seen = await admin.multiGet(all, { fromReplica: true });
      assert.ok(
        seen.every((r) => r.found && r.expiresAtMs! >= written + TTL_MS),
        "node1 holds them, expiring",
      );

      await sleep(800);
      await c.signal("node2", "SIGCONT");
      // Past the expiry before node3 comes back.
      await sleep(Math.max(0, written + TTL_MS + 500 - Date.now()));
      assert.deepEqual((await admin.multiGet(all)).filter((r) => r.found).map((r) => r.key), []);

      await c.startNode("node3");
      await waitForStatus(c, admin, ["node1", "node2", "node3"], "node3", ["ACTIVE"], 30_000);
      await waitForStatus(c, admin, ["node1", "node3"], "node2", ["ACTIVE"], 30_000);
      await waitRounds(c, roundCounts(c), 3);

      const back = await foundOn(c, all);
      assert.deepEqual(back, { node1: [], node2: [], node3: [] }, "no copy of an expired key is back");
      for (const n of c.nodes) {
        const page = await (await c.client({ via: n.id, route: false })).listKeys(n.address);
        assert.deepEqual(page.keys.filter((k) => all.includes(k)), [], `${n.id} lists an expired key`);
        assert.equal(page.count, 0, `${n.id} counts expired keys as live`);
      }

      // node3's Redis now holds the expired record (newer than its old copy), kept as a tombstone.
      const r3 = await redisAt(procs[2].port);
      let held: (string | null)[][];
      try {
        const pipe = r3.pipeline();
        for (const k of old) pipe.hmget(`${REDIS_PREFIX}k:${k}`, "t", "e");
        held = (await pipe.exec())!.map(([, v]) => v as (string | null)[]);
      } finally {
        r3.disconnect();
      }
      const replaced = held.filter(([t, e], i) => Number(t) > oldVersions[i] && e !== null).length;
      assert.equal(replaced, KEYS, "node3's old copies are replaced by the expired records");

      // An older write of each key, replayed by a peer after the expiry: refused everywhere.
      let applied = 0;
      for (const n of c.nodes) {
        const peer = new NodeStub(c, n.id, { as: n.id === "node1" ? "node2" : "node1" });
        const items = old.map((key, i) =>
          replicateItem({ key, value: "replayed", timestamp: oldVersions[i] + 1, from: peer.as })
        );
        applied += (await peer.call<{ applied: number }>("ReplicateBatch", { items, primary_node: peer.as }))
          .applied;
      }
      assert.equal(applied, 0, "an older write replayed after the expiry was applied");
      await waitRounds(c, roundCounts(c), 2);
      assert.deepEqual(await foundOn(c, all), { node1: [], node2: [], node3: [] }, "after the replay");
      assert.deepEqual((await admin.multiGet(all)).filter((r) => r.found).map((r) => r.key), []);

      const last = c.nodes.map((n) => logLines(c, n.id, "anti-entropy round finished").at(-1) ?? "");
      const repaired = c.nodes.map((n) => logLines(c, n.id, "anti-entropy repaired").length);
      console.log(
        `  ${all.length} keys expired during a partition; node3 back after the expiry with ${KEYS} old copies; ` +
          `anti-entropy repairs logged per node: ${repaired.join("/")}; ` +
          `last rounds: ${last.map((l) => /buckets=(\d+)/.exec(l)?.[1] ?? l).join("/")} differing buckets`,
      );
    } finally {
      if (cluster) await endCluster(cluster);
      await stopRedises(procs, dirs);
    }
  },
  { timeoutMs: 120_000, ignore: ignoreRedis },
);

/** Polls each node's own copy of `keys` until all are gone; the test clock's ms each went, by node and key. */
async function expiryTimes(
  cluster: TestCluster,
  keys: string[],
  timeoutMs: number,
): Promise<Map<string, number[]>> {
  const direct = new Map<string, KvClient>();
  for (const n of cluster.nodes) direct.set(n.id, await cluster.client({ via: n.id, route: false }));
  const gone = new Map(cluster.nodes.map((n) => [n.id, keys.map(() => 0)]));
  const deadline = Date.now() + timeoutMs;
  while ([...gone.values()].some((ts) => ts.some((t) => t === 0))) {
    if (Date.now() > deadline) {
      const left = [...gone].map(([id, ts]) => `${id}: ${ts.filter((t) => t === 0).length}`).join(", ");
      throw new Error(`copies never expired (still found: ${left})`);
    }
    await Promise.all([...direct].map(async ([id, client]) => {
      const rs = await client.multiGet(keys, { fromReplica: true });
      const now = Date.now();
      rs.forEach((r, i) => {
        if (!r.found && gone.get(id)![i] === 0) gone.get(id)![i] = now;
      });
    }));
    await sleep(10);
  }
  return gone;
}

clusterTest(
  "with one node's clock 300 ms behind (libfaketime), copies expire within that offset of each other",
  async () => {
    const skewMs = 300;
    const cluster = await Cluster.start({ nodes: 3, replicationFactor: 3, startOnly: ["node1", "node2"] });
    try {
      await cluster.startNode("node3", [], {
        env: {
          LD_PRELOAD: FAKETIME_LIB,
          FAKETIME: `-${skewMs / 1000}`,
          FAKETIME_DONT_FAKE_MONOTONIC: "1",
        },
      });
      await cluster.waitActive();
      const keys = Array.from({ length: KEYS }, (_, i) => `skew-${i}`);
      const admin = await cluster.client({ via: "node1", route: false });
      const rs = await admin.multiPut(keys.map((key) => ({ key, value: "v", ttlMs: TTL_MS })));
      assert.deepEqual(rs.filter((r) => !r.ok).map((r) => r.message), []);
      // Each key's expiry, as its coordinator fixed it, from any copy (they agree).
      await cluster.waitFor(
        async () => Object.values(await foundOn(cluster, keys)).every((f) => f.length === KEYS),
        5_000,
        "every copy written",
      );
      const expiry = new Map<string, number[]>();
      for (const n of cluster.nodes) {
        const direct = await cluster.client({ via: n.id, route: false });
        expiry.set(n.id, (await direct.multiGet(keys, { fromReplica: true })).map((r) => r.expiresAtMs ?? 0));
      }
      assert.deepEqual(expiry.get("node2"), expiry.get("node1"), "copies carry the same expiry");
      assert.deepEqual(expiry.get("node3"), expiry.get("node1"), "the skewed node's copies too");

      const gone = await expiryTimes(cluster, keys, TTL_MS + 10_000);
      const spreads = keys.map((_, i) => {
        const ts = cluster.nodes.map((n) => gone.get(n.id)![i]);
        return Math.max(...ts) - Math.min(...ts);
      }).sort((a, b) => a - b);
      const late = (id: string) => Math.max(...gone.get(id)!.map((t, i) => t - expiry.get("node1")![i]));
      // A copy can be seen gone late (polling, load), never before its expiry minus the clock's skew.
      for (const n of cluster.nodes) {
        const early = Math.min(...gone.get(n.id)!.map((t, i) => t - expiry.get("node1")![i]));
        assert.ok(early >= -skewMs, `${n.id} dropped a copy ${-early} ms before its expiry`);
      }
      console.log(
        `  node3 ${skewMs} ms behind: spread between the first and last copy seen expired per key: ` +
          `median ${spreads[spreads.length >> 1]} ms, max ${spreads.at(-1)} ms; ` +
          `latest seen after expiry: node1 ${late("node1")} ms, node2 ${late("node2")} ms, node3 ${
            late("node3")
          } ms`,
      );
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "copies of one version that disagree on the expiry differ in the digest and anti-entropy makes them agree",
  async () => {
    const cluster = await Cluster.start({
      nodes: 3,
      replicationFactor: 3,
      extra: { recovery: { anti_entropy_interval_ms: AE_INTERVAL_MS } },
    });
    try {
      const admin = await cluster.client({ via: "node1", route: false });
      const [w] = await admin.multiPut([{ key: "drift", value: "v", ttlMs: 600_000 }]);
      assert.ok(w.ok, w.message);
      await cluster.waitFor(
        async () => Object.values(await foundOn(cluster, ["drift"])).every((f) => f.length === 1),
        5_000,
        "every copy written",
      );
      const expiresAtMs = (await admin.get("drift", { fromReplica: true })).expiresAtMs!;
      // node2's copy alone, same version, an earlier expiry (a copy damaged or pushed by hand).
      const stub = new NodeStub(cluster, "node2", { as: "node3" });
      const item = replicateItem({ key: "drift", value: "v", timestamp: w.timestamp, from: "node3" });
      const earlier = expiresAtMs - 300_000;
      const pushed = await stub.call<{ applied: number }>("ReplicateBatch", {
        items: [{ ...item, version_node: w.nodeId, expires_at_ms: earlier }],
        primary_node: "node3",
      });
      assert.equal(pushed.applied, 1);
      await waitRounds(cluster, roundCounts(cluster), 2);
      const held: Record<string, number | undefined> = {};
      for (const n of cluster.nodes) {
        const direct = await cluster.client({ via: n.id, route: false });
        held[n.id] = (await direct.get("drift", { fromReplica: true })).expiresAtMs;
      }
      assert.deepEqual(held, { node1: earlier, node2: earlier, node3: earlier });
      const repaired = cluster.nodes.map((n) => logLines(cluster, n.id, "anti-entropy repaired").length);
      console.log(
        `  copies agree on the earlier expiry; anti-entropy repairs logged per node: ${repaired.join("/")}`,
      );
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "Put refuses a bad ttl or expiry with INVALID_ARGUMENT, stores a past expiry already expired; Get tells the time left",
  async () => {
    const cluster = await Cluster.start({ nodes: 2 });
    try {
      const client = await cluster.client();
      for (
        const [opts, why] of [
          [{ ttlMs: -1 }, /ttl_ms must be 0 \(none\) or a positive/],
          [{ expiresAtMs: -1 }, /expires_at_ms must be/],
          [{ ttlMs: MAX_TTL_MS + 1 }, /over the limit/],
          [{ expiresAtMs: Date.now() + MAX_TTL_MS + 60_000 }, /more than 10 years ahead/],
          [{ ttlMs: 1000, expiresAtMs: Date.now() + 1000 }, /not both/],
        ] as const
      ) {
        const err = await kvError(() => client.put("bad", "v", opts));
        assert.equal(err.code, Code.INVALID_ARGUMENT, err.message);
        assert.match(err.message, why);
      }
      // In a batch a bad item answers on its own.
      const [bad, good] = await client.multiPut([{ key: "b1", value: "v", ttlMs: -5 }, {
        key: "b2",
        value: "v",
        ttlMs: 60_000,
      }]);
      assert.equal(bad.code, Code.INVALID_ARGUMENT);
      assert.equal(good.ok, true);
      assert.equal((await client.get("bad")).found, false, "nothing stored by a refused put");

      const past = await client.put("past", "v", { expiresAtMs: Date.now() - 1000 });
      assert.equal(past.ok, true, "a past expiry is accepted");
      assert.equal((await client.get("past")).found, false, "and stored already expired");

      const at = Date.now() + 60_000;
      await client.put("later", "v", { expiresAtMs: at });
      const r = await client.get("later");
      assert.equal(r.expiresAtMs, at);
      assert.ok(r.ttlMs! > 0 && r.ttlMs! <= 60_000, `ttl_ms ${r.ttlMs}`);
      const [m] = await client.multiGet(["b2"]);
      assert.ok(m.found && m.expiresAtMs! > 0 && m.ttlMs! > 0, "MultiGet items carry the expiry too");
      const plain = await client.put("plain", "v");
      assert.ok(plain.ok);
      const p = await client.get("plain");
      assert.equal(p.expiresAtMs, undefined);
      assert.equal(p.ttlMs, undefined);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "EXPIRE and PERSIST (setExpiry) never put an old value back over a write made after their read: they write the newer one",
  async () => {
    // Conditional writes: fresh memory nodes vote 2 × max_clock_skew_ms after their start.
    const cluster = await Cluster.start({ nodes: 2, extra: { limits: { max_clock_skew_ms: 1000 } } });
    try {
      const client = await cluster.client();
      await cluster.waitFor(() => client.increment("race", 0).then(() => true, () => false), 10_000, "votes");
      assert.ok((await client.put("race", "first")).ok);
      // A write lands between setExpiry's read and its conditional write.
      let between = true;
      const racing: ExpiryClient = {
        get: async (key, opts) => {
          const read = await client.get(key, opts);
          if (between) assert.ok((await client.put("race", "second")).ok, "the write in between");
          between = false;
          return read;
        },
        putIf: (...args) => client.putIf(...args),
      };
      const change = await setExpiry(racing, "race", 60_000);
      assert.equal(change.outcome, "applied");
      assert.equal(change.outcome === "applied" && change.attempts, 2, "the first attempt lost the race");
      const now = await client.get("race");
      assert.equal(text.decode(now.value), "second", "the value read first is not put back");
      assert.ok(now.expiresAtMs! > Date.now() + 50_000, `expires at ${now.expiresAtMs}`);
      // PERSIST removes it; a key without an expiry is left as it is.
      assert.equal((await setExpiry(client, "race", null)).outcome, "applied");
      const persisted = await client.get("race");
      assert.equal(persisted.expiresAtMs, undefined);
      assert.equal((await setExpiry(client, "race", null)).outcome, "unchanged");
      assert.equal((await client.get("race")).timestamp, persisted.timestamp, "nothing written");
      assert.equal((await setExpiry(client, "absent", 1000)).outcome, "absent");
      // Found, then expired before the conditional write: nothing is written.
      assert.ok((await client.put("short", "v", { ttlMs: 300 })).ok);
      const slow: ExpiryClient = {
        get: async (key, opts) => {
          const read = await client.get(key, opts);
          await sleep(600);
          return read;
        },
        putIf: (...args) => client.putIf(...args),
      };
      assert.equal((await setExpiry(slow, "short", 60_000)).outcome, "gone");
      assert.equal((await client.get("short")).found, false);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);
