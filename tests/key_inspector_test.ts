/**
 * The key inspector's parts, without a cluster: what it says of each copy
 * (version, size, state, agreement; never the value), and its gate (the
 * client token, the per-source rate limit, the key's size), on injected
 * clocks. The browser test (status_explain_test.ts) runs it on real nodes.
 */
import assert from "node:assert/strict";
import { HashRing, ringHash } from "../lib/ring.ts";
import { inspectKey, type KeyPlaces } from "../lib/admin/inspect.ts";
import { INSPECT_PER_SECOND, InspectGate } from "../lib/admin/inspect_gate.ts";
import { RateLimit } from "../lib/admin/rate_limit.ts";
import { EventLog } from "../lib/admin/events.ts";
import { Logger } from "../lib/log.ts";
import type { KvRecord } from "../lib/record.ts";

const NOW = 1_800_000_000_000;
const ring = new HashRing(["node1", "node2", "node3"], 64);

function places(copies: Record<string, KvRecord | undefined | "down">): KeyPlaces {
  return {
    replicationFactor: 3,
    epoch: 4,
    walk: (p, n) => ring.walk(p, n),
    pendingWalk: () => [],
    read: (node) => {
      const c = copies[node];
      return c === "down" ? Promise.reject(new Error(`node ${node} unreachable`)) : Promise.resolve(c);
    },
  };
}

function rec(over: Partial<KvRecord> = {}): KvRecord {
  return {
    key: "k",
    value: new TextEncoder().encode("the-secret-value"),
    timestamp: NOW * 1000,
    versionNode: "node1",
    tombstone: false,
    ...over,
  };
}

Deno.test("the inspector gives the key's place, holders and each copy's version and size, never the value", async () => {
  const r = await inspectKey(places({ node1: rec(), node2: rec(), node3: rec() }), "k", NOW);
  const holders = ring.preferenceList("k", 3);
  assert.equal(r.position, ringHash("k") / 2 ** 32);
  assert.equal(r.owner, holders[0]);
  assert.deepEqual(r.replicas, holders);
  assert.deepEqual(r.copies.map((c) => [c.node, c.role, c.state, c.timestamp_us, c.size_bytes]), [
    [holders[0], "owner", "live", NOW * 1000, 16],
    [holders[1], "replica", "live", NOW * 1000, 16],
    [holders[2], "replica", "live", NOW * 1000, 16],
  ]);
  assert.equal(r.agree, true);
  const allowed = [
    "node",
    "role",
    "reachable",
    "expires_at_ms",
    "state",
    "timestamp_us",
    "version_node",
    "size_bytes",
    "newest",
  ];
  for (const c of r.copies) {
    assert.deepEqual(Object.keys(c).filter((k) => !allowed.includes(k)), [], "no value");
  }
  assert.ok(!JSON.stringify(r).includes("the-secret-value"), "no value in the answer");
});

Deno.test("copies that differ in version, tombstone or expiry do not agree; the newest is marked", async () => {
  const older = rec({ timestamp: NOW * 1000 - 5 });
  const r = await inspectKey(places({ node1: rec(), node2: older, node3: undefined }), "k", NOW);
  assert.equal(r.agree, false);
  const by = Object.fromEntries(r.copies.map((c) => [c.node, c]));
  assert.equal(by.node1.newest, true);
  assert.equal(by.node2.newest, false);
  assert.equal(by.node3.state, "absent");
  const behind = await inspectKey(places({ node1: rec(), node2: older, node3: rec() }), "k", NOW);
  assert.equal(behind.agree, false, "all live, one a version behind");
  const dead = await inspectKey(
    places({ node1: rec({ tombstone: true, value: new Uint8Array() }), node2: rec(), node3: rec() }),
    "k",
    NOW,
  );
  assert.equal(dead.agree, false);
  assert.equal(dead.copies.find((c) => c.node === "node1")!.state, "tombstone");
  const expiring = rec({ expiresAtMs: NOW - 1 });
  const exp = await inspectKey(places({ node1: expiring, node2: expiring, node3: "down" }), "k", NOW);
  assert.equal(exp.agree, true, "the copies that answered agree");
  const e = exp.copies.find((c) => c.node === "node1")!;
  assert.deepEqual([e.state, e.expires_at_ms], ["expired", NOW - 1]);
  const down = exp.copies.find((c) => c.node === "node3")!;
  assert.deepEqual([down.reachable, down.error], [false, "node node3 unreachable"]);
});

function gate(token?: string) {
  let now = 0;
  const lines: string[] = [];
  const events = new EventLog();
  const g = new InspectGate({
    clientToken: token === undefined ? undefined : new TextEncoder().encode(token),
    maxKeyBytes: 16,
    log: new Logger({ level: "debug", format: "text", write: (l) => lines.push(l) }),
    events,
    now: () => now,
  });
  return { g, events, lines, tick: (ms: number) => now += ms };
}

Deno.test("the inspector needs the client token when the cluster sets one", () => {
  const { g, events, lines } = gate("tok-123");
  assert.deepEqual(g.admit("k", null, "10.0.0.1"), {
    status: 401,
    message:
      'no client token: this cluster sets security.client_token_file; send "authorization: Bearer <token>" (the page asks for it)',
  });
  assert.equal((g.admit("k", "Bearer nope", "10.0.0.1") as { status: number }).status, 401);
  assert.equal(g.admit("k", "Bearer tok-123", "10.0.0.1"), "k");
  assert.equal(gate().g.admit("k", null, "10.0.0.1"), "k", "no token set: none needed");
  assert.deepEqual(events.refusals(), {
    "inspector: no client token": 1,
    "inspector: wrong client token": 1,
  });
  assert.equal(lines.length, 1, "logged once per source a minute");
});

Deno.test("the inspector is rate-limited per source, and bounds the key", () => {
  const { g, events, tick } = gate();
  for (let i = 0; i < INSPECT_PER_SECOND; i++) assert.equal(g.admit("k", null, "10.0.0.1"), "k");
  assert.equal((g.admit("k", null, "10.0.0.1") as { status: number }).status, 429);
  assert.equal(g.admit("k", null, "10.0.0.2"), "k", "another source is not held back");
  tick(1000);
  assert.equal(g.admit("k", null, "10.0.0.1"), "k", "a second later it may again");
  tick(1000);
  assert.deepEqual(g.admit("x".repeat(17), null, "10.0.0.1"), {
    status: 400,
    message: "key is 17 bytes; limits.max_key_bytes is 16",
  });
  assert.equal((g.admit("", null, "10.0.0.1") as { status: number }).status, 400);
  assert.equal((g.admit(null, null, "10.0.0.1") as { status: number }).status, 400);
  assert.deepEqual(events.refusals(), { "inspector: rate limited": 1, "inspector: bad key": 3 });
});

Deno.test("the rate limit refills at its rate, caps at its burst and remembers a bounded set of sources", () => {
  let now = 0;
  const r = new RateLimit({ perSecond: 2, burst: 2, maxSources: 2, now: () => now });
  assert.deepEqual([r.take("a"), r.take("a"), r.take("a")], [true, true, false]);
  now += 500;
  assert.deepEqual([r.take("a"), r.take("a")], [true, false], "one token in half a second at 2/s");
  now += 60_000;
  assert.deepEqual([r.take("a"), r.take("a"), r.take("a")], [true, true, false], "never more than the burst");
  r.take("b");
  r.take("c"); // forgets "a", the least recently seen
  assert.equal(r.take("a"), true, "a forgotten source starts with a full bucket");
});
