/**
 * Callers' cursors cannot steer a node's own scans (real processes, memory
 * engine). The memory engine numbers every scan in one table, its internal
 * ones (range moves, recovery, anti-entropy, cleanup) included: a ListKeys
 * with a guessed storage cursor used to advance a range move's scan, the
 * joiner then missed those records and, once `cleanup_grace_ms` had passed,
 * the old holders dropped theirs. Here a client pages ListKeys on every node
 * with guessed cursors (small numbers, random strings, cursors handed to
 * another connection) throughout a join of 20 000 keys: every guess must be
 * refused INVALID_ARGUMENT, and afterwards every key must sit on exactly
 * its replication_factor nodes. Also, on both engines: a cursor is good
 * only on the connection it was handed to and for one page, and open scans
 * per connection are capped.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, endCluster, kvError, sleep, TestCluster } from "./helpers/cluster.ts";
import { misplaced, preload, waitSettled } from "./helpers/membership.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { ignoreRedis, startRedises, stopRedises } from "./helpers/redis.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { channelOptions, statusError, unary } from "../lib/grpc/call.ts";
import { Code, KvError } from "../lib/errors.ts";

const RF = 2;
const GRACE_MS = 1500;
const KEYS = 20_000;

interface ListKeysPage {
  keys: string[];
  next_cursor: string;
}

/** ListKeys over a connection of its own (grpc-js shares connections between clients unless told not to). */
class Connection {
  readonly #client: grpc.Client;

  constructor(cluster: TestCluster, id: string) {
    const KeyValueStore = kvstorePackage().KeyValueStore;
    this.#client = new KeyValueStore(cluster.node(id).address, grpc.credentials.createInsecure(), {
      ...channelOptions(64 << 20),
      "grpc.use_local_subchannel_pool": 1,
    });
    cluster.closeOnStop(this);
  }

  async listKeys(cursor: string, limit = 0): Promise<ListKeysPage> {
    try {
      return await unary<ListKeysPage>(this.#client, "ListKeys", { cursor, limit }, 5000);
    } catch (err) {
      throw statusError(err);
    }
  }

  /** Pages a scan to its end from `cursor`. */
  async finish(cursor: string): Promise<void> {
    for (let pages = 0; cursor !== "" && pages < 100; pages++) {
      cursor = (await this.listKeys(cursor)).next_cursor;
    }
  }

  close(): void {
    this.#client.close();
  }
}

/** What became of the guessed cursors. */
interface Tally {
  refused: number;
  /** Guesses a node answered with a page: each one a scan the caller had no right to. */
  accepted: string[];
  /** Other answers (a node not serving yet, a deadline): neither refused nor accepted. */
  other: Map<string, number>;
}

/** Random base64url text of the length a real cursor has. */
function randomCursor(): string {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => abc[b % 64]).join("");
}

/**
 * Until `stop()`: on one node, ListKeys with guessed cursors from an
 * attacker's connection, and a legit scan on a second connection whose
 * cursor the attacker tries too. Storage cursors used to be sequential, so
 * the numbers just above the legit one are guessed as well: the node's own
 * scans that start afterwards get them.
 */
class Guesser {
  #stop = false;
  #round = 0;
  readonly done: Promise<void>;

  constructor(
    private readonly attacker: Connection,
    private readonly victim: Connection,
    private tally: Tally,
  ) {
    this.done = this.#run();
  }

  stop(): Promise<void> {
    this.#stop = true;
    return this.done;
  }

  async #run(): Promise<void> {
    let near = -1;
    while (!this.#stop) {
      const round = this.#round++;
      if (round % 20 === 0) {
        const seen = await this.#tryForeign();
        near = /^\d+$/.test(seen) ? Number(seen) : -1;
      }
      // Twelve numbers (just above the legit cursor if it was one, else the next of 0..200) and a random string.
      const guesses = [randomCursor()];
      for (let d = 1; d <= 12; d++) guesses.push(String(near >= 0 ? near + d : (round * 12 + d) % 201));
      await Promise.all(guesses.map((g) => this.#guess(g)));
      await sleep(1);
    }
  }

  async #guess(cursor: string): Promise<void> {
    try {
      await this.attacker.listKeys(cursor);
      this.tally.accepted.push(cursor);
    } catch (err) {
      const e = err instanceof KvError ? err : statusError(err);
      const what = e.message.slice(0, 60);
      if (e.code === Code.INVALID_ARGUMENT) this.tally.refused++;
      else this.tally.other.set(what, (this.tally.other.get(what) ?? 0) + 1);
    }
  }

  /** The victim opens a scan, the attacker tries its cursor, the victim finishes it; the cursor ("" if none). */
  async #tryForeign(): Promise<string> {
    const page = await this.victim.listKeys("", 1).catch(() => undefined);
    if (!page || page.next_cursor === "") return "";
    await this.#guess(page.next_cursor);
    await this.victim.finish(page.next_cursor).catch(() => undefined);
    return page.next_cursor;
  }
}

