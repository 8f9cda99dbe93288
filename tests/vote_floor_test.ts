/**
 * Unit tests of the vote floor of a forgetful acceptor (lib/lwt/vote_floor.ts)
 * with an injected wall clock: the pure rules, the keeper fed by peers'
 * answers, and the acceptor and proposer over it (a promise made before a
 * restart stays refused; a proposer bids past a floor its peers set).
 */
import assert from "node:assert/strict";
import { MemoryStorage } from "../lib/storage/memory.ts";
import { HybridClock } from "../lib/hlc.ts";
import { KeyAcceptor, MemoryVoteBook, type PaxosVote } from "../lib/lwt/acceptor.ts";
import { type PaxosTransport, runPaxos } from "../lib/lwt/proposer.ts";
import { decide } from "../lib/lwt/ops.ts";
import type { KvRecord } from "../lib/record.ts";
import {
  BallotMark,
  FloorKeeper,
  type HighWater,
  highWater,
  peerFloor,
  voteFloor,
} from "../lib/lwt/vote_floor.ts";

const SKEW = 60_000;
const START = 1_000_000_000; // wall ms of the restart
const TIME_FLOOR = (START + 2 * SKEW) * 1000;
const CEILING = (START + SKEW) * 1000;

const refusal = (v: PaxosVote) => v.ok ? "ok" : v.refusal;

Deno.test("voteFloor: the time floor until the peers' floor is known, then the lower of the two", () => {
  const waiting = voteFloor({ timeFloor: TIME_FLOOR, ceiling: CEILING, missing: ["n3"] });
  assert.deepEqual([waiting.round, waiting.outbid], [TIME_FLOOR, false]);
  assert.match(waiting.why, /waiting for n3/);
  const peers = voteFloor({ timeFloor: TIME_FLOOR, peerFloor: START * 1000 + 5, ceiling: CEILING });
  assert.deepEqual([peers.round, peers.outbid], [START * 1000 + 5, true]);
  const ahead = voteFloor({ timeFloor: TIME_FLOOR, peerFloor: CEILING + 1, ceiling: CEILING });
  assert.deepEqual(
    [ahead.round, ahead.outbid],
    [CEILING + 1, false],
    "no bid beyond this node's clock bound",
  );
  const above = voteFloor({ timeFloor: TIME_FLOOR, peerFloor: TIME_FLOOR + 1, ceiling: CEILING });
  assert.deepEqual([above.round, above.outbid], [TIME_FLOOR, false]);
});

Deno.test("peerFloor: every other member must answer, none from a newer member list", () => {
  const answers = new Map<string, HighWater>([["n2", { round: 50, epoch: 3 }], ["n3", {
    round: 70,
    epoch: 3,
  }]]);
  assert.equal(peerFloor({ others: ["n2", "n3"], epoch: 3 }, answers), 70);
  assert.equal(
    peerFloor({ others: ["n2", "n3", "n4"], epoch: 3 }, answers),
    undefined,
    "n4 has not answered",
  );
  assert.equal(
    peerFloor({ others: ["n2", "n3"], epoch: 2 }, answers),
    undefined,
    "this node's list is older",
  );
  assert.equal(peerFloor({ others: [], epoch: 0 }, new Map()), 0, "a single node has no one to wait for");
});

Deno.test("highWater: clock, ballots noted, and a durable node's own start floor", () => {
  assert.equal(highWater({ clockNow: 10, mark: 20, durableFloor: 0 }), 20);
  assert.equal(highWater({ clockNow: 30, mark: 20, durableFloor: 0 }), 30);
  assert.equal(highWater({ clockNow: 30, mark: 20, durableFloor: 40 }), 40);
});

/** A node restarted at START: its clock, floor keeper and acceptor, with peers n2 and n3. */
function restarted(o: { durable?: boolean; others?: string[] } = {}) {
  let wall = START;
  const clock = new HybridClock(() => wall, SKEW);
  const observed: number[] = [];
  const keeper = new FloorKeeper({
    self: "n1",
    durable: o.durable ?? false,
    startMs: START,
    maxClockSkewMs: SKEW,
    wall: () => wall,
    clockNow: () => clock.now(),
    observe: (r) => {
      observed.push(r);
      clock.observe(r);
    },
    members: () => ({ others: o.others ?? ["n2", "n3"], epoch: 1 }),
  });
  const acceptor = new KeyAcceptor({
    self: "n1",
    storage: new MemoryStorage(),
    book: new MemoryVoteBook(),
    floor: () => keeper.floor(),
    mark: keeper.mark,
    ready: () => true,
    blocked: () => undefined,
  });
  return { clock, keeper, acceptor, observed, advance: (ms: number) => wall += ms };
}

