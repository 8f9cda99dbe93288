/**
 * Tests of `lib/grpc/messages.ts`: requests decoded from the wire become
 * the typed records the handler modules take, and their typed answers
 * become the messages clients read, field for field.
 */
import assert from "node:assert/strict";
import {
  bucketPullFromMsg,
  changeRequestFromMsg,
  joinAnswerToMsg,
  joinerFromMsg,
  keyPageFromMsg,
  keyPageToMsg,
  membershipViewToMsg,
  pageRequestFromMsg,
  recordPullFromMsg,
  replicaAnswerToMsg,
  replicaPushFromMsg,
  snapshotPageToMsg,
  voteRequestFromMsg,
} from "../lib/grpc/messages.ts";
import type { KvRecord } from "../lib/record.ts";
import type { MemberInfo } from "../lib/node.ts";
import type { MemberList } from "../lib/membership/member_list.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("ListKeys and GetSnapshot requests become the page they ask for", () => {
  assert.deepEqual(pageRequestFromMsg({ cursor: "12", limit: 5 }, "127.0.0.1:5000"), {
    cursor: "12",
    limit: 5,
    connection: "127.0.0.1:5000",
  });
  assert.deepEqual(pageRequestFromMsg({ requesting_node_id: "node2", cursor: "", limit: 0 }, "peer"), {
    cursor: "",
    limit: 0,
    connection: "peer",
  });
});

Deno.test("a page of keys goes to a ListKeysResponse and back unchanged", () => {
  const page = { keys: ["a", "b"], count: 9, nodeId: "node1", nextCursor: "3" };
  const msg = keyPageToMsg(page);
  assert.deepEqual(msg, { keys: ["a", "b"], count: 9, node_id: "node1", next_cursor: "3" });
  assert.deepEqual(keyPageFromMsg(msg), page);
});

Deno.test("a page of records becomes a SnapshotResponse with each record as a KeyValuePair", () => {
  const r: KvRecord = { key: "k", value: bytes("v"), timestamp: 7, versionNode: "node3", tombstone: false };
  const msg = snapshotPageToMsg({
    records: [r],
    total: 4,
    provider: "node1",
    timestamp: 99,
    nextCursor: "",
    message: "1 keys",
  });
  assert.deepEqual(msg, {
    data: [{ key: "k", value: bytes("v"), timestamp: 7, version_node: "node3", tombstone: false }],
    total_keys: 4,
    provider_node_id: "node1",
    snapshot_timestamp: 99,
    next_cursor: "",
    message: "1 keys",
  });
});

Deno.test("a StreamRecords request is a range move only when for_move is set", () => {
  const req = { requesting_node_id: "node2", max_records: 5, max_bytes: 0, for_move: false, epoch: 3 };
  assert.deepEqual(recordPullFromMsg(req), { maxRecords: 5, maxBytes: 0 });
  assert.deepEqual(recordPullFromMsg({ ...req, for_move: true }), {
    maxRecords: 5,
    maxBytes: 0,
    forMoveOfEpoch: 3,
  });
  assert.deepEqual(recordPullFromMsg({ ...req, for_move: true, epoch: 0 }).forMoveOfEpoch, 0);
});

Deno.test("a StreamBuckets request becomes the buckets and chunk limits it asks for", () => {
  const req = { requesting_node_id: "node2", bucket_bits: 4, buckets: [1, 9], max_records: 0, max_bytes: 64 };
  assert.deepEqual(bucketPullFromMsg(req), { bucketBits: 4, buckets: [1, 9], maxRecords: 0, maxBytes: 64 });
});

Deno.test("pushed copies become records with their hints, from the node the first copy names", () => {
  const copy = {
    key: "k",
    value: bytes("v"),
    timestamp: 5,
    primary_node: "node2",
    operation: "PUT" as const,
    version_node: "node3",
    hint_for: "",
  };
  const record = { key: "k", value: bytes("v"), timestamp: 5, versionNode: "node3", tombstone: false };
  assert.deepEqual(replicaPushFromMsg(copy), { from: "node2", items: [{ record }] });
  const hinted = { ...copy, operation: "DELETE" as const, version_node: "", hint_for: "node4" };
  assert.deepEqual(replicaPushFromMsg({ items: [hinted, copy], primary_node: "ignored" }), {
    from: "node2",
    items: [
      { record: { ...record, versionNode: "node2", tombstone: true }, hintFor: "node4" },
      { record },
    ],
  });
  assert.deepEqual(replicaPushFromMsg({ items: [], primary_node: "node2" }), { from: "", items: [] });
});

Deno.test("a replica's answer becomes a successful ReplicateBatchResponse naming the replica", () => {
  assert.deepEqual(replicaAnswerToMsg({ applied: 2, message: "2 applied" }, "node1"), {
    success: true,
    message: "2 applied",
    replica_node_id: "node1",
    applied: 2,
  });
});

