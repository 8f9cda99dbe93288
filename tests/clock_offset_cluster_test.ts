/**
 * Clock offset monitoring with real processes: node1 runs under libfaketime
 * behind its peers (100 s, then 30 s). It must report its offset
 * (kvstore_clock_offset_seconds), turn /readyz and gRPC health NOT_SERVING
 * with the reason, and leave its keys to the next node, so that writes of
 * its keys through node2 and node3 all succeed, none answered "not applied",
 * and every acknowledged value is read back; the same across a kill -9 and
 * restart of node1 (still skewed) while its keys are rewritten through the
 * others. In a 2-node cluster the skewed node only warns and keeps serving.
 *
 * At 30 s the cluster runs with its secret as usual (within the tokens' 60 s
 * window). At 100 s it runs twice: without a secret (protected mode,
 * loopback only), where heartbeats measure the offsets, and with its secret,
 * where every token of node1 is refused for its time (and node1 refuses its
 * peers'): no heartbeat gets through, the peers see node1 FAILED, and the
 * offsets come only from the refusals, which carry the receiver's clock
 * (ClockWatch.noteReceiverTime).
 * Skipped only when libfaketime is absent and CI is unset.
 */
import assert from "node:assert/strict";
import {
  clusterTest,
  endCluster,
  keysOwnedBy,
  kvError,
  logLines,
  ringOf,
  runMain,
  TestCluster,
} from "./helpers/cluster.ts";
import { healthCheck, healthClient } from "./helpers/grpc_tools.ts";
import { behind, ignoreWithoutFaketime } from "./helpers/faketime.ts";
import type { KvClient } from "../lib/grpc/kv_client.ts";
import { Code, KvError } from "../lib/errors.ts";

const ignore = ignoreWithoutFaketime;

/** A node's `kvstore_clock_offset_seconds` per peer, from its /metrics. */
async function offsets(cluster: TestCluster, id: string): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${cluster.node(id).adminPort}/metrics`);
  const body = await res.text();
  const out = new Map<string, number>();
  for (const m of body.matchAll(/^kvstore_clock_offset_seconds\{peer="([^"]+)"\} (\S+)$/gm)) {
    out.set(m[1], Number(m[2]));
  }
  return out;
}

async function readyz(cluster: TestCluster, id: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${cluster.node(id).adminPort}/readyz`);
  return { status: res.status, body: await res.text() };
}

/** What one round of writes met: puts acknowledged, and every failure's message. */
interface Round {
  acked: number;
  failures: string[];
}

/**
 * Writes `value` to every key, alternating between a client that sends
 * everything to node2 (it forwards) and a routing client of node3's view.
 * Records the last acknowledged value of each key.
 */
async function writeRound(
  clients: KvClient[],
  keys: string[],
  value: string,
  acked: Map<string, string>,
): Promise<Round> {
  const round: Round = { acked: 0, failures: [] };
  await Promise.all(keys.map(async (key, i) => {
    try {
      await clients[i % clients.length].put(key, `${value}:${key}`);
      acked.set(key, `${value}:${key}`);
      round.acked++;
    } catch (err) {
      round.failures.push(`${key}: ${err instanceof KvError ? err.message : String(err)}`);
    }
  }));
  return round;
}

/** Waits until node1 says its clock is off: /readyz 503 naming the offset. */
async function waitClockOff(cluster: TestCluster): Promise<string> {
  let last = { status: 0, body: "" };
  await cluster.waitFor(
    async () => {
      last = await readyz(cluster, "node1").catch(() => ({ status: 0, body: "" }));
      return last.status === 503 && last.body.includes("clock offset beyond");
    },
    30_000,
    "node1's /readyz to name its clock offset",
  ).catch((err) => {
    throw new Error(`${err.message} (last: ${last.status} ${last.body})\n${cluster.logs("node1")}`);
  });
  return last.body.trim();
}

