/**
 * The storage-interface suite, run against every engine: memory, and Redis
 * on a real redis-server each test starts on a free port in a temp dir and
 * stops by PID. Then Redis-only tests: durability across a crash, key
 * prefix isolation, and faults (down, hung, full, restarted).
 *
 * Redis tests are ignored (visibly) only when redis-server is missing and
 * CI is not set; in CI a missing redis-server fails them with the install
 * hint.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Logger } from "../lib/log.ts";
import type { KvRecord, RecordVersion } from "../lib/record.ts";
import {
  type RedisProcess,
  redisServerPath,
  type StartRedisOptions,
  startRedisServer,
} from "../lib/redis_server.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import {
  scanAll,
  scanAllVersions,
  scanChunks,
  type Storage,
  StorageUnavailableError,
} from "../lib/storage/mod.ts";
import { RedisStorage } from "../lib/storage/redis.ts";
import { freePort } from "./helpers/ports.ts";

const redisAvailable = redisServerPath() !== undefined;
const ignoreRedis = !redisAvailable && !Deno.env.get("CI");
/** No test may run longer than this, whatever hangs. */
const TEST_DEADLINE_MS = 60_000;

// ---------------------------------------------------------------- helpers

function rec(key: string, timestamp: number, versionNode = "node1", value?: Uint8Array): KvRecord {
  return {
    key,
    value: value ?? new TextEncoder().encode(`${key}@${timestamp}`),
    timestamp,
    versionNode,
    tombstone: false,
  };
}

function tomb(key: string, timestamp: number, versionNode = "node1"): KvRecord {
  return { key, value: new Uint8Array(0), timestamp, versionNode, tombstone: true };
}

/** Plain bytes, so Buffer and Uint8Array compare equal. */
function bytes(u: Uint8Array | undefined): Uint8Array | undefined {
  return u && Uint8Array.from(u);
}

function assertRecord(got: KvRecord | undefined, want: KvRecord): void {
  assert.ok(got, `record ${want.key} missing`);
  assert.equal(got.key, want.key);
  assert.equal(got.timestamp, want.timestamp);
  assert.equal(got.versionNode, want.versionNode);
  assert.equal(got.tombstone, want.tombstone);
  assert.deepEqual(bytes(got.value), want.tombstone ? new Uint8Array(0) : bytes(want.value));
}

function quietLog(): Logger {
  return new Logger({ level: "error", format: "text", write: () => {} });
}

