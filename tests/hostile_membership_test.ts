/**
 * An outsider against membership (real processes, real gRPC, no secret, no
 * TLS; the calls come from 127.0.0.1): a forged PushMembership (epoch 1e9,
 * one unknown member) is refused by every node; a forged Heartbeat with a
 * high epoch and the attacker's address never makes a node call that
 * address (a fake node there would hand out a forged list); forged votes
 * for a far epoch or from a non-member are refused without saving anything
 * or raising the voting floor. Afterwards every node runs and serves, the
 * member list is unchanged and the data is intact. With Redis, a node
 * restarted after the attempt starts from its own, unchanged list.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, endCluster, logLines, sleep, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { fakeNodeService } from "./helpers/fake_node.ts";
import { ignoreRedis, REDIS_PREFIX, redisAt, startRedises, stopRedises } from "./helpers/redis.ts";
import { KvError } from "../lib/errors.ts";
import type { MemberListMsg, MembershipResponseMsg } from "../lib/grpc/messages.ts";

const IDS = ["node1", "node2", "node3"];

/** The list an attacker pushes: epoch 1e9, one member that does not exist. */
const FORGED: MemberListMsg = {
  epoch: 1_000_000_000,
  claimant_id: "node1",
  members: [{
    node_id: "ghost",
    host: "127.0.0.1",
    port: 1,
    state: "MEMBER_NORMAL",
    admin_port: 0,
    resp_port: 0,
  }],
};

/** A NodeService call with no credentials at all. */
function outsider(cluster: TestCluster, to: string): NodeStub {
  return new NodeStub(cluster, to, { secret: null, as: "ghost" });
}

async function membershipOf(cluster: TestCluster, id: string): Promise<MembershipResponseMsg> {
  return await outsider(cluster, id).call<MembershipResponseMsg>("GetMembership", {
    requesting_node_id: "t",
  });
}

/** A vote request an outsider makes up (AcceptMembership reads the list, PrepareMembership ignores it). */
function forgedVote(epoch: number, proposer: string) {
  return { epoch, ballot: { round: 1_000_000, node_id: proposer }, member_list: { ...FORGED, epoch } };
}

async function refusal(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  throw new Error("the call was answered, not refused");
}

/** Every node runs, holds `list` and `voteEpoch`, and reads back `keys`; a new write works. */
async function assertUnharmed(
  cluster: TestCluster,
  list: string,
  keys: string[],
  voteEpoch = 0,
): Promise<void> {
  for (const id of IDS) {
    assert.ok(cluster.isRunning(id), `${id} still runs`);
    const m = await membershipOf(cluster, id);
    assert.equal(JSON.stringify(m.member_list), list, `${id}'s member list is unchanged`);
    assert.equal(m.vote_epoch, voteEpoch, `${id}'s votes are unchanged`);
    const client = await cluster.client({ via: id });
    for (const k of keys) assert.equal(text.decode((await client.get(k)).value), `v:${k}`, `${k} via ${id}`);
    await client.put(`after:${id}`, text.encode("ok"));
    assert.equal(text.decode((await client.get(`after:${id}`)).value), "ok");
  }
}

async function preload(cluster: TestCluster): Promise<string[]> {
  const client = await cluster.client();
  const keys = Array.from({ length: 20 }, (_, i) => `hostile:${i}`);
  for (const k of keys) await client.put(k, text.encode(`v:${k}`));
  return keys;
}

/** A fake node that would answer GetMembership with the forged list; counts every call it gets. */
async function fakeNode(): Promise<{ port: number; calls: () => number; stop: () => Promise<void> }> {
  let calls = 0;
  const answer = (_: unknown, cb: grpc.sendUnaryData<unknown>) => {
    calls++;
    cb(null, { member_list: FORGED, responder_id: "ghost", settings_json: "{}" });
  };
  const fake = await fakeNodeService({ GetMembership: answer });
  return { port: fake.port, calls: () => calls, stop: fake.stop };
}

