/**
 * Conditional writes and counters on real node processes: races through
 * different nodes, a counter under a paused node and a killed-and-restarted
 * one, a key whose replica is down at rf 2, and what a plain write racing
 * increments does (README, "Conditional writes and counters").
 */
import assert from "node:assert/strict";
import { clusterTest, ringOf, runMain, TestCluster } from "./helpers/cluster.ts";
import { HashRing } from "../lib/ring.ts";
import { sleep } from "../lib/async.ts";
import { Code, KvError } from "../lib/errors.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import { checkCounter } from "./helpers/lwt_history.ts";
import { sharedExpiry } from "./helpers/lwt.ts";
import { ignoreRedis, startRedises, stopRedises } from "./helpers/redis.ts";
import {
  checkLinearizable,
  counterModel,
  type HistoryOp,
  putIfAbsentModel,
} from "./helpers/linearizability.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
/** Short enough that a restarted memory node votes again soon (its floor is 2 skews). */
const LIMITS = { limits: { max_clock_skew_ms: 2000 }, failure_detection: { rpc_timeout_ms: 1000 } };

/** A started memory node votes only on ballots past 2 × max_clock_skew_ms after its start (acceptor.ts). */
const VOTE_FLOOR_MS = 2 * LIMITS.limits.max_clock_skew_ms + 300;

async function start(nodes: number, rf: number, redisPorts?: number[]) {
  const storage = redisPorts ? "redis" : "memory";
  const cluster = await TestCluster.start({
    nodes,
    replicationFactor: rf,
    extra: LIMITS,
    storage,
    redisPorts,
  });
  // Redis keeps the votes: no floor to wait for.
  if (!redisPorts) await sleep(VOTE_FLOOR_MS);
  return cluster;
}

/** Clients that each send everything to one node (it forwards), one per node. */
async function clientsPerNode(cluster: TestCluster, ids: string[]): Promise<KvClient[]> {
  return await Promise.all(ids.map((via) => cluster.client({ via, route: false, timeoutMs: 4000 })));
}

async function waitConditional(client: KvClient, key: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await client.increment(key, 0);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("conditional operations never became available");
}

clusterTest(
  "put --if-absent races through two nodes: exactly one winner per key, read on both replicas",
  async () => {
    const cluster = await start(3, 2);
    try {
      const [a, b] = await clientsPerNode(cluster, ["node1", "node2"]);
      await waitConditional(a, "warmup");
      const keys = Array.from({ length: 300 }, (_, i) => `race:${i}`);
      const winners = new Map<string, string>();
      for (let i = 0; i < keys.length; i += 20) {
        await Promise.all(
          keys.slice(i, i + 20).map(async (key) => {
            const timed = async (c: KvClient, v: string) => {
              const call = performance.now();
              const r = await c.putIf(key, v, { kind: "absent" });
              const value = r.applied ? v : text(r.current?.value ?? new Uint8Array());
              return {
                r,
                op: { input: v, output: { applied: r.applied, value }, call, ret: performance.now() },
              };
            };
            const [ta, tb] = await Promise.all([timed(a, `A-${key}`), timed(b, `B-${key}`)]);
            const [ra, rb] = [ta.r, tb.r];
            assert.ok(checkLinearizable(putIfAbsentModel, [ta.op, tb.op]).ok, `${key}: not linearizable`);
            assert.equal(Number(ra.applied) + Number(rb.applied), 1, `${key}: ${ra.message} / ${rb.message}`);
            const [won, lost] = ra.applied ? [`A-${key}`, rb] : [`B-${key}`, ra];
            assert.equal(text(lost.current!.value), won, `${key}: the loser is told the winner's value`);
            winners.set(key, won);
          }),
        );
      }
      const ring = new HashRing(cluster.nodes.map((n) => n.id), 150);
      const reader = await cluster.client({ timeoutMs: 4000 });
      for (const key of keys) {
        for (const id of ring.preferenceList(key, 2)) {
          const r = await reader.get(key, { fromReplica: true, address: cluster.node(id).address });
          assert.equal(r.found ? text(r.value) : "(absent)", winners.get(key), `${key} on ${id}`);
        }
      }
      const wonByA = [...winners.values()].filter((v) => v.startsWith("A-")).length;
      console.log(`  300 keys: node1's client won ${wonByA}, node2's ${300 - wonByA}`);
    } finally {
      await cluster.stop();
    }
  },
);