/** Deterministic shuffle, so a failure can be reproduced. */
function shuffle<T>(items: T[], seed: number): T[] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Fails the test instead of hanging it. */
async function bounded(fn: () => Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`test exceeded ${TEST_DEADLINE_MS} ms`)), TEST_DEADLINE_MS);
  });
  try {
    await Promise.race([fn(), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function elapsedOf(fn: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t0 = performance.now();
  try {
    await fn();
    return { ms: performance.now() - t0, error: undefined };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

interface RedisEnv {
  server: RedisProcess;
  port: number;
  dir: string;
  /** Restarts the server on the same port and data dir. */
  restart(): Promise<RedisProcess>;
}

/** Runs `fn` with a fresh redis-server; stops it by PID and removes its dir. */
async function withRedis(
  fn: (env: RedisEnv) => Promise<void>,
  opts: Partial<StartRedisOptions> = { appendOnly: false },
): Promise<void> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "kv-redis-test-" });
  const env: RedisEnv = {
    server: await startRedisServer({ ...opts, port, dir }),
    port,
    dir,
    async restart() {
      await env.server.stop();
      env.server = await startRedisServer({ ...opts, port, dir });
      return env.server;
    },
  };
  try {
    await fn(env);
  } finally {
    try {
      Deno.kill(env.server.pid, "SIGCONT"); // A stopped process ignores SIGTERM.
    } catch {
      // Already gone.
    }
    await env.server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

function connectTo(
  port: number,
  extra: { keyPrefix?: string; log?: Logger; commandTimeoutMs?: number } = {},
) {
  return RedisStorage.connect({
    host: "127.0.0.1",
    port,
    keyPrefix: extra.keyPrefix ?? "test:",
    log: extra.log ?? quietLog(),
    connectTimeoutMs: 3000,
    commandTimeoutMs: extra.commandTimeoutMs,
  });
}

/** A raw client, for looking at what the store put in Redis. */
async function rawClient(port: number): Promise<Redis> {
  const r = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await r.connect();
  return r;
}

type Engine = "memory" | "redis";

async function withStorage(engine: Engine, fn: (s: Storage) => Promise<void>): Promise<void> {
  if (engine === "memory") {
    const s = new MemoryStorage();
    try {
      await fn(s);
    } finally {
      await s.close();
    }
    return;
  }
  await withRedis(async ({ port }) => {
    const s = await connectTo(port);
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  });
}

// ---------------------------------------------------------- shared suite

const T0 = 1_700_000_000_000_000; // microseconds, a realistic HLC value

const sharedCases: Record<string, (s: Storage) => Promise<void>> = {
  "get of an absent key is undefined, and an empty store counts 0": async (s) => {
    assert.deepEqual(await s.get(["nope"]), [undefined]);
    assert.deepEqual(await s.get([]), []);
    assert.deepEqual(await s.apply([]), []);
    assert.equal(await s.countLive(), 0);
  },

  "apply then get round-trips binary values and odd keys": async (s) => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const backing = new Uint8Array(300).fill(0xee);
    backing.set(all, 20);
    const view = backing.subarray(20, 276); // a view with a byte offset
    const records = [
      rec("all-bytes", T0, "node1", all),
      rec("view", T0, "node1", view),
      rec("empty", T0, "node1", new Uint8Array(0)),
      rec("glob*?[x]\\", T0, "node1", new Uint8Array([0, 0, 0])),
      rec("ключ-🔑", T0, "node1", new Uint8Array([0xff, 0xfe, 0x00, 0x0d, 0x0a])),
      rec("big", T0, "node1", Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff)),
    ];
    assert.deepEqual(await s.apply(records), records.map(() => true));
    const got = await s.get([...records.map((r) => r.key), "absent"]);
    records.forEach((r, i) => assertRecord(got[i], r));
    assert.deepEqual(bytes(got[1]!.value), all);
    assert.equal(got[2]!.value.length, 0);
    assert.equal(got[records.length], undefined);
    assert.equal(await s.countLive(), records.length);
  },

  "last write wins: an older timestamp is not applied": async (s) => {
    assert.deepEqual(await s.apply([rec("k", T0 + 10)]), [true]);
    assert.deepEqual(await s.apply([rec("k", T0 + 9, "zzzz")]), [false]);
    assertRecord((await s.get(["k"]))[0], rec("k", T0 + 10));
    assert.deepEqual(await s.apply([rec("k", T0 + 11, "a")]), [true]);
    assertRecord((await s.get(["k"]))[0], rec("k", T0 + 11, "a"));
  },

  "equal timestamps: the larger versionNode wins, an equal version is not applied": async (s) => {
    assert.deepEqual(await s.apply([rec("k", T0, "node-a")]), [true]);
    assert.deepEqual(await s.apply([rec("k", T0, "node-b")]), [true]);
    assert.deepEqual(await s.apply([rec("k", T0, "node-a")]), [false]);
    assert.deepEqual(await s.apply([rec("k", T0, "node-b", new Uint8Array([9]))]), [false]);
    assertRecord((await s.get(["k"]))[0], rec("k", T0, "node-b"));
    // Byte order, not a locale's collation: "B" (0x42) < "a" (0x61).
    assert.deepEqual(await s.apply([rec("c", T0, "a")]), [true]);
    assert.deepEqual(await s.apply([rec("c", T0, "B")]), [false]);
    // A prefix is smaller than its extensions.
    assert.deepEqual(await s.apply([rec("p", T0, "node")]), [true]);
    assert.deepEqual(await s.apply([rec("p", T0, "node1")]), [true]);
    assert.deepEqual(await s.apply([rec("p", T0, "node")]), [false]);
  },

  "timestamps up to 2^53 compare exactly": async (s) => {
    const max = Number.MAX_SAFE_INTEGER; // 2^53 - 1
    assert.deepEqual(await s.apply([rec("k", max - 1)]), [true]);
    assert.deepEqual(await s.apply([rec("k", max)]), [true]);
    assert.deepEqual(await s.apply([rec("k", max - 1, "zzzz")]), [false]);
    assert.deepEqual(await s.apply([rec("k", max, "node0")]), [false]);
    assert.deepEqual(await s.apply([rec("k", max, "node2")]), [true]);
    const [got] = await s.get(["k"]);
    assert.equal(got!.timestamp, max);
    assert.equal(got!.versionNode, "node2");
    assert.equal(await s.remove("k", { timestamp: max - 1, versionNode: "node2" }), false);
    assert.equal(await s.remove("k", { timestamp: max, versionNode: "node2" }), true);
  },

  "one batch applies each record in order against the previous ones": async (s) => {
    const batch = [rec("a", T0 + 2), rec("a", T0 + 1), rec("b", T0), rec("a", T0 + 3), tomb("b", T0 - 1)];
    assert.deepEqual(await s.apply(batch), [true, false, true, true, false]);
    const [a, b] = await s.get(["a", "b"]);
    assertRecord(a, rec("a", T0 + 3));
    assertRecord(b, rec("b", T0));
    assert.equal(await s.countLive(), 2);
  },

  "a large batch sees its own earlier records across chunk boundaries": async (s) => {
    const first = Array.from({ length: 300 }, (_, i) => rec(`k${i}`, T0 + 1));
    const older = first.map((r) => rec(r.key, T0, "zzzz"));
    const tombs = first.map((r) => tomb(r.key, T0 + 2));
    const results = await s.apply([...first, ...older, ...tombs]);
    assert.deepEqual(results, [
      ...first.map(() => true),
      ...older.map(() => false),
      ...tombs.map(() => true),
    ]);
    assert.equal(await s.countLive(), 0);
    assertRecord((await s.get(["k299"]))[0], tomb("k299", T0 + 2));
  },

  "tombstones hide a key and block older writes": async (s) => {
    await s.apply([rec("k", T0)]);
    assert.deepEqual(await s.apply([tomb("k", T0 + 5)]), [true]);
    assertRecord((await s.get(["k"]))[0], tomb("k", T0 + 5));
    assert.deepEqual(await s.apply([rec("k", T0 + 4, "zzzz")]), [false]);
    assert.deepEqual(await s.apply([rec("k", T0 + 5, "node0")]), [false]);
    assertRecord((await s.get(["k"]))[0], tomb("k", T0 + 5));
    assert.deepEqual(await s.apply([rec("k", T0 + 6)]), [true]);
    assertRecord((await s.get(["k"]))[0], rec("k", T0 + 6));
  },

  "countLive follows put, overwrite, tombstone and remove": async (s) => {
    const live = async (n: number, step: string) => assert.equal(await s.countLive(), n, step);
    await s.apply([rec("a", T0)]);
    await live(1, "put a");
    await s.apply([rec("b", T0)]);
    await live(2, "put b");
    await s.apply([rec("a", T0 + 1)]);
    await live(2, "overwrite a");
    await s.apply([rec("a", T0)]);
    await live(2, "stale put a");
    await s.apply([tomb("a", T0 + 2)]);
    await live(1, "tombstone a");
    await s.apply([tomb("a", T0 + 3)]);
    await live(1, "tombstone over tombstone");
    await s.apply([tomb("c", T0)]);
    await live(1, "tombstone of an absent key");
    await s.apply([rec("c", T0 - 1)]);
    await live(1, "older put under a tombstone");
    await s.apply([rec("a", T0 + 4)]);
    await live(2, "put over tombstone");
    assert.equal(await s.remove("b", { timestamp: T0, versionNode: "node1" }), true);
    await live(1, "remove live b");
    assert.equal(await s.remove("c", { timestamp: T0, versionNode: "node1" }), true);
    await live(1, "remove tombstone c");
    assert.equal(await s.remove("a", { timestamp: T0, versionNode: "node1" }), false);
    await live(1, "remove with a stale version");
  },

  "remove erases only the exact version held": async (s) => {
    await s.apply([rec("k", T0, "node2")]);
    assert.equal(await s.remove("k", { timestamp: T0 + 1, versionNode: "node2" }), false);
    assert.equal(await s.remove("k", { timestamp: T0 - 1, versionNode: "node2" }), false);
    assert.equal(await s.remove("k", { timestamp: T0, versionNode: "node1" }), false);
    assert.equal(await s.remove("absent", { timestamp: T0, versionNode: "node2" }), false);
    assertRecord((await s.get(["k"]))[0], rec("k", T0, "node2"));
    assert.equal(await s.remove("k", { timestamp: T0, versionNode: "node2" }), true);
    assert.deepEqual(await s.get(["k"]), [undefined]);
    assert.equal(await s.remove("k", { timestamp: T0, versionNode: "node2" }), false);
    // Once erased, any version may be written again, even an older one.
    assert.deepEqual(await s.apply([rec("k", T0 - 100)]), [true]);
    assert.equal(await s.countLive(), 1);
  },

  "scan in pages of 100 returns all 2500 records, tombstones included": async (s) => {
    const want = new Map<string, KvRecord>();
    for (let i = 0; i < 2500; i++) {
      const key = `key-${i}`;
      const r = i % 7 === 0 ? tomb(key, T0 + i, `node${i % 3}`) : rec(key, T0 + i, `node${i % 3}`);
      want.set(key, r);
    }
    const all = [...want.values()];
    for (let i = 0; i < all.length; i += 500) await s.apply(all.slice(i, i + 500));
    assert.equal(await s.countLive(), all.filter((r) => !r.tombstone).length);

    const seen = new Set<string>();
    let cursor = "";
    let pages = 0;
    do {
      const page = await s.scan(cursor, 100);
      pages++;
      assert.ok(pages < 1000, "scan does not end");
      for (const r of page.records) {
        const expected = want.get(r.key);
        assert.ok(expected, `unexpected key ${r.key}`);
        assertRecord(r, expected);
        seen.add(r.key);
      }
      cursor = page.nextCursor;
    } while (cursor !== "");
    assert.equal(seen.size, want.size);
    assert.ok(pages >= 10, `expected about 25 pages, got ${pages}`);

    // scanAll yields the same records, content included (Redis's SCAN may repeat a key).
    const viaScanAll = new Set<string>();
    for await (const page of scanAll(s, 1000)) {
      for (const r of page) {
        const expected = want.get(r.key);
        assert.ok(expected, `scanAll: unexpected key ${r.key}`);
        assertRecord(r, expected);
        viaScanAll.add(r.key);
      }
    }
    assert.deepEqual([...want.keys()].filter((k) => !viaScanAll.has(k)), [], "keys scanAll missed");
  },

  "versions-only scans and filtered chunks see every record once, and chunks hold the accepted ones with values":
    async (
      s,
    ) => {
      const all = Array.from(
        { length: 1200 },
        (_, i) =>
          i % 5 === 0 ? tomb(`v-${i}`, T0 + i, `node${i % 3}`) : rec(`v-${i}`, T0 + i, `node${i % 3}`),
      );
      await s.apply(all);
      const want = new Map(all.map((r) => [r.key, r]));
      const versions = new Map<string, RecordVersion>();
      for await (const page of scanAllVersions(s, 100)) for (const v of page) versions.set(v.key, v);
      assert.equal(versions.size, all.length);
      for (const [key, v] of versions) {
        const r = want.get(key)!;
        assert.deepEqual(
          [v.timestamp, v.versionNode, v.tombstone],
          [r.timestamp, r.versionNode, r.tombstone],
          key,
        );
      }
      // Chunks hold the accepted records with their values, bounded in count.
      const seen = new Set<string>();
      const odd = (v: RecordVersion) => Number(v.key.slice(2)) % 2 === 1;
      for await (const chunk of scanChunks(s, odd, { maxRecords: 50, maxBytes: Infinity })) {
        assert.ok(chunk.length <= 50, `chunk of ${chunk.length}`);
        for (const r of chunk) {
          assert.ok(odd(r), `${r.key} was not accepted`);
          assertRecord(r, want.get(r.key)!);
          seen.add(r.key);
        }
      }
      assert.equal(seen.size, all.filter(odd).length);
    },

  "200 concurrent applies of one key in random order leave the newest": async (s) => {
    const versions = Array.from(
      { length: 200 },
      (_, i) => rec("hot", T0 + Math.floor(i / 2), `node${i % 2}`),
    );
    const newest = versions[versions.length - 1];
    const results = await Promise.all(shuffle(versions, 42).map((r) => s.apply([r])));
    assert.ok(results.flat().some((ok) => ok));
    assertRecord((await s.get(["hot"]))[0], newest);
    assert.equal(await s.countLive(), 1);
    // Again with tombstones mixed in, on another key.
    const mixed = Array.from(
      { length: 200 },
      (_, i) => i % 3 === 0 ? tomb("mix", T0 + i) : rec("mix", T0 + i),
    );
    await Promise.all(shuffle(mixed, 7).map((r) => s.apply([r])));
    assertRecord((await s.get(["mix"]))[0], mixed[199]);
    assert.equal(await s.countLive(), 1 + Number(!mixed[199].tombstone));
  },
};

/** Expiry (record.ts): stored and read back, excluded from live counts once past, kept as a tombstone. */
const expiryCases: Record<string, (s: Storage) => Promise<void>> = {
  "an expiry is stored with the record, scanned with it, and cleared by a write without one": async (s) => {
    const at = Date.now() + 60_000;
    await s.apply([{ ...rec("e", T0), expiresAtMs: at }, rec("plain", T0)]);
    const [e, plain] = await s.get(["e", "plain"]);
    assert.equal(e?.expiresAtMs, at);
    assert.equal(plain?.expiresAtMs, undefined, "a record without expiry reads without one");
    const scanned = (await s.scan("", 100)).records.find((r) => r.key === "e");
    assert.equal(scanned?.expiresAtMs, at);
    if (s.scanVersions) {
      assert.equal((await s.scanVersions("", 100)).versions.find((v) => v.key === "e")?.expiresAtMs, at);
    }
    await s.apply([rec("e", T0 + 1)]);
    assert.equal((await s.get(["e"]))[0]?.expiresAtMs, undefined, "a newer write without expiry clears it");
    assert.equal(await s.countLive(), 2);
  },
  "an expired record is not counted live, yet keeps its version against older writes": async (s) => {
    const past = Date.now() - 1;
    await s.apply([{ ...rec("gone", T0), expiresAtMs: past }, {
      ...rec("soon", T0),
      expiresAtMs: Date.now() + 60_000,
    }]);
    assert.equal(await s.countLive(), 1, "the expired record is not live; the expiring one still is");
    assert.deepEqual(
      await s.apply([rec("gone", T0 - 1)]),
      [false],
      "an older write loses to the expired record",
    );
    assert.equal((await s.get(["gone"]))[0]?.expiresAtMs, past, "the expired record is still held");
    assert.deepEqual(await s.apply([rec("gone", T0 + 1)]), [true], "a newer write replaces it");
    assert.equal(await s.countLive(), 2);
    assert.equal(await s.remove("soon", { timestamp: T0, versionNode: "node1" }), true);
    assert.equal(await s.countLive(), 1, "a removed expiring record leaves the counts");
  },
  "equal versions: only an earlier expiry replaces the held one, so copies converge": async (s) => {
    const at = Date.now() + 60_000;
    await s.apply([{ ...rec("k", T0), expiresAtMs: at }]);
    assert.deepEqual(await s.apply([rec("k", T0)]), [false], "no expiry is later than any");
    assert.deepEqual(await s.apply([{ ...rec("k", T0), expiresAtMs: at + 1 }]), [false]);
    assert.deepEqual(await s.apply([{ ...rec("k", T0), expiresAtMs: at - 1 }]), [true]);
    assert.equal((await s.get(["k"]))[0]?.expiresAtMs, at - 1);
  },
  "a tombstone carries no expiry": async (s) => {
    await s.apply([{ ...rec("k", T0), expiresAtMs: Date.now() + 60_000 }, {
      ...tomb("k", T0 + 1),
      expiresAtMs: 5,
    }]);
    const [k] = await s.get(["k"]);
    assert.equal(k?.tombstone, true);
    assert.equal(k?.expiresAtMs, undefined);
    assert.equal(await s.countLive(), 0);
  },
};

for (const engine of ["memory", "redis"] as const) {
  for (const [name, fn] of Object.entries({ ...sharedCases, ...expiryCases })) {
    Deno.test({
      name: `${engine}: ${name}`,
      ignore: engine === "redis" && ignoreRedis,
      fn: () => bounded(() => withStorage(engine, fn)),
    });
  }
}

// ----------------------------------------------------------- redis only

function redisTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: `redis: ${name}`, ignore: ignoreRedis, fn: () => bounded(fn) });
}