/** Every key reads back, through node2 and node3, as its last acknowledged value. */
async function checkReadBack(clients: KvClient[], acked: Map<string, string>): Promise<void> {
  const wrong: string[] = [];
  for (const client of clients) {
    await Promise.all([...acked].map(async ([key, want]) => {
      const r = await client.get(key).catch((err) => ({ found: false, value: text(String(err)) }));
      const got = r.found ? new TextDecoder().decode(r.value) : "(missing)";
      if (got !== want) wrong.push(`${key}: ${got} instead of ${want}`);
    }));
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} acknowledged values not read back`);
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function checkRound(name: string, r: Round, keys: number): void {
  console.log(`  ${name}: ${r.acked} of ${keys} puts acknowledged`);
  const notApplied = r.failures.filter((f) => f.includes("not applied"));
  assert.deepEqual(
    notApplied.slice(0, 3),
    [],
    `${notApplied.length} cluster-stamped writes answered "not applied"`,
  );
  assert.deepEqual(r.failures.slice(0, 3), [], `${r.failures.length} puts failed`);
}

function skewTest(seconds: number, secret: boolean): void {
  // Beyond the token window no call of node1 or to it gets through.
  const refusedForTime = secret && seconds > 60;
  clusterTest(
    `a node ${seconds} s behind (${
      secret ? "with" : "without"
    } a cluster secret) reports its offset, turns ` +
      `NOT_SERVING with the reason, and its keys stay writable through the others, also across its kill -9 and restart`,
    async () => {
      const cluster = await TestCluster.start({ nodes: 3, startOnly: ["node2", "node3"], secret });
      const health = healthClient(cluster.node("node1").address);
      try {
        await cluster.startNode("node1", [], { env: behind(seconds) });
        const t0 = Date.now();
        const reason = await waitClockOff(cluster);
        console.log(`  node1 /readyz ${Date.now() - t0} ms after it listened: ${reason}`);
        assert.match(
          reason,
          new RegExp(`${seconds - 1}\\.\\d{3} s behind node2|${seconds}\\.\\d{3} s behind node2`),
        );
        assert.equal(await healthCheck(health), "NOT_SERVING");
        assert.equal(await healthCheck(health, "kvstore.KeyValueStore"), "NOT_SERVING");
        const seen = await offsets(cluster, "node1");
        console.log(`  node1's kvstore_clock_offset_seconds: ${JSON.stringify(Object.fromEntries(seen))}`);
        for (const peer of ["node2", "node3"]) {
          assert.ok(Math.abs(seen.get(peer)! - seconds) < 1, `node1 measures ${peer} ${seconds} s ahead`);
        }
        let fromNode2 = new Map<string, number>();
        await cluster.waitFor(
          async () => (fromNode2 = await offsets(cluster, "node2")).has("node1"),
          5000,
          "node2 to measure node1",
        );
        console.log(
          `  node2's kvstore_clock_offset_seconds: ${JSON.stringify(Object.fromEntries(fromNode2))}`,
        );
        assert.ok(Math.abs(fromNode2.get("node1")! + seconds) < 1, "node2 measures node1 behind");
        assert.ok(logLines(cluster, "node1", "stops coordinating writes").length >= 1, "node1 logs why");
        // client status, asked of node2, shows node1's clock against node2's and why node1 does not serve.
        const status = await runMain(
          cluster.dir,
          "client",
          "status",
          "--addr",
          cluster.node("node2").address,
        );
        assert.equal(status.code, 0, status.stderr);
        console.log(status.stdout.split("\n").filter((l) => /^(NODE|node1)/.test(l)).join("\n"));
        assert.match(status.stdout, /\bCLOCK\b/);
        assert.match(
          status.stdout,
          new RegExp(
            `^node1\\s.*${refusedForTime ? "FAILED" : "JOINING"}.*-(${
              seconds - 1
            }|${seconds})\\.\\d{3}s ±\\d+ms`,
            "m",
          ),
        );
        assert.match(status.stdout, /^node1 not serving: clock offset beyond/m);
        // So does the status page's data, as node2 serves it.
        const page = await fetch(`http://127.0.0.1:${cluster.node("node2").adminPort}/status.json`).then((
          r,
        ) => r.json());
        const card = page.nodes.find((n: { id: string }) => n.id === "node1");
        assert.ok(
          Math.abs(card.clock_offset_ms + seconds * 1000) < 1000,
          `status page: ${card.clock_offset_ms}`,
        );
        assert.match(card.not_serving_reason, /^clock offset beyond/);
        assert.equal(card.state, "joining");
        // A write forwarded to it anyway (by a peer that has not heard yet) is refused, so the peer fails over.
        const asNode2 = cluster.peerTransport("node2", "node1", { timeoutMs: 5000 });
        try {
          const refused = await kvError(() =>
            asNode2.forwardWrites("node1", [{ key: "k", value: text("v"), timestamp: 0, tombstone: false }])
          );
          if (refusedForTime) {
            assert.equal(refused.code, 16, refused.message); // UNAUTHENTICATED: the token, first
          } else {
            assert.equal(refused.code, Code.UNAVAILABLE);
            assert.match(refused.message, /does not coordinate writes: clock offset beyond/);
          }
        } finally {
          asNode2.close();
        }
        // Peers see it as not serving (JOINING): they route its keys to the next node.
        const viaNode2 = await cluster.client({ via: "node2", route: false });
        const routing = await cluster.client({ via: "node3" });
        const clients = [viaNode2, routing];
        const keys = keysOwnedBy(ringOf(cluster), "node1", "skew-", 150);
        const acked = new Map<string, string>();
        checkRound("first writes", await writeRound(clients, keys, "v1", acked), keys.length);
        checkRound("rewrites", await writeRound(clients, keys, "v2", acked), keys.length);
        await checkReadBack(clients, acked);

        // kill -9 and restart, still skewed, while its keys are rewritten elsewhere.
        await cluster.kill("node1");
        checkRound("rewrites while node1 is down", await writeRound(clients, keys, "v3", acked), keys.length);
        let n = 4;
        const restarted = cluster.startNode("node1", [], { env: behind(seconds) });
        let restarting = true;
        void restarted.catch(() => {}).finally(() => restarting = false);
        // Rounds one after another (each key's last acknowledged value is then
        // its newest), until node1 listens again and then a few more.
        for (let extra = 0; restarting || extra < 5; extra += restarting ? 0 : 1) {
          checkRound(
            `rewrites while node1 restarts (v${n})`,
            await writeRound(clients, keys, `v${n++}`, acked),
            keys.length,
          );
        }
        await restarted;
        console.log(`  node1 /readyz after restart: ${await waitClockOff(cluster)}`);
        assert.equal(await healthCheck(health), "NOT_SERVING");
        checkRound("rewrites after restart", await writeRound(clients, keys, `v${n++}`, acked), keys.length);
        await checkReadBack(clients, acked);
        const refused = ["node1", "node2", "node3"].flatMap((id) => logLines(cluster, id, "not applied"));
        assert.deepEqual(refused, [], "no node logged a write not applied");
      } finally {
        health.close();
        await endCluster(cluster);
      }
    },
    { ignore, timeoutMs: 120_000 },
  );
}

