/**
 * Unit tests of the proof a node asks for before it adopts a member list
 * (`membership/proof.ts`), with a fake transport: who is asked (only the
 * held list's members), how many must vouch, and the trust anchors of the
 * hard cases: catching up over epochs whose deciders left, a node restarted
 * from the cluster file's epoch-0 list, and a joiner trusting its seed.
 */
import assert from "node:assert/strict";
import { proveList, type Vouch } from "../lib/membership/proof.ts";
import { listFromNodes, type MemberList } from "../lib/membership/member_list.ts";
import { Membership } from "../lib/membership/manager.ts";
import { joinUntilAccepted } from "../lib/membership/join.ts";
import type { ChangeResponse, MembershipTransport } from "../lib/membership/transport.ts";
import { Logger } from "../lib/log.ts";
import { PeerUnavailableError } from "../lib/errors.ts";

const node = (i: number) => ({ id: `node${i}`, host: "127.0.0.1", port: 7000 + i });
const listOf = (epoch: number, ids: number[], claimant = "node1"): MemberList => ({
  ...listFromNodes(ids.map(node)),
  epoch,
  claimant: epoch === 0 ? "" : claimant,
});

/** Peers' words by id: what each adopted (its current list and history) or accepted. */
class Words {
  readonly asked: [string, number][] = [];
  readonly adopted = new Map<string, MemberList[]>();
  readonly accepted = new Map<string, Vouch>();
  readonly down = new Set<string>();

  ask = (peer: string, epoch: number): Promise<Vouch | undefined> => {
    this.asked.push([peer, epoch]);
    if (this.down.has(peer)) return Promise.reject(new PeerUnavailableError(peer, "connection refused"));
    const list = this.adopted.get(peer)?.find((l) => l.epoch === epoch);
    if (list) return Promise.resolve({ list, adopted: true });
    const a = this.accepted.get(peer);
    return Promise.resolve(a?.list.epoch === epoch ? a : undefined);
  };
}

const log = new Logger({ level: "error", format: "text" });

Deno.test("a list of the next epoch is proven by a majority of the held list that accepted it under one ballot", async () => {
  const held = listOf(3, [1, 2, 3]);
  const next = listOf(4, [1, 2, 3, 4]);
  const w = new Words();
  w.accepted.set("node2", { list: next, adopted: false, ballot: { round: 1, node: "node2" } });
  const one = await proveList({ self: "node1", held, candidate: next, ask: w.ask });
  assert.equal(one.proven, false, "one acceptor of three is not a majority");
  assert.match(one.message, /vouched for by node2 of the 3 members of epoch 3, 2 needed/);
  w.accepted.set("node3", { list: next, adopted: false, ballot: { round: 2, node: "node3" } });
  const split = await proveList({ self: "node1", held, candidate: next, ask: w.ask });
  assert.equal(split.proven, false, "accepted under two ballots: not chosen by Paxos' rule");
  w.accepted.set("node3", { list: next, adopted: false, ballot: { round: 1, node: "node2" } });
  const chosen = await proveList({ self: "node1", held, candidate: next, ask: w.ask });
  assert.equal(chosen.proven, true);
  assert.deepEqual(chosen.vouchers, ["node2", "node3"]);
  assert.deepEqual(w.asked.map(([p]) => p).sort(), ["node2", "node2", "node2", "node3", "node3", "node3"]);
});

Deno.test("this node's own vote counts, an adopter makes every vote for the list count, another list never does", async () => {
  const held = listOf(3, [1, 2, 3]);
  const next = listOf(4, [1, 2, 3, 4]);
  const w = new Words();
  const own: Vouch = { list: next, adopted: false, ballot: { round: 1, node: "node1" } };
  w.adopted.set("node3", [next]);
  const v = await proveList({ self: "node2", held, candidate: next, own, ask: w.ask });
  assert.deepEqual(v.vouchers, ["node2", "node3"]);
  const forged = { ...next, members: [...next.members, { ...node(9), state: "NORMAL" as const }] };
  const f = await proveList({ self: "node2", held, candidate: forged, own, ask: w.ask });
  assert.equal(f.proven, false);
});

Deno.test("a forged list (epoch 1e9, one unknown member) is vouched for by nobody; only the held members are asked", async () => {
  const held = listOf(0, [1, 2, 3]);
  const w = new Words();
  w.adopted.set("node2", [held]);
  w.adopted.set("node3", [held]);
  const forged: MemberList = { epoch: 1e9, claimant: "evil", members: [{ ...node(66), state: "NORMAL" }] };
  const v = await proveList({ self: "node1", held, candidate: forged, ask: w.ask });
  assert.equal(v.proven, false);
  assert.match(v.message, /vouched for by nobody/);
  assert.deepEqual(w.asked.map(([p]) => p).sort(), ["node2", "node3"]);
});

