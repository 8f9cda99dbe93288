/**
 * The examples in examples/ that run on this build, run against real nodes
 * on free ports under Deno and (the session store) under Node from the npm
 * package, with what they print checked line by line.
 *
 * Examples that need conditional writes and counters are in
 * examples_lwt_test.ts, the Redis-protocol one in examples_resp_test.ts.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, TestCluster } from "./helpers/cluster.ts";
import { linesOf, nodeProject, runDenoExample, runNodeExample, typeCheckInNode } from "./helpers/examples.ts";

/** What the session store prints, in order. */
const SESSION_STORE_OUTPUT = [
  "created sessions s1 (ada) and s2 (grace)",
  "s1 has an expiry: true",
  "s1 belongs to ada",
  "sessions listed: session:s1, session:s2",
  "after logout s2 is gone",
  "after 1500 ms idle s1 is expired",
];

clusterTest("examples: the session store (TTL) under Deno and under Node from the npm package", async () => {
  const cluster = await TestCluster.start({ nodes: 3 });
  const project = await nodeProject();
  try {
    const address = cluster.nodes[1].address;
    assert.deepEqual(linesOf(await runDenoExample("session_store.ts", address)), SESSION_STORE_OUTPUT);
    assert.deepEqual(
      linesOf(await runNodeExample(project.dir, "session_store.ts", address)),
      SESSION_STORE_OUTPUT,
    );
  } finally {
    await project.remove();
    await endCluster(cluster);
  }
});

/** A Node program using the package's types: right uses must check, wrong ones must not. */
const CONSUMER = `
import { connect, KvStoreError, type Entry, type Version } from "@kvstore/kvstore";
const kv = await connect({ nodes: ["127.0.0.1:1"], token: "t" });
const e: Entry | null = await kv.get("k");
const v: Version | undefined = (await kv.put("k", new Uint8Array([1]), { ttlMs: 5, ifAbsent: true })).version;
const n: bigint = await kv.increment("c", 2n);
for await (const key of kv.list({ prefix: "p" })) key.toUpperCase();
const code: number = new KvStoreError(5, "x").code;
export { code, e, n, v };
`;

clusterTest("npm package: its declarations type-check a Node program, and reject a wrong use", async () => {
  const project = await nodeProject();
  try {
    assert.equal(await typeCheckInNode(project.dir, CONSUMER), "");
    const wrong = await typeCheckInNode(project.dir, CONSUMER.replace("const n: bigint", "const n: string"));
    assert.match(wrong, /consumer\.ts.*error TS2322/);
  } finally {
    await project.remove();
  }
});
