/**
 * Unit tests of membership at run time with a fake transport: the claimant
 * decides and pushes, others forward, a forwarded change never bounces, a
 * change completes only once every new holder has streamed, a removed node
 * is told, and a newer epoch heard of is fetched. The peers' votes come from
 * acceptors in memory: a change without a majority of them is UNAVAILABLE.
 */
import assert from "node:assert/strict";
import { Membership } from "../lib/membership/manager.ts";
import { listFromNodes, type MemberList } from "../lib/membership/member_list.ts";
import type { ChangeRequest, ChangeResponse, MembershipTransport } from "../lib/membership/transport.ts";
import { Logger } from "../lib/log.ts";
import { KvError, PeerUnavailableError } from "../lib/errors.ts";
import { Acceptor, type Ballot } from "../lib/membership/acceptor.ts";
import type { Vouch } from "../lib/membership/proof.ts";

const base = listFromNodes([1, 2, 3].map((i) => ({ id: `node${i}`, host: "h", port: i })));

/** Peers' acceptors in memory (each holding the base list); `down` ones throw like an unreachable peer. */
class FakeTransport implements MembershipTransport {
  readonly acceptors = new Map<string, Acceptor>();
  readonly down = new Set<string>();
  readonly pushed: [string, number][] = [];
  readonly changes: [string, ChangeRequest][] = [];
  readonly lists = new Map<string, MemberList>();
  answer?: ChangeResponse | Error;
  addPeer(): void {}
  fetchMembership(peer: string) {
    const list = this.lists.get(peer);
    if (!list) return Promise.reject(new Error(`${peer} unknown`));
    return Promise.resolve({ list, settingsJson: "{}", responder: peer, voteEpoch: 0 });
  }
  /** A peer's word: the list it holds (`lists`), else what its acceptor accepted. */
  vouch(peer: string, epoch: number): Promise<Vouch | undefined> {
    if (this.down.has(peer)) return Promise.reject(new PeerUnavailableError(peer, "Deadline exceeded"));
    const list = this.lists.get(peer);
    if (list?.epoch === epoch) return Promise.resolve({ list, adopted: true });
    const a = this.acceptors.get(peer)?.acceptedFor(epoch);
    return Promise.resolve(a ? { list: a.list, adopted: false, ballot: a.ballot } : undefined);
  }
  prepare(peer: string, epoch: number, ballot: Ballot) {
    return this.#voter(peer).then((a) => a.prepare(epoch, ballot));
  }
  accept(peer: string, epoch: number, ballot: Ballot, list: MemberList) {
    return this.#voter(peer).then((a) => a.accept(epoch, ballot, list));
  }
  #voter(peer: string): Promise<Acceptor> {
    if (this.down.has(peer)) return Promise.reject(new PeerUnavailableError(peer, "Deadline exceeded"));
    let a = this.acceptors.get(peer);
    if (!a) {
      this.acceptors.set(peer, a = new Acceptor({ self: peer, current: () => base }));
      a.setFloor(0);
    }
    return Promise.resolve(a);
  }
  pushMembership(peer: string, list: MemberList): Promise<number> {
    this.pushed.push([peer, list.epoch]);
    return Promise.resolve(list.epoch);
  }
  changeMembership(peer: string, change: ChangeRequest): Promise<ChangeResponse> {
    this.changes.push([peer, change]);
    return this.answer instanceof Error ? Promise.reject(this.answer) : Promise.resolve(this.answer!);
  }
  join(): Promise<ChangeResponse> {
    return Promise.reject(new Error("not used"));
  }
}

function membership(
  self: string,
  t: FakeTransport,
  adopted: MemberList[] = [],
  active = (_: string) => true,
) {
  const m = new Membership({
    self,
    initial: base,
    virtualNodes: 20,
    replicationFactor: 2,
    transport: t,
    log: new Logger({ level: "error", format: "text" }),
    active,
    onAdopted: (l) => adopted.push(l),
  });
  m.acceptor.setFloor(0);
  return m;
}

Deno.test("the claimant makes the join, pushes it to every member and the joiner, and answers with it", async () => {
  const t = new FakeTransport();
  const m = membership("node1", t);
  const res = await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  assert.equal(res.accepted, true);
  assert.equal(res.list?.epoch, 1);
  assert.equal(m.epoch, 1);
  assert.deepEqual(t.pushed.map(([p]) => p).sort(), ["node2", "node3", "node4"]);
  const again = await m.propose({ kind: "join", nodeId: "node5", host: "h", port: 5 });
  assert.equal(again.retry, true);
  assert.match(again.message, /node4 JOINING/);
});

Deno.test("the change completes only once every node gaining ranges has streamed; the list then moves on", async () => {
  const t = new FakeTransport();
  const m = membership("node1", t);
  await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  // In a join only the joiner gains ranges: reports from the others do not complete it.
  for (const id of ["node2", "node3"]) {
    const r = await m.propose({ kind: "streamed", nodeId: id, epoch: 1 });
    assert.equal(r.accepted, true);
    assert.equal(m.epoch, 1, `still waiting after ${id}`);
  }
  assert.deepEqual(m.streamed().sort(), ["node2", "node3"]);
  await m.propose({ kind: "streamed", nodeId: "node4", epoch: 1 });
  assert.equal(m.epoch, 2);
  assert.ok(m.list.members.every((x) => x.state === "NORMAL"));
  // A late report for an old epoch changes nothing.
  await m.propose({ kind: "streamed", nodeId: "node4", epoch: 1 });
  assert.equal(m.epoch, 2);
});