Deno.test("a restarted acceptor votes above its peers' highest ballot once every member answered", async () => {
  const n = restarted();
  const peerBallot = START * 1000 + 900; // a peer's promise or clock, a little ahead of this node
  assert.equal(refusal(await n.acceptor.prepare("k", { round: START * 1000 + 1, node: "n2" })), "not_voting");
  n.keeper.heard("n2", peerBallot, 1);
  const half = await n.acceptor.prepare("k", { round: peerBallot + 1, node: "n2" });
  assert.equal(refusal(half), "not_voting", "n3 has not answered");
  assert.match(half.ok ? "" : half.message, /waiting for n3/);
  n.keeper.heard("n3", START * 1000, 1);
  const low = await n.acceptor.prepare("k", { round: peerBallot, node: "n2" });
  assert.ok(!low.ok && low.refusal === "outbid" && low.promised.round === peerBallot, "told the floor");
  assert.ok((await n.acceptor.prepare("k", { round: peerBallot + 1, node: "n2" })).ok);
  assert.deepEqual(n.observed, [peerBallot], "its own clock is lifted to the floor");
  // A ballot well ahead of this node's clock (a peer's clock leads by 30 s): what it answers covers it.
  const ahead = { round: START * 1000 + 30_000_000, node: "n3" };
  assert.ok((await n.acceptor.prepare("k2", ahead)).ok);
  assert.ok(n.keeper.highWater() >= ahead.round, "the ballot it promised is part of what it answers");
  n.keeper.heard("n2", TIME_FLOOR, 1);
  assert.equal(n.keeper.floor().round, peerBallot, "a settled floor stays");
});

Deno.test("a promise made before a restart stays refused: its proposer's answer covers it", async () => {
  // Before the restart n1 promised ballot b of proposer n2, which noted it in its mark.
  const b = START * 1000 - 5;
  const n = restarted();
  const record: KvRecord = {
    key: "k",
    value: new Uint8Array([1]),
    tombstone: false,
    timestamp: b,
    versionNode: "n2",
  };
  // n3 answers a low high-water; n2, the proposer still holding b, has not answered yet.
  n.keeper.heard("n3", START * 1000 - 1000, 1);
  assert.notEqual(refusal(await n.acceptor.accept("k", { round: b, node: "n2" }, record)), "ok");
  n.keeper.heard("n2", b, 1);
  assert.notEqual(refusal(await n.acceptor.accept("k", { round: b, node: "n2" }, record)), "ok");
  assert.ok((await n.acceptor.accept("k", { round: b + 1, node: "n2" }, { ...record, timestamp: b + 1 })).ok);
});

Deno.test("the members waited for: the missing ones, until the floor is set or the start-time floor passed", () => {
  const n = restarted();
  n.keeper.heard("n2", START * 1000, 1);
  assert.deepEqual(n.keeper.waiting(), ["n3"]);
  n.advance(2 * SKEW + 1);
  assert.deepEqual(n.keeper.waiting(), [], "past the start-time floor no answer is needed");
  const m = restarted();
  m.keeper.heard("n2", START * 1000, 1);
  m.keeper.heard("n3", START * 1000, 1);
  assert.deepEqual(m.keeper.waiting(), []);
  assert.deepEqual(restarted({ durable: true }).keeper.waiting(), []);
});

Deno.test("a durable node needs no floor, and answers at least its start floor", () => {
  const n = restarted({ durable: true });
  assert.equal(n.keeper.floor().round, 0);
  assert.equal(n.keeper.highWater(), TIME_FLOOR, "its saved votes may reach 2 skews past its start");
  n.advance(3 * SKEW);
  assert.ok(n.keeper.highWater() > TIME_FLOOR, "later its clock covers them");
});

Deno.test("a single memory node votes at once: no peer can hold its old promises", async () => {
  const n = restarted({ others: [] });
  assert.ok((await n.acceptor.prepare("k", { round: START * 1000 + 1, node: "n1" })).ok);
});

Deno.test("a proposer told a peers' floor bids above it and applies", async () => {
  const n = restarted();
  const floor = START * 1000 + 40_000; // the peers' clocks lead this one by 40 ms
  n.keeper.heard("n2", floor, 1);
  n.keeper.heard("n3", 1, 1);
  // A proposer elsewhere whose clock is behind the floor: one outbid, then a ballot above it.
  const other = new HybridClock(() => START, SKEW);
  const mark = new BallotMark();
  const transport: PaxosTransport = {
    prepare: (_v, key, b) => n.acceptor.prepare(key, b),
    accept: (_v, key, b, r) => n.acceptor.accept(key, b, r),
    commit: (_v, r) => n.acceptor.commit(r),
  };
  const r = await runPaxos({
    self: "n2",
    key: "k",
    voters: ["n1"],
    transport,
    clock: other,
    decide: (cur) => decide({ kind: "incr", key: "k", delta: 1n }, cur),
    timeoutMs: 5000,
    now: () => 0,
    mark,
  });
  assert.ok(r.applied && r.record.timestamp > floor && r.record.timestamp < CEILING);
  assert.equal(mark.highest, r.record.timestamp, "the proposer noted the ballot it issued");
});