redisTest("redis-server is installed", () => {
  assert.ok(redisAvailable, "redis-server not found; install it: apt-get install -y redis-server");
  return Promise.resolve();
});

redisTest("data survives kill -9 of redis-server (appendfsync always)", async () => {
  // `always` fsyncs before each reply, so every acknowledged write is on
  // disk when the process dies. (With the default `everysec`, a crash of
  // the machine could lose about a second; kill -9 cannot show that.)
  await withRedis(async (env) => {
    const records = Array.from(
      { length: 300 },
      (_, i) => i % 10 === 0 ? tomb(`k${i}`, T0 + i) : rec(`k${i}`, T0 + i),
    );
    const before = await connectTo(env.port);
    try {
      await before.apply(records);
    } finally {
      await before.close();
    }
    await env.server.kill9();
    env.server = await startRedisServer({
      port: env.port,
      dir: env.dir,
      appendOnly: true,
      appendFsync: "always",
    });
    const after = await connectTo(env.port);
    try {
      const got = await after.get(records.map((r) => r.key));
      records.forEach((r, i) => assertRecord(got[i], r));
      assert.equal(await after.countLive(), 270);
    } finally {
      await after.close();
    }
  }, { appendOnly: true, appendFsync: "always" });
});

redisTest("keys live under the prefix; foreign keys are neither listed nor counted", async () => {
  await withRedis(async ({ port }) => {
    const prefix = "t[1]*:"; // glob characters must be matched literally
    const s = await connectTo(port, { keyPrefix: prefix });
    const other = await connectTo(port, { keyPrefix: "t1x:" });
    const raw = await rawClient(port);
    try {
      await s.apply([rec("a", T0), rec("b", T0), tomb("c", T0)]);
      await other.apply([rec("a", T0), rec("z", T0)]);
      await raw.set("foreign", "x");
      await raw.set(`${prefix}unrelated`, "x");

      const keys = new Set<string>();
      let cursor = "0";
      do {
        const [next, batch] = await raw.scan(cursor, "COUNT", 100);
        batch.forEach((k) => keys.add(k));
        cursor = next;
      } while (cursor !== "0");
      for (const k of ["a", "b", "c"]) assert.ok(keys.has(`${prefix}k:${k}`), `${k} not under the prefix`);
      assert.equal(await raw.type(`${prefix}k:a`), "hash");

      const listed: string[] = [];
      for await (const page of scanAll(s, 10)) listed.push(...page.map((r) => r.key));
      assert.deepEqual(listed.sort(), ["a", "b", "c"]);
      assert.equal(await s.countLive(), 2);
      assert.equal(await other.countLive(), 2);
      assert.deepEqual(await s.get(["z"]), [undefined]);
    } finally {
      raw.disconnect();
      await other.close();
      await s.close();
    }
  });
});

