/**
 * Tests of `lib/grpc/messages.ts`: requests decoded from the wire become
 * the typed records the handler modules take, and their typed answers
 * become the messages clients read, field for field.
 */
import assert from "node:assert/strict";
import {
  bucketPullFromMsg,
  keyPageFromMsg,
  keyPageToMsg,
  pageRequestFromMsg,
  recordPullFromMsg,
  replicaAnswerToMsg,
  replicaPushFromMsg,
  snapshotPageToMsg,
} from "../lib/grpc/messages.ts";
import type { KvRecord } from "../lib/record.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("ListKeys and GetSnapshot requests become the page they ask for", () => {
  assert.deepEqual(pageRequestFromMsg({ cursor: "12", limit: 5 }), { cursor: "12", limit: 5 });
  assert.deepEqual(pageRequestFromMsg({ requesting_node_id: "node2", cursor: "", limit: 0 }), {
    cursor: "",
    limit: 0,
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
