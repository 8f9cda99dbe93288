/**
 * A node whose Redis dies while the node runs (real redis-server, real node
 * processes, kill -9): as the README promises, the node answers reads of its
 * own copy with UNAVAILABLE naming its storage (writes sent to it go to a
 * stand-in), stops heartbeating so its peers mark it SUSPECTED and then
 * FAILED while writes go on through stand-ins, and once Redis is back
 * it reconnects and rejoins by itself, with its data and the writes it
 * missed, without a restart.
 *
 * Ignored (visibly) only when redis-server is missing and CI is not set.
 */
import assert from "node:assert/strict";
import { Code } from "../lib/errors.ts";
import { startRedisServer } from "../lib/redis_server.ts";
import {
  clusterTest,
  endCluster,
  kvError,
  logLines,
  ringOf,
  statusSeenBy,
  TestCluster,
  text,
  waitForStatus,
} from "./helpers/cluster.ts";
import { ignoreRedis, startRedises, stopRedises } from "./helpers/redis.ts";

const HEARTBEAT_MS = 200;
const SUSPECT_MS = 1000;
const FAILURE_MS = 2000;

clusterTest(
  "a node whose Redis is killed answers UNAVAILABLE, stops heartbeating, and rejoins by itself when Redis returns",
  async () => {
    // appendfsync always: the killed Redis comes back with every write it acknowledged.
    const persist = { appendOnly: true, appendFsync: "always" as const };
    const { procs, dirs } = await startRedises(3, persist);
    const cluster = await TestCluster.start({
      nodes: 3,
      storage: "redis",
      redisPorts: procs.map((p) => p.port),
      heartbeatMs: HEARTBEAT_MS,
      suspectMs: SUSPECT_MS,
      failureMs: FAILURE_MS,
    }).catch(async (err) => {
      await stopRedises(procs, dirs);
      throw err;
    });
    const victim = "node2";
    const redisPort = procs[1].port;
    try {
      const ring = ringOf(cluster);
      const client = await cluster.client({ via: "node1" });
      const keys = Array.from({ length: 300 }, (_, i) => `out-${i}`);
      const value = new Map(keys.map((k) => [k, `${k}=first`]));
      const put = await client.multiPut(keys.map((key) => ({ key, value: value.get(key)! })));
      assert.deepEqual(put.filter((r) => !r.ok).map((r) => r.message), []);
      const owned = keys.filter((k) => ring.owner(k) === victim);
      const held = keys.filter((k) => ring.preferenceList(k, 2).includes(victim));
      assert.ok(owned.length > 40, `only ${owned.length} keys owned by ${victim}`);
      const direct = await cluster.client({ via: victim, route: false, timeoutMs: 3000 });
      await cluster.waitFor(
        async () => (await direct.multiGet(held, { fromReplica: true })).every((r) => r.found),
        10_000,
        `${victim} to hold its copies`,
      );

      const pid = cluster.pid(victim);
      await procs[1].kill9();
      const killedAt = Date.now();

      // The node answers, with UNAVAILABLE naming its storage, instead of
      // hanging or crashing: at once (the call fails on the dead connection),
      // and once it has noticed the loss (it refuses before trying).
      const named = new RegExp(`${victim}: storage unavailable|redis 127\\.0\\.0\\.1:${redisPort}`);
      const first = await kvError(() => direct.get(owned[0], { fromReplica: true }));
      assert.equal(first.code, Code.UNAVAILABLE, first.message);
      assert.match(first.message, named);
      await cluster.waitFor(
        async () => await statusSeenBy(direct, cluster, victim, victim) === "SUSPECTED",
        5000,
        `${victim} to report itself SUSPECTED`,
      );
      const later = await kvError(() => direct.get(owned[1], { fromReplica: true }));
      assert.equal(later.code, Code.UNAVAILABLE, later.message);
      assert.match(later.message, named);
      // A write sent to it is not refused: it goes to a live stand-in.
      const write = await direct.put(owned[1], `${owned[1]}=via-${victim}`);
      assert.ok(write.ok, write.message);
      assert.notEqual(write.nodeId, victim);
      value.set(owned[1], `${owned[1]}=via-${victim}`);

      // No heartbeats from it: its peers suspect it, then declare it FAILED.
      const suspectedMs = await waitForStatus(cluster, client, ["node1", "node3"], victim, [
        "SUSPECTED",
        "FAILED",
      ], 10 * FAILURE_MS);
      const failedMs = await waitForStatus(
        cluster,
        client,
        ["node1", "node3"],
        victim,
        ["FAILED"],
        10 * FAILURE_MS,
      );
      console.log(
        `  Redis of ${victim} killed: its peers saw it SUSPECTED within ${suspectedMs} ms, FAILED within ` +
          `${suspectedMs + failedMs} ms (suspect ${SUSPECT_MS} ms, failure ${FAILURE_MS} ms)`,
      );
      assert.ok(cluster.isRunning(victim), `${victim}'s process ended when its Redis died`);

      // Writes of its keys go on meanwhile, through stand-ins.
      for (const k of owned.slice(0, 30)) {
        const r = await client.put(k, `${k}=during`);
        assert.ok(r.ok, `put ${k} while ${victim}'s Redis is down: ${r.message}`);
        assert.notEqual(r.nodeId, victim);
        value.set(k, `${k}=during`);
      }

      // Redis returns on the same port with its data; the node resumes by itself.
      procs[1] = await startRedisServer({ ...persist, port: redisPort, dir: dirs[1] });
      const restartedAt = Date.now();
      const backMs = await waitForStatus(
        cluster,
        client,
        cluster.nodes.map((n) => n.id),
        victim,
        ["ACTIVE"],
        30_000,
      );
      let wrong: string[] = [];
      await cluster.waitFor(
        async () => {
          const got = await direct.multiGet(held, { fromReplica: true }).catch(() => []);
          wrong = held.filter((k, i) => !got[i]?.found || text.decode(got[i].value) !== value.get(k));
          return wrong.length === 0;
        },
        10_000,
        `${victim}'s own copies to hold every newest value`,
      ).catch((e) => {
        throw new Error(`${e.message}: ${wrong.length} wrong, e.g. ${wrong.slice(0, 5).join(", ")}`);
      });
      console.log(
        `  Redis back ${
          restartedAt - killedAt
        } ms after the kill; ${victim} ACTIVE on every node ${backMs} ms later, ` +
          `holding all ${held.length} of its copies with the newest values (${Date.now() - restartedAt} ms)`,
      );
      for (const k of owned) {
        const got = await direct.get(k);
        assert.equal(text.decode(got.value), value.get(k), `${k} read through ${victim}`);
      }
      assert.ok(cluster.isRunning(victim), `${victim}'s process ended`);
      assert.equal(cluster.pid(victim), pid, `${victim} was not restarted`);
      assert.deepEqual(cluster.failures(), []);
      const started = logLines(cluster, victim, "listening on");
      assert.equal(started.length, 1, `${victim} started once`);
      assert.equal(logLines(cluster, victim, `redis 127.0.0.1:${redisPort} unreachable`).length, 1);
      assert.equal(logLines(cluster, victim, `redis 127.0.0.1:${redisPort} reachable again`).length, 1);
      assert.equal(await statusSeenBy(client, cluster, victim, victim), "ACTIVE");
    } finally {
      await endCluster(cluster);
      await stopRedises(procs, dirs);
    }
  },
  { timeoutMs: 90_000, ignore: ignoreRedis },
);