skewTest(100, false);
skewTest(100, true);
skewTest(30, true);

clusterTest(
  "the offset is measured on the clock that stamps versions: a node run 5 s ahead with --clock-offset-ms is NOT_SERVING",
  async () => {
    // The chaos suite's clock-ahead nemesis moves only the write clock, not the system's.
    const cluster = await TestCluster.start({ nodes: 3, startOnly: ["node2", "node3"] });
    try {
      await cluster.startNode("node1", ["--clock-offset-ms", "5000"]);
      const reason = await waitClockOff(cluster);
      console.log(`  node1 /readyz: ${reason}`);
      assert.match(reason, /[45]\.\d{3} s ahead of node2/);
      const seen = await offsets(cluster, "node1");
      assert.ok(
        Math.abs(seen.get("node2")! + 5) < 0.5,
        `node1 measures node2 5 s behind: ${seen.get("node2")}`,
      );
      // Its heartbeat replies carry that clock too, so its peers see it ahead.
      let fromNode2 = new Map<string, number>();
      await cluster.waitFor(
        async () => (fromNode2 = await offsets(cluster, "node2")).has("node1"),
        5000,
        "node2 to measure node1",
      );
      const n1 = fromNode2.get("node1")!;
      console.log(`  node2 measures node1 ${n1} s ahead`);
      assert.ok(Math.abs(n1 - 5) < 0.5, `node2 measures node1 5 s ahead: ${n1}`);
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "a node whose clock is off never coordinates a write itself: cut from its peers, it answers UNAVAILABLE",
  async () => {
    // Found by the chaos suite (clock-ahead): with every peer FAILED, the
    // write path fell back to the first node that can store, this one, which
    // stamped versions 5 s ahead that no peer would take afterwards.
    const cluster = await TestCluster.start({ nodes: 3, startOnly: ["node2", "node3"] });
    try {
      await cluster.startNode("node1", ["--clock-offset-ms", "5000"]);
      await waitClockOff(cluster);
      const keys = keysOwnedBy(ringOf(cluster), "node1", "held-", 20);
      await cluster.signal("node2", "SIGSTOP");
      await cluster.signal("node3", "SIGSTOP");
      const direct = await cluster.client({ via: "node1", route: false, timeoutMs: 3000 });
      await cluster.waitFor(
        async () => {
          const m = await direct.membership(cluster.node("node1").address);
          return m.members.filter((x) => x.id !== "node1").every((x) => x.status === "FAILED");
        },
        10_000,
        "node1 to hold node2 and node3 FAILED",
      );
      const answers: string[] = [];
      for (const key of keys) {
        const r = await direct.put(key, "stamped 5 s ahead?").then(
          (w) => (w.ok ? "acknowledged" : `not applied: ${w.message}`),
          (err) => (err instanceof KvError && err.code === Code.UNAVAILABLE ? "UNAVAILABLE" : String(err)),
        );
        answers.push(r);
      }
      console.log(
        `  node1 alone, clock held: ${answers.length} puts, ${new Set(answers).size} kind(s) of answer`,
      );
      assert.deepEqual(new Set(answers), new Set(["UNAVAILABLE"]), answers.join("\n"));
      const held = await Promise.all(keys.map((k) => direct.get(k, { fromReplica: true })));
      assert.equal(held.filter((r) => r.found).length, 0, "node1 stored writes it refused");
    } finally {
      await cluster.signal("node2", "SIGCONT").catch(() => {});
      await cluster.signal("node3", "SIGCONT").catch(() => {});
      await endCluster(cluster);
    }
  },
  { timeoutMs: 60_000 },
);

clusterTest(
  "in a 2-node cluster a node 100 s behind only warns and keeps serving",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2, startOnly: ["node2"], secret: false });
    const health = healthClient(cluster.node("node1").address);
    try {
      await cluster.startNode("node1", [], { env: behind(100) });
      await cluster.waitFor(
        () => logLines(cluster, "node1", "keeps serving").length > 0,
        20_000,
        "node1 to warn about its clock",
      );
      console.log(`  node1: ${logLines(cluster, "node1", "keeps serving")[0]}`);
      await cluster.waitActive();
      const seen = await offsets(cluster, "node1");
      assert.ok(Math.abs(seen.get("node2")! - 100) < 1, "node1 measures node2 100 s ahead");
      // Health is re-read a few times a second: wait for it rather than race it.
      await cluster.waitFor(async () => (await readyz(cluster, "node1")).status === 200, 5000, "node1 ready");
      assert.equal(await healthCheck(health), "SERVING");
      await cluster.waitFor(
        () => logLines(cluster, "node2", "keeps serving").length > 0,
        5000,
        "node2 to warn too",
      );
    } finally {
      health.close();
      await endCluster(cluster);
    }
  },
  { ignore, timeoutMs: 60_000 },
);