Deno.test("(a) catching up over several epochs whose deciders left: a majority of the held list holds the newest list", async () => {
  // Held: epoch 2 {1,2,3}. Meanwhile node4 joined (3, 4) and left again (5, 6), node5 joined (7, 8):
  // node4 decided epochs 5 and 6 and is gone. The chain step by step would need it; the held members do not.
  const held = listOf(2, [1, 2, 3]);
  const newest = listOf(8, [1, 2, 3, 5]);
  const w = new Words();
  w.down.add("node4");
  const seen = [3, 4, 5, 6, 7].map((e) => listOf(e, [1, 2, 3, 4]));
  w.adopted.set("node2", [...seen, newest]);
  w.adopted.set("node3", [...seen, newest]);
  const v = await proveList({ self: "node1", held, candidate: newest, ask: w.ask });
  assert.equal(v.proven, true);
  assert.deepEqual(v.vouchers, ["node2", "node3"]);
  assert.ok(!w.asked.some(([p]) => p === "node4" || p === "node5"), "only the held list's members are asked");
  // A vote is no proof across epochs: node3 accepted epoch 8 but never adopted it.
  w.adopted.set("node3", seen);
  w.accepted.set("node3", { list: newest, adopted: false, ballot: { round: 1, node: "node1" } });
  assert.equal((await proveList({ self: "node1", held, candidate: newest, ask: w.ask })).proven, false);
  // With a majority of the held list gone for good, nothing proves it: the node keeps its list.
  w.adopted.set("node3", [...seen, newest]);
  w.down.add("node3");
  const lost = await proveList({ self: "node1", held, candidate: newest, ask: w.ask });
  assert.equal(lost.proven, false);
  assert.match(lost.message, /node3 did not answer/);
});

/** A Membership whose transport answers fetches and vouches from `w`, and counts every call by peer. */
function memberOf(self: string, initial: MemberList, w: Words, adopted: MemberList[] = []) {
  const called: string[] = [];
  const transport: MembershipTransport = {
    addPeer: () => {},
    fetchMembership: (peer) => {
      called.push(peer);
      const list = w.adopted.get(peer)?.at(-1);
      if (!list) return Promise.reject(new PeerUnavailableError(peer, "connection refused"));
      return Promise.resolve({ list, settingsJson: "{}", responder: peer, voteEpoch: 0 });
    },
    vouch: (peer, epoch) => {
      called.push(peer);
      return w.ask(peer, epoch);
    },
    prepare: () => Promise.reject(new Error("not used")),
    accept: () => Promise.reject(new Error("not used")),
    pushMembership: () => Promise.reject(new Error("not used")),
    changeMembership: () => Promise.reject(new Error("not used")),
    join: (peer) => {
      called.push(peer);
      return Promise.resolve(joinAnswer);
    },
  };
  const m = new Membership({
    self,
    initial,
    virtualNodes: 8,
    replicationFactor: 2,
    transport,
    log,
    active: () => true,
    onAdopted: (l) => adopted.push(l),
  });
  m.acceptor.setFloor(0);
  return { m, called, transport };
}

let joinAnswer: ChangeResponse = { accepted: false, retry: true, message: "", claimant: "" };

Deno.test("(b) a memory node restarted from the cluster file: the file's members are its anchor", async () => {
  const file = listOf(0, [1, 2, 3]);
  const now = listOf(5, [1, 2, 3, 4]);
  const w = new Words();
  w.adopted.set("node3", [now]);
  const { m } = memberOf("node1", file, w);
  await m.syncFrom(["node3"]);
  assert.equal(m.epoch, 0, "one member of the file's list is not a majority of it");
  w.adopted.set("node2", [now]);
  await m.syncFrom(["node3"]);
  assert.equal(m.epoch, 5);
  // Now it vouches for what it adopted, and for what it held before.
  assert.deepEqual(m.vouchFor(5), { list: now, adopted: true });
  assert.deepEqual(m.vouchFor(0), { list: file, adopted: true });
});

Deno.test("(c) a joiner adopts the JoinCluster answer of the seed it was given, asking nobody else", async () => {
  const seedList = listOf(4, [1, 2, 3]);
  const joined = {
    ...listOf(5, [1, 2, 3]),
    members: [...seedList.members, { ...node(4), state: "JOINING" as const }],
  };
  joinAnswer = { accepted: true, retry: false, message: "node4 is joining", list: joined, claimant: "node1" };
  const w = new Words();
  const { m, called, transport } = memberOf("node4", seedList, w);
  await joinUntilAccepted({
    self: { id: "node4", host: "127.0.0.1", port: 7004, adminPort: 0 },
    seeds: ["127.0.0.1:7002"],
    transport,
    membership: m,
    log,
    timeoutMs: 1000,
  });
  assert.equal(m.epoch, 5);
  assert.deepEqual(called, ["seed:127.0.0.1:7002"]);
});

Deno.test("a heartbeat's epoch from a non-member is never followed; a push that is not proven is refused FAILED_PRECONDITION", async () => {
  const held = listOf(0, [1, 2, 3]);
  const w = new Words();
  const { m, called } = memberOf("node1", held, w);
  m.noteEpoch("intruder", 1e9);
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(called, []);
  const forged: MemberList = { epoch: 1e9, claimant: "evil", members: [{ ...node(66), state: "NORMAL" }] };
  await assert.rejects(m.push(forged, "push"), (e: { code: number; message: string }) => {
    assert.equal(e.code, 9);
    assert.match(e.message, /does not adopt member list epoch 1000000000: .*vouched for by nobody/);
    return true;
  });
  assert.equal(m.epoch, 0);
});
