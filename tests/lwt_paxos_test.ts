/**
 * Per-key Paxos (lib/lwt/) with a fake transport: acceptors over real
 * memory storage, called directly, so races, lost messages and half-done
 * proposals are set up exactly.
 */
import assert from "node:assert/strict";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { HybridClock } from "../lib/hlc.ts";
import { KeyAcceptor, MemoryVoteBook } from "../lib/lwt/acceptor.ts";
import { type PaxosTransport, runPaxos } from "../lib/lwt/proposer.ts";
import { decide, fixExpiry, type LwtOp } from "../lib/lwt/ops.ts";
import { Code, KvError, PeerUnavailableError } from "../lib/errors.ts";
import type { KvRecord } from "../lib/record.ts";
import { RedisStorage } from "../lib/storage/redis.ts";
import { createLwt } from "../lib/lwt/mod.ts";
import { HashRing, ringHash } from "../lib/ring.ts";
import { LiveRing, type RingLike } from "../lib/membership/live_ring.ts";
import type { Storage } from "../lib/storage/mod.ts";
import { listFromNodes } from "../lib/membership/member_list.ts";
import { Logger } from "../lib/log.ts";
import { ignoreRedis, redisAt, startRedises, stopRedises } from "./helpers/redis.ts";

const ids = ["a", "b", "c"];
const quiet = new Logger({ level: "error", format: "text", write: () => {} });
const text = (r: KvRecord | undefined) => r && new TextDecoder().decode(r.value);

function cluster(voters = ids) {
  const storages = new Map(voters.map((id) => [id, new MemoryStorage()]));
  const books = new Map(voters.map((id) => [id, new MemoryVoteBook()]));
  const down = new Set<string>();
  const acceptors = new Map(voters.map((id) => [
    id,
    new KeyAcceptor({
      self: id,
      storage: storages.get(id)!,
      book: books.get(id)!,
      floor: () => ({ round: 0, outbid: false, why: "" }),
      ready: () => true,
      blocked: () => undefined,
    }),
  ]));
  const reach = async (v: string) => {
    await Promise.resolve();
    if (down.has(v)) throw new PeerUnavailableError(v, "down");
    return acceptors.get(v)!;
  };
  const transport: PaxosTransport = {
    prepare: async (v, key, b) => (await reach(v)).prepare(key, b),
    accept: async (v, key, b, r) => (await reach(v)).accept(key, b, r),
    commit: async (v, r) => (await reach(v)).commit(r),
  };
  return { storages, books, acceptors, down, transport };
}

function run(c: ReturnType<typeof cluster>, self: string, op: LwtOp, voters = ids) {
  return runPaxos({
    self,
    key: op.key,
    voters,
    transport: c.transport,
    clock: new HybridClock(),
    decide: (cur) => decide(op, cur),
    timeoutMs: 5000,
  });
}

/** A node's acceptor and service over `storage`, with no peers (the voters are local). */
function lwtOn(
  storage: Storage,
  ring: RingLike,
  o: { rf?: number; recovered?: boolean; wall?: () => number; skewMs?: number } = {},
) {
  return createLwt({
    self: "a",
    storage,
    clock: new HybridClock(),
    wall: o.wall ?? Date.now,
    ring,
    replicationFactor: o.rf ?? 1,
    maxClockSkewMs: o.skewMs ?? 60_000,
    rpcTimeoutMs: 1000,
    log: quiet,
    canServe: () => true,
    recovered: () => o.recovered ?? true,
    onUnreachable: () => {},
  });
}

const incr = (key: string): LwtOp => ({ kind: "incr", key, delta: 1n });

Deno.test("rival proposers on one key: every increment distinct, none lost", async () => {
  const c = cluster();
  const results: string[] = [];
  const failed: string[] = [];
  await Promise.all(ids.map(async (self) => {
    for (let i = 0; i < 40; i++) {
      try {
        const r = await run(c, self, incr("n"));
        assert.ok(r.applied);
        results.push(text(r.record)!);
      } catch (err) {
        assert.ok(err instanceof KvError && err.code === Code.DEADLINE_EXCEEDED, String(err));
        failed.push(err.message);
      }
    }
  }));
  assert.equal(new Set(results).size, results.length, "duplicate results");
  const finals = await Promise.all(ids.map(async (id) => text((await c.storages.get(id)!.get(["n"]))[0])));
  const final = Math.max(...finals.map(Number));
  console.log(`acknowledged ${results.length}, outcome unknown ${failed.length}, final ${final}`);
  assert.ok(results.length <= final && final <= 120);
});

