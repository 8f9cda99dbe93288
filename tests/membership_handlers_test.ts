/**
 * Tests of `lib/membership/handlers.ts` through a real node: bad join and
 * change requests are INVALID_ARGUMENT naming what is wrong, and nothing is
 * added (bad votes on new lists too); GetMembership tells the members, their states and the settings a
 * joiner takes. Accepted joins and removals are in membership_test.ts.
 */
import assert from "node:assert/strict";
import { clusterTest, kvError, TestCluster } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { Code } from "../lib/errors.ts";
import type { MembershipResponseMsg } from "../lib/grpc/messages.ts";

clusterTest(
  "bad JoinCluster and ChangeMembership requests are INVALID_ARGUMENT and change no membership",
  async () => {
    const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 2 });
    try {
      const stub = new NodeStub(cluster, "node1", { as: "node2" });
      const bad: [string, unknown, RegExp][] = [
        [
          "JoinCluster",
          { node_id: "node 9", host: "127.0.0.1", port: 9009 },
          /may hold only letters, digits/,
        ],
        ["JoinCluster", { node_id: "node9", host: "", port: 9009 }, /needs its host and port/],
        ["JoinCluster", { node_id: "node9", host: "127.0.0.1", port: 70000 }, /needs its host and port/],
        [
          "ChangeMembership",
          { kind: "CHANGE_JOIN", node_id: "node9", host: "127.0.0.1", port: 0 },
          /host and port/,
        ],
        ["ChangeMembership", { kind: "CHANGE_REMOVE", node_id: "" }, /node_id is required/],
        [
          "PrepareMembership",
          { epoch: 0, ballot: { round: 1, node_id: "node2" } },
          /epoch must be a positive/,
        ],
        ["AcceptMembership", { epoch: 1, ballot: { round: 1, node_id: "node2" } }, /list of epoch 1/],
        [
          "AcceptMembership",
          { epoch: 2, ballot: { round: 1, node_id: "node2" }, member_list: { epoch: 3, members: [] } },
          /member_list must be the list of epoch 2/,
        ],
      ];
      for (const [method, req, message] of bad) {
        const err = await kvError(() => stub.call(method, req));
        assert.equal(err.code, Code.INVALID_ARGUMENT, `${method}: ${err.message}`);
        assert.match(err.message, message);
      }
      const view = await stub.call<MembershipResponseMsg>("GetMembership", {});
      assert.equal(view.member_list?.epoch, 0, "no change was made");
      assert.equal(view.vote_epoch, 0, "no vote was cast");
      assert.equal(view.cluster_size, 2);
      assert.deepEqual(view.nodes.map((n) => [n.node_id, n.member_state]).sort(), [
        ["node1", "MEMBER_NORMAL"],
        ["node2", "MEMBER_NORMAL"],
      ]);
      assert.equal(view.responder_id, "node1");
      assert.equal(view.replication_factor, 2);
      assert.equal(typeof JSON.parse(view.settings_json), "object", "the settings a joiner takes are JSON");
    } finally {
      await cluster.stop();
    }
  },
);