Deno.test("a removed node is pushed the list that no longer has it", async () => {
  const t = new FakeTransport();
  const m = membership("node1", t);
  await m.propose({ kind: "remove", nodeId: "node3" });
  for (const id of ["node1", "node2"]) await m.propose({ kind: "streamed", nodeId: id, epoch: 1 });
  assert.equal(m.epoch, 2);
  assert.deepEqual(m.list.members.map((x) => x.id), ["node1", "node2"]);
  assert.ok(t.pushed.some(([p, e]) => p === "node3" && e === 2), JSON.stringify(t.pushed));
  // A node that is not a member cannot be removed; too few would be left.
  await assert.rejects(m.propose({ kind: "remove", nodeId: "node9" }), (e: KvError) => e.code === 5);
  await assert.rejects(m.propose({ kind: "remove", nodeId: "node2" }), (e: KvError) => e.code === 9);
});

Deno.test("another node forwards to the claimant and adopts its answer; a forwarded change is not bounced", async () => {
  const t = new FakeTransport();
  const adopted: MemberList[] = [];
  const m = membership("node2", t, adopted);
  const joined: MemberList = {
    epoch: 1,
    claimant: "node1",
    members: [...base.members, { id: "node4", host: "h", port: 4, state: "JOINING" }],
  };
  t.answer = { accepted: true, retry: false, message: "ok", list: joined, claimant: "node1" };
  // The answer is adopted once proven: the claimant adopted it, node3 accepted it under its ballot.
  t.lists.set("node1", joined);
  await t.accept("node3", 1, { round: 1, node: "node1" }, joined);
  const res = await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  assert.equal(res.accepted, true);
  assert.deepEqual(t.changes, [["node1", {
    kind: "join",
    nodeId: "node4",
    host: "h",
    port: 4,
    forwarded: true,
  }]]);
  assert.equal(m.epoch, 1);
  assert.equal(adopted.length, 1);
  const bounced = await m.propose({ kind: "remove", nodeId: "node3", forwarded: true });
  assert.equal(bounced.retry, true);
  assert.match(bounced.message, /not the claimant \(node1 is\)/);
});

Deno.test("a newer epoch heard of is fetched and adopted once a majority holds it; an older or equal one is ignored", async () => {
  const t = new FakeTransport();
  const m = membership("node2", t);
  const four = { ...base, epoch: 4, claimant: "node1" };
  t.lists.set("node3", four);
  m.noteEpoch("node3", 4);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(m.epoch, 0, "one member's word is not a majority of three");
  t.lists.set("node1", four);
  m.noteEpoch("node3", 0);
  m.noteEpoch("node3", 4);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(m.epoch, 4);
  assert.equal(await m.offer({ ...base, epoch: 3, claimant: "node1" }, "x"), false);
  assert.deepEqual(m.callerIds().sort(), ["node1", "node2", "node3"]);
});

Deno.test("a change without a majority of votes is UNAVAILABLE naming who did not answer; nothing is adopted or pushed", async () => {
  const t = new FakeTransport();
  t.down.add("node2");
  t.down.add("node3");
  const adopted: MemberList[] = [];
  const m = membership("node1", t, adopted);
  await assert.rejects(
    m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 }),
    (e: KvError) => {
      assert.equal(e.code, 14);
      assert.match(e.message, /needs 2 of the 3 members/);
      assert.match(e.message, /node2 \(node node2 unreachable: Deadline exceeded\)/);
      assert.match(e.message, /node3/);
      assert.match(e.message, /nothing was changed/);
      return true;
    },
  );
  assert.equal(m.epoch, 0);
  assert.deepEqual([adopted.length, t.pushed.length], [0, 0]);
  // One voter back is a majority with the claimant: the same join goes through.
  t.down.delete("node2");
  const res = await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  assert.equal(res.accepted, true);
  assert.equal(m.epoch, 1);
});

Deno.test("while a majority looks down a prepare round decides: UNAVAILABLE if they do not answer, else retry", async () => {
  const t = new FakeTransport();
  t.down.add("node2");
  t.down.add("node3");
  const m = membership("node1", t, [], (id) => id === "node1");
  await assert.rejects(
    m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 }),
    /no majority of the members answers: epoch 1 needs 2 of the 3 members .*no vote from node2 .*node3 .*nothing was changed/,
  );
  assert.equal(m.epoch, 0);
  // Only SUSPECTED by the detector (a loaded machine), yet answering: wait and retry, as before.
  t.down.clear();
  const res = await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  assert.equal(res.retry, true);
  assert.match(res.message, /not every member is ACTIVE \(node2, node3\)/);
  assert.equal(m.epoch, 0);
});

Deno.test("a claimant's UNAVAILABLE for want of a majority reaches the caller through a forwarding node as UNAVAILABLE", async () => {
  const t = new FakeTransport();
  const m = membership("node2", t);
  t.answer = new PeerUnavailableError(
    "node1",
    "no majority agreed (node4 is joining at epoch 1): no vote from node3",
  );
  await assert.rejects(m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 }), (e: KvError) => {
    assert.equal(e.code, 14);
    assert.equal(e.message, "node1: no majority agreed (node4 is joining at epoch 1): no vote from node3");
    return true;
  });
  // A claimant that does not answer at all is still "retry" (another may take over).
  t.answer = new PeerUnavailableError("node1", "Deadline exceeded");
  const res = await m.propose({ kind: "join", nodeId: "node4", host: "h", port: 4 });
  assert.equal(res.retry, true);
  assert.match(res.message, /the claimant node1 did not answer/);
});