Deno.test("put-if-absent races: exactly one winner", async () => {
  const c = cluster();
  const outcomes = await Promise.all(ids.map((self) =>
    run(c, self, {
      kind: "put",
      key: "k",
      value: new TextEncoder().encode(self),
      tombstone: false,
      condition: { kind: "absent" },
    }).catch((e) => e)
  ));
  const winners = outcomes.filter((o) => !(o instanceof Error) && o.applied);
  assert.equal(winners.length, 1);
  for (const o of outcomes) {
    if (!(o instanceof Error) && !o.applied) assert.equal(text(o.current), text(winners[0].record));
  }
});

Deno.test("a proposal accepted by a majority but not committed is completed before the next", async () => {
  const c = cluster();
  const ballot = { round: new HybridClock().now(), node: "a" };
  const record: KvRecord = {
    key: "n",
    value: new TextEncoder().encode("41"),
    timestamp: ballot.round,
    versionNode: "a",
    tombstone: false,
  };
  for (const id of ["a", "b"]) {
    assert.ok((await c.acceptors.get(id)!.prepare("n", ballot)).ok);
    assert.ok((await c.acceptors.get(id)!.accept("n", ballot, record)).ok);
  }
  // Its proposer died before the commit; the next increment must build on 41.
  c.down.add("a");
  const r = await run(c, "c", incr("n"));
  assert.ok(r.applied);
  assert.equal(text(r.record), "42");
});

Deno.test("rf 2 with one replica down: UNAVAILABLE, nothing changed", async () => {
  const c = cluster(["a", "b"]);
  c.down.add("b");
  await assert.rejects(
    () => run(c, "a", incr("n"), ["a", "b"]),
    (e) => e instanceof KvError && e.code === Code.UNAVAILABLE,
  );
  assert.equal((await c.storages.get("a")!.get(["n"]))[0], undefined);
  assert.equal(c.books.get("a")!.size <= 1, true);
});

Deno.test("votes are dropped once committed: state bounded by keys in flight", async () => {
  const c = cluster();
  for (let i = 0; i < 20; i++) await run(c, "a", incr(`k${i}`));
  for (const id of ids) assert.equal(c.books.get(id)!.size, 0, `${id} kept votes`);
});

Deno.test("a forgetful acceptor refuses ballots at or below its floor", async () => {
  const storage = new MemoryStorage();
  const floor = (Date.now() + 1000) * 1000;
  const acc = new KeyAcceptor({
    self: "a",
    storage,
    book: new MemoryVoteBook(),
    floor: () => ({ round: floor, outbid: false, why: "test" }),
    ready: () => true,
    blocked: () => undefined,
  });
  const low = await acc.prepare("k", { round: floor, node: "b" });
  assert.equal(low.ok ? "ok" : low.refusal, "not_voting");
  assert.ok((await acc.prepare("k", { round: floor + 1, node: "b" })).ok);
});

Deno.test("a lower ballot is refused after a higher one was promised, and after its commit", async () => {
  const c = cluster();
  const acc = c.acceptors.get("a")!;
  const hi = { round: 2000, node: "b" };
  assert.ok((await acc.prepare("k", hi)).ok);
  const lo = await acc.accept("k", { round: 1000, node: "c" }, {} as KvRecord);
  assert.equal(lo.ok, false);
  await acc.commit({
    key: "k",
    value: new Uint8Array(0),
    timestamp: 2000,
    versionNode: "b",
    tombstone: false,
  });
  assert.equal(c.books.get("a")!.size, 0);
  const stale = await acc.prepare("k", { round: 1500, node: "c" });
  assert.equal(stale.ok, false, "the stored version refuses lower ballots once the votes are dropped");
});

Deno.test({
  name: "Redis engine: a promise and an accepted record outlive the acceptor; a commit erases them",
  ignore: ignoreRedis,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { procs, dirs } = await startRedises(1);
    const open = () =>
      RedisStorage.connect({
        host: "127.0.0.1",
        port: procs[0].port,
        keyPrefix: "lwt-test:",
        log: quiet,
      });
    const acceptorOn = (storage: RedisStorage) =>
      lwtOn(storage, new HashRing(["a"], 8), { recovered: false }).acceptor;
    let storage = await open();
    try {
      const hi = { round: 3000, node: "b" };
      const record: KvRecord = {
        key: "k",
        value: new Uint8Array([1, 2]),
        timestamp: 3000,
        versionNode: "b",
        tombstone: false,
      };
      // Durable votes need no floor: it votes at once, even "not recovered".
      assert.ok((await acceptorOn(storage).prepare("k", hi)).ok);
      assert.ok((await acceptorOn(storage).accept("k", hi, record)).ok);
      await storage.close();
      storage = await open();
      const again = acceptorOn(storage);
      const low = await again.prepare("k", { round: 2000, node: "c" });
      assert.equal(low.ok, false, "a restarted acceptor forgot its promise");
      const higher = await again.prepare("k", { round: 4000, node: "c" });
      assert.ok(higher.ok && higher.accepted?.record.value.join() === "1,2", "the accepted record was lost");
      await again.commit(record);
      await again.commit({ ...record, timestamp: 4000, versionNode: "c" });
      const raw = await redisAt(procs[0].port);
      assert.deepEqual(await raw.keys("lwt-test:meta:lwt:*"), [], "settled votes were kept");
      raw.disconnect();
    } finally {
      await storage.close();
      await stopRedises(procs, dirs);
    }
  },
});