const list: MemberList = {
  epoch: 3,
  claimant: "node1",
  members: [
    { id: "node1", host: "127.0.0.1", port: 7001, state: "NORMAL", adminPort: 9001, respPort: 9101 },
    { id: "node4", host: "127.0.0.1", port: 7004, state: "JOINING" },
  ],
};
const listMsg = {
  epoch: 3,
  claimant_id: "node1",
  members: [
    {
      node_id: "node1",
      host: "127.0.0.1",
      port: 7001,
      state: "MEMBER_NORMAL" as const,
      admin_port: 9001,
      resp_port: 9101,
    },
    {
      node_id: "node4",
      host: "127.0.0.1",
      port: 7004,
      state: "MEMBER_JOINING" as const,
      admin_port: 0,
      resp_port: 0,
    },
  ],
};
const member: MemberInfo = {
  id: "node4",
  host: "127.0.0.1",
  port: 7004,
  status: "JOINING",
  lastContactMs: 12_999,
  keysCount: 8,
  recoveredRecords: 2,
  memberState: "JOINING",
  clockOffset: { offsetMs: -1500.4, uncertaintyMs: 2.2 },
};
const memberMsg = {
  node_id: "node4",
  host: "127.0.0.1",
  port: 7004,
  status: "JOINING",
  last_heartbeat: 12,
  keys_count: 8,
  recovered_records: 2,
  member_state: "MEMBER_JOINING",
  clock_offset_ms: -1500,
  clock_offset_uncertainty_ms: 3,
  status_reason: "",
};

Deno.test("a JoinCluster request is the joiner's address; its answer carries the members and the new list", () => {
  assert.deepEqual(
    joinerFromMsg({ node_id: "node4", host: "127.0.0.1", port: 7004, admin_port: 9004, resp_port: 9104 }),
    {
      id: "node4",
      host: "127.0.0.1",
      port: 7004,
      adminPort: 9004,
      respPort: 9104,
    },
  );
  const change = { accepted: true, retry: false, message: "joining", list, claimant: "node1" };
  assert.deepEqual(joinAnswerToMsg({ change, members: [member] }), {
    accepted: true,
    message: "joining",
    existing_nodes: [memberMsg],
    retry: false,
    member_list: listMsg,
  });
  const refused = joinAnswerToMsg({ change: { ...change, accepted: false, list: undefined }, members: [] });
  assert.equal(refused.member_list, null);
});

Deno.test("a MembershipChange becomes the change of its kind; an unknown kind is a removal", () => {
  const m = {
    kind: "CHANGE_JOIN" as const,
    node_id: "node4",
    host: "h",
    port: 7004,
    epoch: 0,
    forwarded: true,
    admin_port: 9004,
    resp_port: 9104,
  };
  assert.deepEqual(changeRequestFromMsg(m), {
    kind: "join",
    nodeId: "node4",
    host: "h",
    port: 7004,
    epoch: 0,
    forwarded: true,
    adminPort: 9004,
    respPort: 9104,
  });
  assert.equal(changeRequestFromMsg({ ...m, kind: "CHANGE_STREAMED" }).kind, "streamed");
  assert.equal(changeRequestFromMsg({ ...m, kind: "CHANGE_REMOVE" }).kind, "remove");
  const unknown = { ...m, kind: "CHANGE_OTHER" } as unknown as typeof m;
  assert.equal(changeRequestFromMsg(unknown).kind, "remove");
});

Deno.test("vote requests carry their ballot (the lowest when absent) and, to accept, the list", () => {
  assert.deepEqual(voteRequestFromMsg({ epoch: 4, ballot: { round: 2, node_id: "node1" } }), {
    epoch: 4,
    ballot: { round: 2, node: "node1" },
  });
  assert.deepEqual(voteRequestFromMsg({ epoch: 4, ballot: null, member_list: listMsg }), {
    epoch: 4,
    ballot: { round: 0, node: "" },
    list,
  });
  assert.deepEqual(voteRequestFromMsg({ epoch: 4, ballot: null, member_list: null }), {
    epoch: 4,
    ballot: { round: 0, node: "" },
  });
});

Deno.test("a node's view of the membership becomes a MembershipResponse", () => {
  const view = {
    members: [member],
    list,
    settingsJson: "{}",
    responder: "node2",
    voteEpoch: 3,
    clusterName: "c",
    virtualNodes: 16,
    replicationFactor: 2,
    claimant: "",
    streamed: ["node4"],
  };
  assert.deepEqual(membershipViewToMsg(view), {
    nodes: [memberMsg],
    cluster_size: 2,
    virtual_nodes: 16,
    replication_factor: 2,
    cluster_name: "c",
    responder_id: "node2",
    member_list: listMsg,
    settings_json: "{}",
    claimant_id: "",
    streamed: ["node4"],
    vote_epoch: 3,
    vouched_list: null,
    vouched_adopted: false,
    vouched_ballot: null,
  });
  // Asked to vouch for an epoch: the list it accepted there, under which ballot.
  const vouched = membershipViewToMsg({
    ...view,
    vouch: { list, adopted: false, ballot: { round: 4, node: "node1" } },
  });
  assert.deepEqual(vouched.vouched_list, listMsg);
  assert.equal(vouched.vouched_adopted, false);
  assert.deepEqual(vouched.vouched_ballot, { round: 4, node_id: "node1" });
});
