/**
 * Unit tests of a node's votes on new member lists (acceptor.ts): promises
 * and accepts by ballot, decided epochs, durable votes across a restart, and
 * the rule for an acceptor that may have forgotten its votes.
 */
import assert from "node:assert/strict";
import { Acceptor, compareBallots, type Vote, votingFloor } from "../lib/membership/acceptor.ts";
import { listFromNodes, type MemberList } from "../lib/membership/member_list.ts";

const base = listFromNodes([1, 2, 3].map((i) => ({ id: `n${i}`, host: "h", port: i })));
const next: MemberList = {
  epoch: 1,
  claimant: "n1",
  members: [...base.members, { id: "n4", host: "h", port: 4, state: "JOINING" }],
};

function acceptor(store?: { text?: string }, current = () => base): Acceptor {
  return new Acceptor({
    self: "n2",
    current,
    store: store && {
      load: () => Promise.resolve(store.text),
      save: (t) => Promise.resolve(void (store.text = t)),
    },
  });
}

function refusal(v: Vote): string {
  return v.ok ? "ok" : v.refusal;
}

Deno.test("ballots order by round, then node id", () => {
  assert.ok(compareBallots({ round: 2, node: "a" }, { round: 1, node: "z" }) > 0);
  assert.ok(compareBallots({ round: 1, node: "a" }, { round: 1, node: "b" }) < 0);
  assert.equal(compareBallots({ round: 1, node: "a" }, { round: 1, node: "a" }), 0);
});

Deno.test("a promise refuses equal and lower ballots; an accept below the promise is outbid", async () => {
  const a = acceptor();
  a.setFloor(0);
  assert.equal(refusal(await a.prepare(1, { round: 2, node: "n1" })), "ok");
  const low = await a.prepare(1, { round: 1, node: "n3" });
  assert.equal(refusal(low), "outbid");
  assert.deepEqual((low as { promised: unknown }).promised, { round: 2, node: "n1" });
  assert.equal(refusal(await a.prepare(1, { round: 2, node: "n1" })), "outbid");
  assert.equal(refusal(await a.accept(1, { round: 1, node: "n3" }, next)), "outbid");
  assert.equal(refusal(await a.accept(1, { round: 2, node: "n1" }, next)), "ok");
  // A higher prepare learns the accepted list and its ballot.
  const later = await a.prepare(1, { round: 3, node: "n3" });
  assert.deepEqual(later, { ok: true, accepted: { ballot: { round: 2, node: "n1" }, list: next } });
  assert.equal(a.voteEpoch(), 1);
});

Deno.test("an epoch at or below the list held is decided: answered with that list, and its votes dropped", async () => {
  let current = base;
  const a = acceptor(undefined, () => current);
  a.setFloor(0);
  await a.accept(1, { round: 1, node: "n1" }, next);
  current = next;
  a.decided(1);
  const v = await a.prepare(1, { round: 9, node: "n3" });
  assert.equal(refusal(v), "decided");
  assert.deepEqual((v as { list: MemberList }).list, next);
  assert.equal(a.voteEpoch(), 0);
});

Deno.test("without durable votes it votes for nothing until given a floor, then only above it", async () => {
  const a = acceptor();
  assert.equal(a.voting, false);
  const v = await a.prepare(1, { round: 1, node: "n1" });
  assert.equal(refusal(v), "not_voting");
  assert.match((v as { message: string }).message, /not yet learned from its peers/);
  a.setFloor(1);
  assert.equal(refusal(await a.prepare(1, { round: 1, node: "n1" })), "not_voting");
  assert.equal(refusal(await a.prepare(2, { round: 1, node: "n1" })), "ok");
});

Deno.test("durable votes survive a restart: the same ballot is refused and the accepted list is still told", async () => {
  const store: { text?: string } = {};
  const before = acceptor(store);
  await before.open();
  await before.prepare(1, { round: 1, node: "n1" });
  await before.accept(1, { round: 1, node: "n1" }, next);
  const after = acceptor(store);
  assert.equal(
    refusal(await after.prepare(1, { round: 5, node: "n3" })),
    "not_voting",
    "votes before open()",
  );
  await after.open();
  assert.equal(refusal(await after.accept(1, { round: 0, node: "n9" }, base)), "outbid");
  const v = await after.prepare(1, { round: 5, node: "n3" });
  assert.deepEqual(v, { ok: true, accepted: { ballot: { round: 1, node: "n1" }, list: next } });
});

Deno.test("a forgetful acceptor's floor: enough other members must answer; it skips any epoch one holds votes for", () => {
  // 3 members: both others must answer (any majority with it, less it, meets them).
  assert.equal(votingFloor(3, [{ epoch: 4, voteEpoch: 0 }]), undefined);
  assert.equal(votingFloor(3, [{ epoch: 4, voteEpoch: 0 }, { epoch: 4, voteEpoch: 0 }]), 4);
  // A peer holds a vote for epoch 5: it may have voted there too, so it waits past 5.
  assert.equal(votingFloor(3, [{ epoch: 4, voteEpoch: 5 }, { epoch: 4, voteEpoch: 0 }]), 5);
  // 5 members: 3 others. 4 members: 2 others. Alone: nobody to ask.
  assert.equal(votingFloor(5, [{ epoch: 1, voteEpoch: 0 }, { epoch: 2, voteEpoch: 0 }]), undefined);
  assert.equal(votingFloor(5, [1, 2, 2].map((e) => ({ epoch: e, voteEpoch: 0 }))), 2);
  assert.equal(votingFloor(4, [1, 1].map((e) => ({ epoch: e, voteEpoch: 0 }))), 1);
  assert.equal(votingFloor(1, []), 0);
});