clusterTest(
  "an outsider's forged push, heartbeat and votes are refused; every node keeps its list, serves and keeps its data",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, secret: false });
    const fake = await fakeNode();
    try {
      const keys = await preload(cluster);
      const list = JSON.stringify((await membershipOf(cluster, "node1")).member_list);

      // A forged push, to every node, a few times each: refused, and logged once per source.
      for (const id of IDS) {
        for (let i = 0; i < 3; i++) {
          const e = await refusal(outsider(cluster, id).call("PushMembership", FORGED));
          assert.equal(e.code, grpc.status.FAILED_PRECONDITION, e.message);
          assert.match(e.message, /does not adopt member list epoch 1000000000: .*vouched for by nobody/);
        }
      }
      for (const id of IDS) {
        assert.equal(logLines(cluster, id, "member list refused").length, 1, `${id} logs once`);
      }

      // A forged heartbeat carrying a high epoch and the fake node's address, as an unknown
      // node and as a member: the first is refused as today; neither makes anyone call the fake.
      const hb = (from: string) => ({
        node_id: from,
        host: "127.0.0.1",
        port: fake.port,
        timestamp: Date.now(),
        keys_count: 0,
        status: "ACTIVE",
        hints_pending: 0,
        membership_epoch: FORGED.epoch,
      });
      for (const id of IDS) {
        const e = await refusal(outsider(cluster, id).call("Heartbeat", hb("ghost")));
        assert.equal(e.code, grpc.status.FAILED_PRECONDITION, e.message);
        const member = IDS.find((x) => x !== id)!;
        await outsider(cluster, id).call("Heartbeat", hb(member));
      }

      // Forged votes, both phases: for an epoch far ahead (under a member's name), and from a non-member.
      const cases = [
        {
          epoch: 5,
          proposer: "node2",
          code: grpc.status.FAILED_PRECONDITION,
          why: /votes on epoch 1 only, not 5/,
        },
        {
          epoch: 1,
          proposer: "ghost",
          code: grpc.status.PERMISSION_DENIED,
          why: /ballot proposer "ghost" is not a member of epoch 0/,
        },
      ];
      for (const id of IDS) {
        for (const c of cases) {
          for (const method of ["PrepareMembership", "AcceptMembership"]) {
            const e = await refusal(outsider(cluster, id).call(method, forgedVote(c.epoch, c.proposer)));
            assert.equal(e.code, c.code, `${method} to ${id}: ${e.message}`);
            assert.match(e.message, c.why);
          }
        }
      }

      // Time for any fetch or adoption the calls might have started.
      await sleep(2000);
      assert.equal(fake.calls(), 0, "no node ever called the address a heartbeat named");
      for (const id of IDS) {
        const claims = logLines(cluster, id, "itself holds epoch 0, not 1000000000");
        assert.equal(claims.length, 1, `${id} logs the heartbeat's false claim once:\n${claims.join("\n")}`);
      }
      await assertUnharmed(cluster, list, keys);
    } finally {
      await fake.stop();
      await endCluster(cluster);
    }
  },
  { timeoutMs: 90_000 },
);

clusterTest(
  "with Redis a node refuses a forged push and vote, and restarts fine from its own unchanged list",
  async () => {
    const { procs, dirs } = await startRedises(3);
    let cluster: TestCluster | undefined;
    try {
      cluster = await TestCluster.start({
        nodes: 3,
        secret: false,
        storage: "redis",
        redisPorts: procs.map((p) => p.port),
      });
      const keys = await preload(cluster);
      const list = JSON.stringify((await membershipOf(cluster, "node1")).member_list);
      for (const id of IDS) {
        const e = await refusal(outsider(cluster, id).call("PushMembership", FORGED));
        assert.equal(e.code, grpc.status.FAILED_PRECONDITION, e.message);
        const v = await refusal(outsider(cluster, id).call("PrepareMembership", forgedVote(7, "node3")));
        assert.equal(v.code, grpc.status.FAILED_PRECONDITION, v.message);
      }
      await sleep(500);
      // Nothing was saved: no list, no vote (a saved forged list would stop the node from restarting).
      for (const p of procs) {
        const redis = await redisAt(p.port);
        try {
          assert.equal(await redis.get(`${REDIS_PREFIX}meta:membership`), null);
          assert.equal(await redis.get(`${REDIS_PREFIX}meta:membership_votes`), null);
        } finally {
          redis.disconnect();
        }
      }
      await cluster.kill("node1");
      await cluster.startNode("node1");
      await cluster.waitActive();
      await assertUnharmed(cluster, list, keys);
    } finally {
      if (cluster) await endCluster(cluster);
      await stopRedises(procs, dirs);
    }
  },
  { timeoutMs: 90_000, ignore: ignoreRedis },
);