Deno.test("while a key's range moves in a membership change, conditional operations are UNAVAILABLE", async () => {
  const nodes = ["a", "b", "c", "d"].map((id, i) => ({ id, host: "127.0.0.1", port: 1000 + i }));
  const list = listFromNodes(nodes);
  list.members[3].state = "JOINING";
  const ring = new LiveRing(list, 32);
  const made = lwtOn(new MemoryStorage(), ring, { rf: 2, wall: () => 0, skewMs: 0 });
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const moving = keys.filter((k) => ring.pendingWalk(ringHash(k), 2).length > 0);
  assert.ok(moving.length > 0 && moving.length < keys.length);
  const key = moving.find((k) => ring.preferenceList(k, 2)[0] === "a") ?? moving[0];
  await assert.rejects(
    () => made.lwt.run({ kind: "incr", key, delta: 1n }, true),
    (e) => e instanceof KvError && e.code === Code.UNAVAILABLE && /moving/.test(e.message),
  );
  const vote = await made.acceptor.prepare(key, { round: 1, node: "b" });
  assert.equal(vote.ok ? "ok" : vote.refusal, "not_voting");
  const still = keys.find((k) => !moving.includes(k))!;
  assert.ok((await made.acceptor.prepare(still, { round: 1, node: "b" })).ok, "a key not moving still votes");
});

Deno.test("a replica the commit did not reach is named, so it gets the record as a hint", async () => {
  const c = cluster();
  c.down.add("c");
  const missed: string[] = [];
  const r = await runPaxos({
    self: "a",
    key: "n",
    voters: ids,
    transport: c.transport,
    clock: new HybridClock(),
    decide: (cur) => decide(incr("n"), cur),
    timeoutMs: 5000,
    onCommitMissed: (voter, record) => missed.push(`${voter}:${text(record)}`),
  });
  assert.ok(r.applied);
  await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(missed, ["c:1"]);
});

Deno.test("a conditional put's expiry: every replica commits the same expiresAtMs", async () => {
  const c = cluster();
  const asked: LwtOp = {
    kind: "put",
    key: "t",
    value: new TextEncoder().encode("v"),
    tombstone: false,
    condition: { kind: "absent" },
    expiry: { ttlMs: 60_000 },
  };
  const now = Date.now();
  const r = await run(c, "b", fixExpiry(asked, now));
  assert.ok(r.applied && r.record.expiresAtMs === now + 60_000);
  const stored = await Promise.all(
    ids.map(async (id) => (await c.storages.get(id)!.get(["t"]))[0]?.expiresAtMs),
  );
  assert.deepEqual(stored, [now + 60_000, now + 60_000, now + 60_000]);
});

Deno.test("the leader's wall clock fixes a ttl and says when a key expired (then if-absent applies again)", async () => {
  let wall = Date.now() - 10_000; // behind the ballots (real clock), so the memory vote floor is past
  const storage = new MemoryStorage();
  const { lwt } = lwtOn(storage, new HashRing(["a"], 8), { wall: () => wall, skewMs: 0 });
  const v = (s: string) => new TextEncoder().encode(s);
  const first = await lwt.putIf("lock", v("a"), { kind: "absent" }, { ttlMs: 1000 });
  assert.ok(first.applied && first.record.expiresAtMs === wall + 1000);
  assert.equal((await storage.get(["lock"]))[0]?.expiresAtMs, wall + 1000);
  assert.equal((await lwt.putIf("lock", v("b"), { kind: "absent" })).applied, false);
  // INCR keeps the TTL (here on a counter with one).
  await lwt.putIf("n", v("1"), { kind: "none" }, { ttlMs: 1000 });
  assert.equal((await lwt.increment("n", 1n)).record.expiresAtMs, wall + 1000);
  wall += 1001;
  const second = await lwt.putIf("lock", v("b"), { kind: "absent" });
  assert.ok(second.applied, "if-absent on an expired key was refused");
  assert.equal(second.record.expiresAtMs, undefined);
  const version = { timestamp: first.record.timestamp, versionNode: first.record.versionNode };
  assert.equal((await lwt.deleteIf("lock", { kind: "version", version })).applied, false);
  const counter = await lwt.increment("n", 1n);
  assert.ok(
    counter.value === "1" && counter.record.expiresAtMs === undefined,
    "an expired counter continued",
  );
  // An absolute expiry is kept as given.
  const at = await lwt.putIf("abs", v("x"), { kind: "absent" }, { expiresAtMs: wall + 5000 });
  assert.ok(at.applied && at.record.expiresAtMs === wall + 5000);
});