clusterTest(
  "a join of 20 000 keys while every node is paged with guessed cursors: all refused, every key on exactly RF nodes",
  async () => {
    const cluster = await TestCluster.start({
      nodes: 2,
      replicationFactor: RF,
      extra: { membership: { cleanup_grace_ms: GRACE_MS } },
    });
    const tally: Tally = { refused: 0, accepted: [], other: new Map() };
    const guessers: Guesser[] = [];
    try {
      const client = await cluster.client();
      const { live } = await preload(client, KEYS);
      cluster.addNode("node3");
      const ids = ["node1", "node2", "node3"];
      for (const id of ids) {
        guessers.push(new Guesser(new Connection(cluster, id), new Connection(cluster, id), tally));
      }
      const started = Date.now();
      await cluster.startJoiner("node3", ["node1"]);
      await waitSettled(cluster, client, "node1", (m) => m.includes("node3"), 120_000);
      const joinMs = Date.now() - started;
      // Cleanup scans the old holders GRACE_MS after the change: keep guessing through it.
      await sleep(GRACE_MS * 2);
      await Promise.all(guessers.map((g) => g.stop()));
      let wrong: string[] = [];
      await cluster.waitFor(
        async () => (wrong = await misplaced(cluster, client, ids, live, RF)).length === 0,
        GRACE_MS * 20,
        "every key on exactly its replication_factor nodes",
      ).catch((err) => {
        throw new Error(
          `${err.message}: ${wrong.length} of ${live.length} keys misplaced (guesses accepted: ` +
            `${tally.accepted.length}), e.g.\n${wrong.slice(0, 5).join("\n")}`,
        );
      });
      console.log(
        `join of ${KEYS} keys took ${joinMs} ms under ${tally.refused} refused guesses; ` +
          `other answers: ${JSON.stringify([...tally.other])}`,
      );
      assert.deepEqual(
        tally.accepted.slice(0, 10),
        [],
        `${tally.accepted.length} guessed cursors were accepted`,
      );
      assert.ok(tally.refused > 100, `only ${tally.refused} guesses were answered`);
    } finally {
      await Promise.all(guessers.map((g) => g.stop()));
      await endCluster(cluster);
    }
  },
  { timeoutMs: 240_000 },
);

/** On one node: cursors are bound to their connection and good for one page; open scans are capped per connection. */
async function cursorRules(engine: "memory" | "redis"): Promise<void> {
  const redis = engine === "redis" ? await startRedises(1) : undefined;
  const cluster = await TestCluster.start({
    nodes: 1,
    replicationFactor: 1,
    storage: engine,
    redisPorts: redis?.procs.map((p) => p.port),
    extra: { limits: { max_scans_per_connection: 3 } },
  }).catch(async (err) => {
    if (redis) await stopRedises(redis.procs, redis.dirs);
    throw err;
  });
  try {
    const client = await cluster.client();
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    assert.ok((await client.multiPut(keys.map((key) => ({ key, value: key })))).every((r) => r.ok));
    const a = new Connection(cluster, "node1");
    const b = new Connection(cluster, "node1");

    const first = await a.listKeys("", 10);
    assert.match(first.next_cursor, /^[A-Za-z0-9_-]{22}$/, "a cursor is 128 random bits");
    const foreign = await kvError(() => b.listKeys(first.next_cursor, 10));
    assert.equal(foreign.code, Code.INVALID_ARGUMENT, foreign.message);
    const seen = [...first.keys];
    let cursor = first.next_cursor;
    const second = await a.listKeys(cursor, 10);
    const replay = await kvError(() => a.listKeys(cursor, 10));
    assert.equal(replay.code, Code.INVALID_ARGUMENT, `a cursor serves one page: ${replay.message}`);
    seen.push(...second.keys);
    cursor = second.next_cursor;
    while (cursor !== "") {
      const page = await a.listKeys(cursor, 10);
      seen.push(...page.keys);
      cursor = page.next_cursor;
    }
    // Redis's SCAN may return a key twice; no key may be missing.
    assert.deepEqual(
      [...new Set(seen)].sort(),
      [...keys].sort(),
      "the refused foreign use did not disturb A's scan",
    );

    // Three scans left open on A: a fourth ends the oldest (its cursor is then refused); B is not touched.
    const open: string[] = [];
    for (let i = 0; i < 3; i++) open.push((await a.listKeys("", 1)).next_cursor);
    const onB = (await b.listKeys("", 1)).next_cursor;
    assert.ok((await a.listKeys("", 1)).keys.length >= 1, "a fourth scan on A is served");
    const ended = await kvError(() => a.listKeys(open[0], 1));
    assert.equal(ended.code, Code.INVALID_ARGUMENT, `A's oldest scan was ended: ${ended.message}`);
    await a.finish(open[1]);
    await b.finish(onB);

    // GetSnapshot's cursors are the same kind: a storage-looking number is refused.
    const stub = new NodeStub(cluster, "node1");
    for (const guess of ["0", "1", "2", "3", "17"]) {
      const err = await kvError(() =>
        stub.call("GetSnapshot", { requesting_node_id: "node1", cursor: guess })
      );
      assert.equal(err.code, Code.INVALID_ARGUMENT, `GetSnapshot cursor ${guess}: ${err.message}`);
    }
  } finally {
    await endCluster(cluster);
    if (redis) await stopRedises(redis.procs, redis.dirs);
  }
}

clusterTest(
  "memory: a cursor works only on its own connection, once, and open scans per connection are capped",
  () => cursorRules("memory"),
);

clusterTest(
  "redis: a cursor works only on its own connection, once, and open scans per connection are capped",
  () => cursorRules("redis"),
  { ignore: ignoreRedis },
);
