/**
 * Unit tests of the fuzz generator (tests/helpers/fuzz.ts): a seed replays
 * the same messages, the hand-made wire encoding is what protobuf decoders
 * read, and the peer pass's filter recognises the membership changes a peer
 * may legitimately make.
 */
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { PROTO_TEXT } from "../lib/grpc/proto.ts";
import {
  describeBody,
  encode,
  type FuzzContext,
  legitimateChange,
  MessageFuzzer,
  Rng,
  subSeed,
  varint,
} from "./helpers/fuzz.ts";

const root = protobuf.parse(PROTO_TEXT, { keepCase: true }).root;
root.resolveAll();

const ctx: FuzzContext = {
  nodeIds: ["node1", "node2", "node3"],
  ports: [10001, 10002, 10003],
  readKeys: ["fixture/0"],
  bigKey: "fixture/big",
  maxMessageBytes: 4 << 20,
};

Deno.test("one seed gives the same bodies; another seed different ones", () => {
  const bodies = (seed: number) => {
    const f = new MessageFuzzer(new Rng(seed), ctx);
    return Array.from({ length: 20 }, () => f.body(root.lookupType("kvstore.MultiGetRequest")));
  };
  assert.deepEqual(bodies(42), bodies(42));
  assert.notDeepEqual(bodies(42), bodies(43));
  assert.notEqual(subSeed(1, "pass", "Put"), subSeed(1, "pass", "Get"));
  assert.equal(subSeed(1, "pass", "Put"), subSeed(1, "pass", "Put"));
});

Deno.test("the hand-made encoding decodes with protobufjs: negatives, 64-bit numbers, repeated and nested fields", () => {
  assert.equal(varint(-1n).length, 10, "a negative varint is ten bytes, as protobuf writes int32 -1");
  const list = root.lookupType("kvstore.MemberList");
  const member = [{ n: 1, t: 2 as const, v: new TextEncoder().encode("node9") }, {
    n: 3,
    t: 0 as const,
    v: -1n,
  }];
  const bytes = encode([
    { n: 1, t: 0, v: 1_000_000_000n },
    { n: 3, t: 2, v: member },
    { n: 3, t: 2, v: member },
  ]);
  const m = list.toObject(list.decode(bytes), { longs: Number, enums: String }) as {
    epoch: number;
    members: { node_id: string; port: number }[];
  };
  assert.equal(m.epoch, 1_000_000_000);
  assert.deepEqual(m.members.map((x) => [x.node_id, x.port]), [["node9", -1], ["node9", -1]]);
});

Deno.test("fuzzed bodies stay within the budget's bounds: most are small, none far above the message limit", () => {
  const f = new MessageFuzzer(new Rng(7), ctx);
  const sizes = Array.from({ length: 200 }, () => f.body(root.lookupType("kvstore.MultiPutRequest")).length);
  assert.ok(sizes.filter((s) => s <= 8192).length > 130, `most bodies are small: ${sizes.join(",")}`);
  assert.ok(Math.max(...sizes) < ctx.maxMessageBytes * 1.2, `largest ${Math.max(...sizes)}`);
});

Deno.test("the peer pass's filter: valid joins and removals of real members are legitimate, malformed ones are not", () => {
  const members = ctx.nodeIds;
  const cases: [string, Record<string, unknown>, boolean][] = [
    ["JoinCluster", { node_id: "node9", host: "127.0.0.1", port: 1 }, true],
    ["JoinCluster", { node_id: "node 9", host: "127.0.0.1", port: 1 }, false],
    ["JoinCluster", { node_id: "node9", host: "", port: 1 }, false],
    ["JoinCluster", { node_id: "node9", host: "h", port: 70000 }, false],
    ["ChangeMembership", { kind: "CHANGE_REMOVE", node_id: "node2" }, true],
    ["ChangeMembership", { kind: 99, node_id: "node2" }, true],
    ["ChangeMembership", { kind: "CHANGE_REMOVE", node_id: "node9" }, false],
    ["ChangeMembership", { kind: "CHANGE_JOIN", node_id: "node9", host: "h", port: 5 }, true],
    ["ChangeMembership", { kind: "CHANGE_JOIN", node_id: "", host: "h", port: 5 }, false],
    ["ChangeMembership", { kind: "CHANGE_STREAMED", node_id: "node2", epoch: 1 }, false],
    ["PushMembership", { epoch: 1e9, members: [] }, false],
  ];
  for (const [method, decoded, expected] of cases) {
    assert.equal(
      legitimateChange(method, decoded, members),
      expected,
      `${method} ${JSON.stringify(decoded)}`,
    );
  }
});

Deno.test("a finding describes its message: counts, distinct items, the most repeated one, or that it does not parse", () => {
  const type = root.lookupType("kvstore.MultiGetRequest");
  const key = (k: string) => ({ n: 1, t: 2 as const, v: new TextEncoder().encode(k) });
  const body = encode([key("fixture/big"), key("a"), key("fixture/big"), key("fixture/big")]);
  assert.match(describeBody(type, body), /keys: \[4 items, 2 distinct, "fixture\/big" x3\]/);
  assert.match(
    describeBody(type, Uint8Array.from([0xff, 0xff, 0xff])),
    /3 bytes that do not parse as MultiGetRequest/,
  );
});