redisTest("connect to an unreachable Redis fails quickly with StorageUnavailableError", async () => {
  const port = freePort();
  const connectTimeoutMs = 500;
  const { ms, error } = await elapsedOf(() =>
    RedisStorage.connect({ host: "127.0.0.1", port, keyPrefix: "x:", log: quietLog(), connectTimeoutMs })
  );
  assert.ok(error instanceof StorageUnavailableError, `got ${error}`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  console.log(`  connect gave up after ${ms.toFixed(0)} ms (connectTimeoutMs ${connectTimeoutMs})`);
  // The behaviour is the bound: connect gives up at its deadline instead of retrying forever.
  assert.ok(ms < 4 * connectTimeoutMs, `took ${ms} ms with connectTimeoutMs ${connectTimeoutMs}`);
});

redisTest("calls fail fast with StorageUnavailableError while Redis is down", async () => {
  await withRedis(async (env) => {
    const commandTimeoutMs = 1000;
    const s = await connectTo(env.port, { commandTimeoutMs });
    try {
      await s.apply([rec("k", T0)]);
      assert.ok(s.healthy());
      await env.server.kill9();
      await waitFor("the connection loss", () => !s.healthy(), 2000);
      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => s.get(["k"])],
        ["apply", () => s.apply([rec("k", T0 + 1)])],
        ["remove", () => s.remove("k", { timestamp: T0, versionNode: "node1" })],
        ["scan", () => s.scan("", 10)],
        ["countLive", () => s.countLive()],
      ];
      const times: string[] = [];
      for (const [name, call] of calls) {
        const { ms, error } = await elapsedOf(call);
        times.push(`${name} ${ms.toFixed(0)} ms`);
        assert.ok(error instanceof StorageUnavailableError, `${name}: got ${error}`);
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${env.port}`));
        // Failing at once (no offline queue) is the behaviour: no call waits out its command timeout.
        assert.ok(ms < commandTimeoutMs, `${name} took ${ms} ms (commandTimeoutMs ${commandTimeoutMs})`);
      }
      console.log(`  while Redis is down: ${times.join(", ")} (commandTimeoutMs ${commandTimeoutMs})`);
    } finally {
      await s.close();
    }
  });
});

redisTest("a hung Redis times calls out, and they work again when it resumes", async () => {
  await withRedis(async (env) => {
    const commandTimeoutMs = 500;
    const s = await connectTo(env.port, { commandTimeoutMs });
    try {
      await s.apply([rec("k", T0)]);
      Deno.kill(env.server.pid, "SIGSTOP");
      const { ms, error } = await elapsedOf(() => s.apply([rec("k", T0 + 1)]));
      assert.ok(error instanceof StorageUnavailableError, `got ${error}`);
      console.log(
        `  a call to the hung Redis failed after ${ms.toFixed(0)} ms (commandTimeoutMs ${commandTimeoutMs})`,
      );
      // The behaviour is the bound: the call ends at its command timeout, not whenever Redis resumes.
      assert.ok(ms < 3 * commandTimeoutMs, `took ${ms} ms with commandTimeoutMs ${commandTimeoutMs}`);
      Deno.kill(env.server.pid, "SIGCONT");
      await waitFor("reconnection", () => s.healthy(), 10_000);
      assert.deepEqual(await s.apply([rec("k", T0 + 2)]), [true]);
      assertRecord((await s.get(["k"]))[0], rec("k", T0 + 2));
    } finally {
      await s.close();
    }
  });
});

redisTest("the same instance works again after Redis restarts, logging once each way", async () => {
  await withRedis(async (env) => {
    const lines: string[] = [];
    const log = new Logger({ level: "debug", format: "text", write: (l) => lines.push(l) });
    const attempts = () => lines.filter((l) => l.includes(`redis 127.0.0.1:${env.port} reconnect attempt`));
    const s = await connectTo(env.port, { log });
    try {
      await s.apply([rec("before", T0)]);
      await env.server.stop(); // SIGTERM: a clean shutdown keeps every write
      await waitFor("the connection loss", () => !s.healthy(), 2000);
      // Several reconnect attempts fail while it is down; each is logged at debug level.
      await waitFor("3 failed reconnect attempts", () => attempts().length >= 3, 10_000);
      await assert.rejects(() => s.countLive(), StorageUnavailableError);
      const failedAttempts = attempts().length;
      await env.restart();
      await waitFor("reconnection", () => s.healthy(), 10_000);
      assertRecord((await s.get(["before"]))[0], rec("before", T0));
      assert.deepEqual(await s.apply([rec("after", T0)]), [true]);
      assert.equal(await s.countLive(), 2);
      const down = lines.filter((l) => l.includes(`redis 127.0.0.1:${env.port} unreachable`));
      const up = lines.filter((l) => l.includes(`redis 127.0.0.1:${env.port} reachable again`));
      console.log(`  ${failedAttempts} reconnect attempts failed while Redis was down`);
      assert.equal(down.length, 1, lines.join("\n"));
      assert.match(down[0], /reconnecting/);
      assert.equal(up.length, 1, lines.join("\n"));
    } finally {
      await s.close();
    }
  }, {}); // default persistence: AOF everysec plus RDB save points
});

redisTest("a full Redis (noeviction) rejects writes with StorageUnavailableError", async () => {
  await withRedis(async ({ port }) => {
    const s = await connectTo(port);
    const raw = await rawClient(port);
    try {
      await s.apply([rec("k", T0)]);
      await raw.config("SET", "maxmemory-policy", "noeviction");
      await raw.config("SET", "maxmemory", "1");
      await assert.rejects(() => s.apply([rec("k", T0 + 1)]), (err: Error) => {
        assert.ok(err instanceof StorageUnavailableError, String(err));
        assert.match(err.message, /OOM/);
        return true;
      });
      await raw.config("SET", "maxmemory", "0");
      assert.deepEqual(await s.apply([rec("k", T0 + 1)]), [true]);
      assert.equal(await s.countLive(), 1);
    } finally {
      raw.disconnect();
      await s.close();
    }
  });
});

redisTest("a batch that fails midway keeps the live count in step with what it wrote", async () => {
  await withRedis(async ({ port }) => {
    const s = await connectTo(port, { keyPrefix: "p:" });
    const raw = await rawClient(port);
    try {
      await raw.set("p:k:bad", "not a hash"); // a foreign key in our namespace
      await assert.rejects(
        () => s.apply([rec("a", T0), rec("bad", T0), rec("c", T0)]),
        (err: Error) => err instanceof StorageUnavailableError && /WRONGTYPE/.test(err.message),
      );
      const [a, c] = await s.get(["a", "c"]);
      assert.equal(await s.countLive(), Number(a !== undefined) + Number(c !== undefined));
    } finally {
      raw.disconnect();
      await s.close();
    }
  });
});

redisTest("startRedisServer runs with the settings of config/redis-node*.conf", async () => {
  await withRedis(async ({ port, dir }) => {
    const raw = await rawClient(port);
    try {
      const get = async (name: string) => ((await raw.config("GET", name)) as string[])[1];
      assert.equal(await get("appendonly"), "yes");
      assert.equal(await get("appendfsync"), "everysec");
      assert.equal(await get("save"), "900 1 300 10 60 10000");
      assert.equal(await get("maxmemory-policy"), "noeviction");
      assert.equal(await get("hash-max-listpack-value"), "4096");
      assert.equal(await get("bind"), "127.0.0.1");
      assert.equal(await get("dir"), await Deno.realPath(dir));
    } finally {
      raw.disconnect();
    }
  }, {});
});

redisTest("startRedisServer reports a port in use with the server's own message", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "kv-redis-test-" });
  try {
    await assert.rejects(
      () => startRedisServer({ port, dir, appendOnly: false, readyTimeoutMs: 5000 }),
      /Address already in use/,
    );
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("memory: bytesHeld follows writes, overwrites, tombstones and removals back to 0", async () => {
  const s = new MemoryStorage();
  assert.equal(s.bytesHeld(), 0);
  const value = new Uint8Array(100);
  await s.apply([rec("a", 1, "node1", value)]);
  const one = s.bytesHeld();
  assert.ok(one >= 100 + 1 && one < 100 + 1 + 32, `one record of 100 bytes: ${one}`);
  await s.apply([rec("a", 2, "node1", new Uint8Array(10))]);
  assert.equal(s.bytesHeld(), one - 90, "an overwrite counts the new size only");
  await s.apply([tomb("a", 3)]);
  const tombstone = s.bytesHeld();
  assert.ok(tombstone > 0 && tombstone < one - 90);
  assert.equal(await s.remove("a", { timestamp: 3, versionNode: "node1" }), true);
  assert.equal(s.bytesHeld(), 0);
});

/** A memory engine whose every scan page takes at least 1 ms of work, as a page of a big store does. */
class SlowPages extends MemoryStorage {
  override scan(cursor: string, limit: number) {
    busy(1);
    return super.scan(cursor, limit);
  }
  override scanVersions(cursor: string, limit: number) {
    busy(1);
    return super.scanVersions(cursor, limit);
  }
}

function busy(ms: number): void {
  const started = performance.now();
  while (performance.now() - started < ms) { /* work */ }
}

Deno.test("memory: a full scan lets timers run while it goes, not only once it has finished", async () => {
  const s = new SlowPages();
  await s.apply(Array.from({ length: 10_000 }, (_, i) => rec(`k${i}`, 1, "node1", new Uint8Array(10))));
  for (const scan of [scanAllVersions, scanAll]) {
    let pages = 0;
    let timerAtPage = -1;
    setTimeout(() => timerAtPage = pages, 1);
    for await (const _ of scan(s, 100)) pages++;
    // 100 pages of 1 ms each: a scan running on microtasks alone would let the timer run only after them.
    assert.ok(
      timerAtPage >= 0 && timerAtPage < pages,
      `${scan.name}: the timer ran at page ${timerAtPage} of ${pages}`,
    );
  }
});

Deno.test("scanChunks reads values in slices of about its chunk's bytes, not a whole page of versions at once", async () => {
  const storage = new MemoryStorage();
  const keys = Array.from({ length: 20 }, (_, i) => `big${i}`);
  await storage.apply(keys.map((key) => ({
    key,
    value: new Uint8Array(1 << 20),
    timestamp: 1,
    versionNode: "n1",
    tombstone: false,
  })));
  const asked: number[] = [];
  const spy = {
    scanVersions: (c: string, l: number) => storage.scanVersions(c, l),
    valueSizes: (k: readonly string[]) => storage.valueSizes(k),
    get: (k: readonly string[]) => (asked.push(k.length), storage.get(k)),
  } as unknown as Storage;
  let records = 0;
  for await (const chunk of scanChunks(spy, () => true, { maxRecords: 250, maxBytes: 2 << 20 })) {
    records += chunk.length;
  }
  assert.equal(records, 20);
  console.log(`values read in slices of ${asked.join(", ")} keys`);
  assert.ok(Math.max(...asked) <= 2, `at most 2 MiB of values read at once: ${asked}`);
});