/** Three clients, one per node, each increment `count` times; `during` runs meanwhile. */
async function counterRun(cluster: TestCluster, key: string, count: number, during?: () => Promise<void>) {
  const clients = await clientsPerNode(cluster, ["node1", "node2", "node3"]);
  await waitConditional(clients[0], key);
  const values: bigint[] = [];
  const history: HistoryOp<bigint, bigint>[] = [];
  const errors = new Map<string, number>();
  let attempted = 0;
  const t0 = performance.now();
  const work = clients.map(async (c) => {
    for (let i = 0; i < count; i++) {
      attempted++;
      const call = performance.now();
      try {
        const value = BigInt((await c.increment(key)).value);
        values.push(value);
        history.push({ input: 1n, output: value, call, ret: performance.now() });
      } catch (err) {
        history.push({ input: 1n, call, ret: Infinity });
        const code = err instanceof KvError ? err.code : -1;
        errors.set(String(code), (errors.get(String(code)) ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  await Promise.all([...work, during?.()]);
  const seconds = (performance.now() - t0) / 1000;
  const readAt = performance.now();
  const final = BigInt((await cluster.client({ timeoutMs: 4000 }).then((c) => c.increment(key, 0))).value);
  history.push({ input: 0n, output: final, call: readAt, ret: performance.now() });
  const verdict = checkLinearizable(counterModel, history);
  console.log(
    `  ${attempted} attempted, ${values.length} acknowledged, final ${final}, errors by code ${
      JSON.stringify(Object.fromEntries(errors))
    }, ${Math.round(values.length / seconds)} increments/s; linearizable: ${JSON.stringify(verdict)}`,
  );
  assert.ok(verdict.ok, "the increment history is not linearizable");
  return { values, attempted, final };
}

clusterTest(
  "three clients through three nodes increment one counter 600 times each: none lost, none twice",
  async () => {
    const cluster = await start(3, 3);
    try {
      const { values, attempted, final } = await counterRun(cluster, "counter", 600);
      assert.equal(new Set(values).size, values.length, "two increments returned the same value");
      assert.equal(final, BigInt(values.length), "final value differs from the acknowledged count");
      assert.equal(attempted, 1800);
      assert.deepEqual(checkCounter(values, final, attempted), []);
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 240_000 },
);

/** The counter run while a fault hits one node: the invariants that hold whatever the outcome of each call. */
function faultedCounter(name: string, fault: (cluster: TestCluster) => Promise<void>): void {
  clusterTest(`counter while ${name}: values distinct, acknowledged <= final <= attempted`, async () => {
    const cluster = await start(3, 3);
    try {
      const { values, attempted, final } = await counterRun(cluster, "counter", 600, async () => {
        await sleep(1000);
        await fault(cluster);
      });
      assert.deepEqual(checkCounter(values, final, attempted), []);
    } finally {
      await cluster.stop();
    }
  }, { timeoutMs: 240_000 });
}

/** The counter's leader: the node its operations go to, the one whose fault matters most. */
function leaderOf(cluster: TestCluster, key: string): string {
  return new HashRing(cluster.nodes.map((n) => n.id), 150).preferenceList(key, 3)[0];
}

faultedCounter("its leader is paused (SIGSTOP) for 3 s", async (cluster) => {
  const leader = leaderOf(cluster, "counter");
  await cluster.signal(leader, "SIGSTOP");
  await sleep(3000);
  await cluster.signal(leader, "SIGCONT");
});

const killLeader = async (cluster: TestCluster) => {
  const leader = leaderOf(cluster, "counter");
  await cluster.kill(leader);
  await sleep(1000);
  await cluster.startNode(leader);
};

faultedCounter("its leader is killed -9 and restarted", killLeader);

clusterTest(
  "Redis engine: counter while its leader is killed -9 and restarted with its votes kept",
  async () => {
    const { procs, dirs } = await startRedises(3);
    try {
      const cluster = await start(3, 3, procs.map((p) => p.port));
      try {
        const { values, attempted, final } = await counterRun(cluster, "counter", 300, async () => {
          await sleep(1000);
          await killLeader(cluster);
        });
        assert.deepEqual(checkCounter(values, final, attempted), []);
      } finally {
        await cluster.stop();
      }
    } finally {
      await stopRedises(procs, dirs);
    }
  },
  { timeoutMs: 240_000, ignore: ignoreRedis },
);

clusterTest(
  "rf 2, one replica down: conditional operations on its keys are UNAVAILABLE and change nothing",
  async () => {
    const cluster = await start(3, 2);
    try {
      const client = await cluster.client({ via: "node1", route: false, timeoutMs: 4000 });
      await waitConditional(client, "warmup");
      const ring = new HashRing(cluster.nodes.map((n) => n.id), 150);
      const key = Array.from({ length: 100 }, (_, i) => `down:${i}`)
        .find((k) =>
          ring.preferenceList(k, 2).includes("node3") && ring.preferenceList(k, 2).includes("node1")
        )!;
      await cluster.kill("node3");
      await sleep(1500);
      for (const op of [() => client.putIf(key, "x", { kind: "absent" }), () => client.increment(key)]) {
        await assert.rejects(
          op,
          (e) => e instanceof KvError && e.code === Code.UNAVAILABLE,
          "expected UNAVAILABLE",
        );
      }
      const r = await client.get(key);
      assert.equal(r.found, false, "a refused conditional operation left a value");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest(
  "a plain write racing increments is ordered by last-write-wins alone: counter values repeat",
  async () => {
    const cluster = await start(3, 3);
    try {
      const [incr, plain] = await clientsPerNode(cluster, ["node1", "node2"]);
      await waitConditional(incr, "mixed");
      const values: string[] = [];
      let stop = false;
      const resets = (async () => {
        let n = 0;
        while (!stop) {
          await plain.put("mixed", "0");
          n++;
          await sleep(30);
        }
        return n;
      })();
      for (let i = 0; i < 200; i++) values.push((await incr.increment("mixed")).value);
      stop = true;
      const n = await resets;
      const repeated = values.length - new Set(values).size;
      console.log(`  200 increments, ${n} plain puts of "0": ${repeated} increment results repeated`);
      assert.ok(repeated > 0, "plain writes should have reset the counter under the increments");
    } finally {
      await cluster.stop();
    }
  },
);

clusterTest("CLI: put --if-absent, get --version, put/delete --if-version, incr", async () => {
  const cluster = await start(3, 2);
  const cwd = await Deno.makeTempDir({ prefix: "kvstore-cli-" });
  try {
    const addr = ["--addr", cluster.node("node1").address];
    const cli = (...args: string[]) => runMain(cwd, "client", ...args, ...addr);
    let r = await cli("put", "user:ann", "first", "--if-absent");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    r = await cli("put", "user:ann", "second", "--if-absent");
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /NOT APPLIED.*current "first"/);
    r = await cli("get", "user:ann", "--version", "--json");
    const version = JSON.parse(r.stdout).version as string;
    assert.match(version, /^\d+@node\d$/);
    r = await cli("put", "user:ann", "third", "--if-version", version);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    r = await cli("delete", "user:ann", "--if-version", version);
    assert.equal(r.code, 1, "a delete against a replaced version must not apply");
    r = await cli("incr", "hits", "5");
    assert.equal([r.code, r.stdout.trim()].join(" "), "0 5");
    r = await cli("incr", "hits");
    assert.equal(r.stdout.trim(), "6");
    r = await cli("incr", "user:ann");
    assert.equal(r.code, 2);
    assert.match(r.stdout, /value is not an integer or out of range/);
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

clusterTest(
  "CLI: put --if-absent --ttl (forwarded): one expiry on every replica, then --if-absent again",
  async () => {
    const cluster = await start(3, 2);
    const cwd = await Deno.makeTempDir({ prefix: "kvstore-cli-" });
    const probe = await cluster.client();
    try {
      // --no-route: node1 forwards the keys it does not lead, so the ttl crosses ForwardConditional.
      const cli = (...args: string[]) =>
        runMain(cwd, "client", ...args, "--addr", cluster.node("node1").address, "--no-route");
      const keys = Array.from({ length: 6 }, (_, i) => `lease:${i}`);
      // In parallel, and long enough to outlast starting the CLI processes before the copies are read.
      const puts = await Promise.all(keys.map((key) => cli("put", key, "a", "--if-absent", "--ttl", "5s")));
      for (const r of puts) assert.equal(r.code, 0, r.stdout + r.stderr);
      const forwarded = keys.filter((k) => ringOf(cluster).preferenceList(k, 2)[0] !== "node1");
      assert.ok(forwarded.length > 0, "no key crosses ForwardConditional");
      let expiresAt = 0;
      for (const key of keys) expiresAt = Math.max(expiresAt, await sharedExpiry(cluster, probe, key, 2));
      console.log(`${forwarded.length} of ${keys.length} keys led by another node than node1`);
      let r = await cli("put", keys[0], "b", "--if-absent");
      assert.equal(r.code, 1, "a live key was taken by --if-absent");
      await sleep(expiresAt - Date.now() + 300);
      const again = await Promise.all(keys.map((key) => cli("put", key, "b", "--if-absent")));
      again.forEach((a, i) => assert.equal(a.code, 0, `${keys[i]} after its expiry: ${a.stdout}${a.stderr}`));
      r = await cli("ttl", keys[0], "--json");
      assert.equal(JSON.parse(r.stdout).ttl_ms, -1, "the second put has no expiry");
    } finally {
      probe.close();
      await cluster.stop();
      await Deno.remove(cwd, { recursive: true });
    }
  },
);

clusterTest(
  "Paxos calls from a node: a ballot far ahead and a record of another key are refused",
  async () => {
    const cluster = await start(3, 2);
    const peers = cluster.peerTransport("node2", "node1", { timeoutMs: 3000 });
    try {
      const lwt = peers.lwt(3000);
      const farAhead = { round: (Date.now() + 3600_000) * 1000, node: "node2" };
      const invalid = (e: unknown) => e instanceof KvError && e.code === Code.INVALID_ARGUMENT;
      await assert.rejects(() => lwt.prepare("node1", "k", farAhead), invalid);
      const record = {
        key: "other",
        value: new Uint8Array(),
        timestamp: Date.now() * 1000,
        versionNode: "node2",
        tombstone: false,
      };
      await assert.rejects(
        () => lwt.accept("node1", "k", { round: Date.now() * 1000, node: "node2" }, record),
        invalid,
      );
      // A sane prepare still gets a vote.
      const vote = await lwt.prepare("node1", "k", { round: Date.now() * 1000, node: "node2" });
      assert.ok(vote.ok, JSON.stringify(vote));
    } finally {
      peers.close();
      await cluster.stop();
    }
  },
);
