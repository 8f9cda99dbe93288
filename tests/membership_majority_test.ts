/**
 * A membership change needs a majority (real processes, real gRPC): with two
 * of three nodes frozen by SIGSTOP a join and a removal through the third
 * fail UNAVAILABLE, naming the silent nodes, and no node ever holds a list
 * of the next epoch; once they are resumed, changes go through and every
 * node holds the same list at each epoch. The failure detector is made slow
 * here, so the frozen nodes still look ACTIVE to the join, which really
 * asks them for votes; by the removal a failed call may have made them
 * SUSPECTED, and a prepare round confirms they do not answer.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, logField, logLines, sleep, TestCluster } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { joinCall, removeNodeRun } from "./helpers/membership.ts";
import { freePort } from "./helpers/ports.ts";
import { KvError } from "../lib/errors.ts";
import type { JoinResponseMsg, MembershipResponseMsg } from "../lib/grpc/messages.ts";

const RPC_TIMEOUT_MS = 1000;

/** GetMembership of one node, as raw messages. */
function membershipOf(cluster: TestCluster, id: string): Promise<MembershipResponseMsg> {
  return new NodeStub(cluster, id).call<MembershipResponseMsg>("GetMembership", { requesting_node_id: "t" });
}

/** Every node's member list, as text, once they all hold `epoch` (bounded). */
async function sameListEverywhere(cluster: TestCluster, epoch: number): Promise<string> {
  let lists: string[] = [];
  await cluster.waitFor(
    async () => {
      lists = await Promise.all(
        ["node1", "node2", "node3"].map(async (id) =>
          JSON.stringify((await membershipOf(cluster, id)).member_list)
        ),
      );
      return lists.every((l) => JSON.parse(l).epoch === epoch);
    },
    10_000,
    `every node at epoch ${epoch}`,
  );
  assert.equal(new Set(lists).size, 1, `different lists at epoch ${epoch}:\n${lists.join("\n")}`);
  return lists[0];
}

clusterTest(
  "with 2 of 3 nodes frozen a change fails UNAVAILABLE and no node takes the next epoch",
  async () => {
    const cluster = await TestCluster.start({
      nodes: 3,
      heartbeatMs: 500,
      suspectMs: 60_000,
      failureMs: 90_000,
      extra: { failure_detection: { rpc_timeout_ms: RPC_TIMEOUT_MS } },
    });
    try {
      // A memory node votes once its peers told it what it may have forgotten.
      await cluster.waitFor(
        () =>
          ["node1", "node2", "node3"].every((id) =>
            logLines(cluster, id, "membership votes: voting").length > 0
          ),
        15_000,
        "every node voting",
      );
      for (const id of ["node2", "node3"]) await cluster.signal(id, "SIGSTOP");
      let started = Date.now();
      const err = await joinCall(cluster, "node1", "nodeX", freePort()).then(
        (res) => assert.fail(`join answered ${JSON.stringify(res)}`),
        (e: KvError) => e,
      );
      const failMs = Date.now() - started;
      assert.ok(err instanceof KvError && err.code === 14, `${err}`);
      assert.match(err.message, /needs 2 of the 3 members .*1 voted; no vote from node\d \(.*\), node\d \(/);
      assert.match(err.message, /node2/);
      assert.match(err.message, /node3/);
      assert.match(err.message, /nothing was changed/);
      const remove = await removeNodeRun(cluster, "node3", "node1");
      assert.equal(remove.code, 2, remove.stdout + remove.stderr);
      // By now the detector may see them SUSPECTED: then a prepare round checks, with the same answer.
      assert.match(
        remove.stdout + remove.stderr,
        /UNAVAILABLE: .*needs 2 of the 3 members .*nothing was changed/,
      );
      assert.equal((await membershipOf(cluster, "node1")).member_list?.epoch, 0);
      console.log(
        `join with 2 of 3 frozen: UNAVAILABLE after ${failMs} ms (rpc_timeout_ms ${RPC_TIMEOUT_MS})`,
      );

      for (const id of ["node2", "node3"]) await cluster.signal(id, "SIGCONT");
      // None of the three ever held a list of epoch 1: the failed change is not completed later either.
      await sleep(1000);
      await sameListEverywhere(cluster, 0);

      // Back to a majority: a join goes through (nobody listens at its address, so it stays JOINING)...
      started = Date.now();
      let res: JoinResponseMsg | undefined;
      for (let i = 0; i < 20 && !res?.accepted; i++) {
        if (i > 0) await sleep(250);
        res = await joinCall(cluster, "node1", "nodeY", freePort());
      }
      const joinMs = Date.now() - started;
      assert.equal(res?.accepted, true, res?.message ?? "no answer");
      const one = JSON.parse(await sameListEverywhere(cluster, 1));
      assert.ok(one.members.some((m: { node_id: string }) => m.node_id === "nodeY"));
      // ...and is called off by removing it: epoch 2, the same list on every node.
      const off = await removeNodeRun(cluster, "nodeY", "node2");
      assert.equal(off.code, 0, off.stdout + off.stderr);
      await sameListEverywhere(cluster, 2);
      const agreed = logLines(cluster, "node1", "agreed by a majority").map((l) => logField(l, "ms"));
      assert.equal(agreed.length, 2, cluster.logs("node1"));
      console.log(
        `after SIGCONT: join accepted in ${joinMs} ms; agreement of epochs 1, 2 took ${agreed.join(", ")} ms`,
      );
    } finally {
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000 },
);
