/**
 * Tests of failure detection: the FailureDetector state machine under an
 * injected clock (no sleeping), then the HeartbeatLoop with a fake `send`
 * on real timers at a 20 ms interval, bounded.
 */
import assert from "node:assert/strict";
import {
  FailureDetector,
  HeartbeatLoop,
  type HeartbeatReply,
  type PeerStatus,
  type StatusChange,
} from "../lib/detector.ts";

const SUSPECT_MS = 10_000;
const FAILURE_MS = 15_000;

/** A detector over peers a, b, c with a clock the test moves, recording changes. */
function setup(): { d: FailureDetector; advance: (ms: number) => void; changes: StatusChange[] } {
  let now = 1_000_000;
  const changes: StatusChange[] = [];
  const d = new FailureDetector(["a", "b", "c"], {
    suspectTimeoutMs: SUSPECT_MS,
    failureTimeoutMs: FAILURE_MS,
    clock: () => now,
    onChange: (c) => changes.push(c),
  });
  return { d, advance: (ms) => now += ms, changes };
}

function statuses(d: FailureDetector): Record<string, PeerStatus> {
  return Object.fromEntries(d.peers().map((p) => [p, d.status(p)]));
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("peers start ACTIVE and stay ACTIVE while heard from within the suspect timeout", () => {
  const { d, advance, changes } = setup();
  assert.deepEqual(statuses(d), { a: "ACTIVE", b: "ACTIVE", c: "ACTIVE" });
  for (let i = 0; i < 10; i++) {
    advance(SUSPECT_MS - 1);
    for (const p of ["a", "b", "c"]) d.heard(p);
    d.tick();
  }
  assert.deepEqual(statuses(d), { a: "ACTIVE", b: "ACTIVE", c: "ACTIVE" });
  assert.deepEqual(changes, []);
});

Deno.test("a silent peer is SUSPECTED at suspectTimeoutMs, FAILED at failureTimeoutMs and ACTIVE again when heard", () => {
  const { d, advance, changes } = setup();
  d.heard("b");
  d.heard("c");
  advance(SUSPECT_MS - 1);
  d.heard("b");
  d.heard("c");
  d.tick();
  assert.equal(d.status("a"), "ACTIVE");
  advance(1); // a: silent exactly SUSPECT_MS
  d.tick();
  assert.equal(d.status("a"), "SUSPECTED");
  assert.equal(d.status("b"), "ACTIVE");
  advance(FAILURE_MS - SUSPECT_MS - 1);
  d.tick();
  assert.equal(d.status("a"), "SUSPECTED");
  advance(1); // a: silent exactly FAILURE_MS
  d.tick();
  assert.equal(d.status("a"), "FAILED");
  d.tick();
  advance(60_000);
  d.heard("b");
  d.heard("c");
  d.tick();
  assert.equal(d.status("a"), "FAILED");
  d.heard("a");
  assert.equal(d.status("a"), "ACTIVE");
  const forA = changes.filter((c) => c.peer === "a");
  assert.deepEqual(forA.map((c) => [c.from, c.to, c.silentMs]), [
    ["ACTIVE", "SUSPECTED", SUSPECT_MS],
    ["SUSPECTED", "FAILED", FAILURE_MS],
    ["FAILED", "ACTIVE", FAILURE_MS + 60_000],
  ]);
  assert.match(forA[0].reason, /no contact for 10000 ms/);
  assert.equal(d.lastContact("a"), 1_000_000 + FAILURE_MS + 60_000);
});

Deno.test("a peer silent past both timeouts at one tick goes straight to FAILED", () => {
  const { d, advance, changes } = setup();
  advance(FAILURE_MS + 5);
  d.tick();
  assert.deepEqual(statuses(d), { a: "FAILED", b: "FAILED", c: "FAILED" });
  assert.deepEqual(changes.map((c) => `${c.peer}:${c.from}>${c.to}`), [
    "a:ACTIVE>FAILED",
    "b:ACTIVE>FAILED",
    "c:ACTIVE>FAILED",
  ]);
});

Deno.test("a tick an interval late credits the time this process missed to every peer's silence", () => {
  const TICK = 250;
  const ticking = (d: FailureDetector, advance: (ms: number) => void, ms: number) => {
    for (let t = 0; t < ms; t += TICK) {
      advance(TICK);
      d.tick(TICK);
    }
  };
  const { d, advance, changes } = setup();
  ticking(d, advance, 5 * TICK);
  // This process does not run for longer than the suspect timeout, then ticks again.
  advance(SUSPECT_MS + 2_000);
  d.tick(TICK);
  assert.deepEqual(statuses(d), { a: "ACTIVE", b: "ACTIVE", c: "ACTIVE" }, "suspected for its own pause");
  // Silence while it runs still counts: the peers stay silent until the timeout from before the pause.
  ticking(d, advance, SUSPECT_MS - 7 * TICK);
  assert.deepEqual(changes, []);
  ticking(d, advance, 2 * TICK);
  assert.deepEqual(statuses(d), { a: "SUSPECTED", b: "SUSPECTED", c: "SUSPECTED" });

  // The control: the same pause, with ticks that do not say their interval, suspects everyone at once.
  const control = setup();
  control.advance(SUSPECT_MS + 2_000);
  control.d.tick();
  assert.deepEqual(statuses(control.d), { a: "SUSPECTED", b: "SUSPECTED", c: "SUSPECTED" });
});

Deno.test("ticks late by less than half the suspect timeout credit nothing", () => {
  const { d, advance } = setup();
  for (let t = 0; t < SUSPECT_MS; t += 190) {
    advance(190); // each tick 90 ms late for a 100 ms interval: a loaded machine, not a pause
    d.tick(100);
  }
  assert.deepEqual(statuses(d), { a: "SUSPECTED", b: "SUSPECTED", c: "SUSPECTED" });
  const { d: d2, advance: advance2 } = setup();
  advance2(100);
  d2.tick(100);
  advance2(SUSPECT_MS / 2 + 100); // late by exactly half the suspect timeout: not yet a pause
  d2.tick(100);
  advance2(SUSPECT_MS / 2);
  d2.tick(100);
  assert.deepEqual(statuses(d2), { a: "SUSPECTED", b: "SUSPECTED", c: "SUSPECTED" });
});

Deno.test("a failed call suspects the peer at once, and contact clears it", () => {
  const { d, advance, changes } = setup();
  advance(300);
  d.callFailed("b", "connection refused");
  assert.equal(d.status("b"), "SUSPECTED");
  assert.deepEqual(changes, [{
    peer: "b",
    from: "ACTIVE",
    to: "SUSPECTED",
    silentMs: 300,
    reason: "connection refused",
  }]);
  // A second failure changes nothing; a FAILED peer is not moved back to SUSPECTED.
  d.callFailed("b", "again");
  assert.equal(changes.length, 1);
  advance(FAILURE_MS);
  d.tick();
  assert.equal(d.status("b"), "FAILED");
  d.callFailed("b", "still down");
  assert.equal(d.status("b"), "FAILED");
  d.heard("b");
  assert.equal(d.status("b"), "ACTIVE");
  // A suspicion from a failed call is not undone by a tick while the peer was heard recently.
  d.callFailed("b", "blip");
  d.tick();
  assert.equal(d.status("b"), "SUSPECTED");
});

Deno.test("a peer reporting itself JOINING is JOINING, and ACTIVE once it reports ACTIVE", () => {
  const { d, advance, changes } = setup();
  d.heard("c", "JOINING");
  assert.equal(d.status("c"), "JOINING");
  advance(1000);
  d.heard("c", "JOINING");
  d.tick();
  assert.equal(d.status("c"), "JOINING");
  advance(SUSPECT_MS);
  d.tick();
  assert.equal(d.status("c"), "SUSPECTED", "a silent JOINING peer is suspected like any other");
  d.heard("c", "JOINING");
  assert.equal(d.status("c"), "JOINING");
  d.heard("c", "ACTIVE");
  assert.equal(d.status("c"), "ACTIVE");
  assert.deepEqual(changes.filter((c) => c.peer === "c").map((c) => `${c.from}>${c.to}`), [
    "ACTIVE>JOINING",
    "JOINING>SUSPECTED",
    "SUSPECTED>JOINING",
    "JOINING>ACTIVE",
  ]);
});

Deno.test("onChange fires exactly once per change, with the silence measured", () => {
  const { d, advance, changes } = setup();
  advance(SUSPECT_MS + 1);
  for (let i = 0; i < 5; i++) d.tick();
  assert.equal(changes.length, 3);
  assert.ok(changes.every((c) => c.to === "SUSPECTED" && c.silentMs === SUSPECT_MS + 1));
  for (let i = 0; i < 3; i++) d.heard("a");
  assert.equal(changes.length, 4);
  assert.deepEqual(changes[3], {
    peer: "a",
    from: "SUSPECTED",
    to: "ACTIVE",
    silentMs: SUSPECT_MS + 1,
    reason: "heard from it",
  });
});

Deno.test("unknown peers are ignored and reported FAILED", () => {
  const { d, changes } = setup();
  d.heard("zz");
  d.callFailed("zz", "no such peer");
  d.tick();
  assert.equal(d.status("zz"), "FAILED");
  assert.equal(d.lastContact("zz"), 0);
  assert.deepEqual(d.peers(), ["a", "b", "c"]);
  assert.deepEqual(changes, []);
});

Deno.test("the heartbeat loop feeds replies to the detector and a failing send suspects the peer", async () => {
  const d = new FailureDetector(["up", "down", "joining"], {
    suspectTimeoutMs: 60_000,
    failureTimeoutMs: 120_000,
  });
  const sent = new Map<string, number>();
  const replies: string[] = [];
  const loop = new HeartbeatLoop(d, {
    intervalMs: 20,
    send: (peer) => {
      sent.set(peer, (sent.get(peer) ?? 0) + 1);
      if (peer === "down") return Promise.reject(new Error("connection refused"));
      const reply: HeartbeatReply = {
        status: peer === "joining" ? "JOINING" : "ACTIVE",
        keysCount: 7,
        hintsPending: 0,
      };
      return Promise.resolve(reply);
    },
    onReply: (peer, reply) => replies.push(`${peer}:${reply.status}:${reply.keysCount}`),
  });
  try {
    loop.start();
    await until(() => (sent.get("up") ?? 0) >= 3, 5000, "three heartbeats to each peer");
  } finally {
    loop.stop();
  }
  await new Promise((r) => setTimeout(r, 30)); // let the last sends settle
  assert.equal(d.status("up"), "ACTIVE");
  assert.equal(d.status("down"), "SUSPECTED");
  assert.equal(d.status("joining"), "JOINING");
  assert.ok((sent.get("down") ?? 0) >= 2, "the loop keeps trying a peer that failed");
  assert.ok(replies.includes("up:ACTIVE:7"));
  assert.ok(replies.includes("joining:JOINING:7"));
  assert.ok(!replies.some((r) => r.startsWith("down:")));
  // Stopped: no more heartbeats go out.
  const total = [...sent.values()].reduce((a, b) => a + b, 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal([...sent.values()].reduce((a, b) => a + b, 0), total);
});

Deno.test("the heartbeat loop sends nothing while paused and resumes after", async () => {
  const d = new FailureDetector(["p"], { suspectTimeoutMs: 60_000, failureTimeoutMs: 120_000 });
  let paused = true;
  let sent = 0;
  const loop = new HeartbeatLoop(d, {
    intervalMs: 20,
    send: () => {
      sent++;
      return Promise.resolve({ status: "ACTIVE", keysCount: 0, hintsPending: 0 });
    },
    onReply: () => {},
    paused: () => paused,
  });
  try {
    loop.start();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(sent, 0, "heartbeats went out while paused");
    paused = false;
    await until(() => sent >= 2, 5000, "heartbeats after resuming");
  } finally {
    loop.stop();
  }
});

Deno.test("the heartbeat loop does not start a second heartbeat to a peer while one is in flight", async () => {
  const d = new FailureDetector(["slow"], { suspectTimeoutMs: 60_000, failureTimeoutMs: 120_000 });
  let sent = 0;
  let release: (() => void) | undefined;
  const loop = new HeartbeatLoop(d, {
    intervalMs: 20,
    send: () => {
      sent++;
      return new Promise<HeartbeatReply>((resolve) => {
        release = () => resolve({ status: "ACTIVE", keysCount: 0, hintsPending: 0 });
      });
    },
    onReply: () => {},
  });
  try {
    loop.start();
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(sent, 1);
    release!();
    await until(() => sent >= 2, 5000, "the next heartbeat after the reply");
  } finally {
    loop.stop();
    release?.();
  }
  await new Promise((r) => setTimeout(r, 10));
});
