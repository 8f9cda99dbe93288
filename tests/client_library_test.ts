/**
 * The client library as a program uses it: imported by the package's name
 * (`@kvstore/kvstore`, deno.json's `exports`), against real nodes on free
 * ports. Values and versions, expiry, batches, the cluster-wide key
 * listing (each key once, by pages or by iteration), the one error class,
 * the client token, and conditional writes (ifAbsent, ifVersion, with a
 * ttl) and increment through per-key consensus.
 */
import assert from "node:assert/strict";
import { connect, type KvStore, KvStoreError } from "@kvstore/kvstore";
import { clusterTest, endCluster, sleep, TestCluster } from "./helpers/cluster.ts";
import { sharedExpiry, startConditionalCluster } from "./helpers/lwt.ts";
import { freePort } from "./helpers/ports.ts";

async function storeError(fn: () => PromiseLike<unknown>): Promise<KvStoreError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof KvStoreError, `expected a KvStoreError, got ${err}`);
    return err;
  }
  throw new Error("expected the call to throw");
}

async function allKeys(
  kv: KvStore,
  prefix: string,
  limit: number,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor = "";
  let pages = 0;
  do {
    const page = await kv.list({ prefix, limit, cursor });
    assert.ok(page.keys.length <= limit, `a page of ${page.keys.length} keys over the limit ${limit}`);
    keys.push(...page.keys);
    cursor = page.cursor;
    pages++;
  } while (cursor !== "");
  return { keys, pages };
}

clusterTest("library: values, versions, expiry, batches and errors against three nodes", async () => {
  const cluster = await TestCluster.start({ nodes: 3 });
  const kv = await connect({ nodes: [cluster.nodes[0].address] });
  try {
    assert.equal(await kv.get("absent"), null);
    assert.equal(await kv.getText("absent"), null);
    const before = Date.now() * 1000;
    const w = await kv.put("greeting", "hello");
    assert.equal(w.applied, true);
    assert.ok(w.version!.timestamp >= before, `version ${w.version!.timestamp} before the write ${before}`);
    assert.ok(cluster.nodes.some((n) => n.id === w.version!.node), `version node ${w.version!.node}`);
    const e = await kv.get("greeting");
    assert.deepEqual(e?.value, new TextEncoder().encode("hello"));
    assert.equal(e?.version.timestamp, w.version!.timestamp);
    assert.equal(e?.expiresAt, undefined);
    assert.equal(await kv.getText("greeting"), "hello");

    await kv.put("bytes", new Uint8Array([0, 255, 7]));
    assert.deepEqual((await kv.get("bytes"))?.value, new Uint8Array([0, 255, 7]));

    const now = Date.now();
    await kv.put("short", "x", { ttlMs: 60_000 });
    const expiresAt = (await kv.get("short"))?.expiresAt;
    assert.ok(expiresAt instanceof Date, "a put with ttlMs reads back with expiresAt");
    const left = expiresAt.getTime() - now;
    assert.ok(left > 50_000 && left <= 61_000, `expiresAt ${left} ms ahead`);

    assert.deepEqual(await kv.delete("greeting").then((o) => o.applied), true);
    assert.equal(await kv.get("greeting"), null);

    const keys = Array.from({ length: 20 }, (_, i) => `batch:${i}`);
    const written = await kv.putMany(
      keys.map((key, i) => ({ key, value: `v${i}`, ttlMs: i === 0 ? 60_000 : undefined })),
    );
    assert.deepEqual(written.map((o) => o.applied), keys.map(() => true));
    const read = await kv.getMany([...keys, "batch:none"]);
    assert.deepEqual(read.map((r) => r && new TextDecoder().decode(r.value)), [
      ...keys.map((_, i) => `v${i}`),
      null,
    ]);
    assert.ok(read[0]?.expiresAt instanceof Date);
    assert.equal(read[1]?.expiresAt, undefined);
    await kv.deleteMany(keys.slice(0, 10));
    assert.deepEqual((await kv.getMany(keys)).map((r) => r !== null), keys.map((_, i) => i >= 10));

    const empty = await storeError(() => kv.put("", "v"));
    assert.equal(empty.code, 3);
    assert.equal(empty.codeName, "INVALID_ARGUMENT");
    assert.match(empty.message, /^INVALID_ARGUMENT: .*key must not be empty/);
    assert.equal((await storeError(() => kv.get(""))).codeName, "INVALID_ARGUMENT");
    assert.equal((await storeError(() => kv.list({ cursor: "nonsense" }))).codeName, "INVALID_ARGUMENT");
    const both = await storeError(() => kv.put("k", "v", { ifAbsent: true, ifVersion: w.version }));
    assert.match(both.message, /ifAbsent or ifVersion, not both/);

    const down = await storeError(() => connect({ nodes: [`127.0.0.1:${freePort()}`], timeoutMs: 2000 }));
    assert.equal(down.codeName, "UNAVAILABLE");
    assert.equal(down.code, 14);
  } finally {
    kv.close();
    await endCluster(cluster);
  }
});

clusterTest(
  "library: list covers the cluster's keys once each, by pages and by iteration, with a prefix",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2 });
    const kv = await connect({ nodes: [cluster.nodes[2].address] });
    try {
      const wanted = Array.from({ length: 60 }, (_, i) => `user:${i}`).sort();
      await kv.putMany([...wanted, "other:1", "other:2"].map((key) => ({ key, value: "v" })));
      const paged = await allKeys(kv, "user:", 7);
      assert.deepEqual([...paged.keys].sort(), wanted, "every key once, none twice");
      assert.ok(paged.pages >= 9, `60 keys in pages of 7 took ${paged.pages} pages`);
      const iterated: string[] = [];
      for await (const key of kv.list({ prefix: "user:", limit: 5 })) iterated.push(key);
      assert.deepEqual(iterated.sort(), wanted);
      const everything: string[] = [];
      for await (const key of kv.list()) everything.push(key);
      assert.deepEqual(everything.sort(), [...wanted, "other:1", "other:2"].sort());
      console.log(`listed 60 keys (rf 2, 3 nodes) in ${paged.pages} pages of at most 7`);
    } finally {
      kv.close();
      await endCluster(cluster);
    }
  },
);

clusterTest("library: the token option is sent; without it calls are UNAUTHENTICATED", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-libtoken-" });
  const token = "library-token-0123456789abcdef";
  await Deno.writeTextFile(`${dir}/token`, `${token}\n`);
  const cluster = await TestCluster.start({
    nodes: 2,
    extra: { security: { client_token_file: `${dir}/token` } },
  });
  const anonymous = await connect({ nodes: [cluster.nodes[0].address] });
  const member = await connect({ nodes: [cluster.nodes[0].address], token });
  try {
    assert.equal((await storeError(() => anonymous.put("k", "v"))).codeName, "UNAUTHENTICATED");
    assert.equal((await member.put("k", "v")).applied, true);
    assert.equal(await member.getText("k"), "v");
  } finally {
    anonymous.close();
    member.close();
    await endCluster(cluster);
    await Deno.remove(dir, { recursive: true });
  }
});

clusterTest(
  "library: ifAbsent and ifVersion (applied or not, with the version), delete ifVersion, increment",
  async () => {
    const cluster = await startConditionalCluster({ nodes: 3, replicationFactor: 2 });
    const kv = await connect({ nodes: [cluster.nodes[1].address] });
    try {
      const first = await kv.put("user:ann", "first", { ifAbsent: true });
      assert.equal(first.applied, true);
      assert.deepEqual((await kv.get("user:ann"))?.version, first.version, "put answered another version");
      const taken = await kv.put("user:ann", "second", { ifAbsent: true });
      assert.deepEqual(taken, { applied: false, version: first.version }, "not applied names the holder");
      const stale = { timestamp: first.version!.timestamp - 1, node: first.version!.node };
      const refused = await kv.put("user:ann", "third", { ifVersion: stale });
      assert.deepEqual(refused, { applied: false, version: first.version });
      assert.equal(await kv.getText("user:ann"), "first", "a failed condition wrote");
      const replaced = await kv.put("user:ann", "third", { ifVersion: first.version });
      assert.ok(replaced.applied && replaced.version!.timestamp > first.version!.timestamp);
      assert.equal(await kv.getText("user:ann"), "third");
      const lateDelete = await kv.delete("user:ann", { ifVersion: first.version });
      assert.deepEqual(lateDelete, { applied: false, version: replaced.version });
      assert.equal((await kv.delete("user:ann", { ifVersion: replaced.version })).applied, true);
      assert.equal(await kv.get("user:ann"), null);
      assert.equal(await kv.increment("hits"), 1n);
      assert.equal(await kv.increment("hits", 41), 42n);
      assert.equal(await kv.increment("hits", -2n), 40n);
      assert.equal(
        (await storeError(() => kv.put("x", "v", { ifAbsent: true, ifVersion: stale }))).codeName,
        "INVALID_ARGUMENT",
      );
    } finally {
      kv.close();
      await endCluster(cluster);
    }
  },
);

clusterTest(
  "library: ifAbsent with ttlMs expires on every replica at one instant; increment keeps the TTL",
  async () => {
    const cluster = await startConditionalCluster({ nodes: 3, replicationFactor: 2 });
    const kv = await connect({ nodes: [cluster.nodes[0].address] });
    const probe = await cluster.client();
    try {
      const keys = Array.from({ length: 6 }, (_, i) => `lease:${i}`);
      // Long enough that the steps below finish before it, even on a loaded machine (1.5 s was not).
      for (const key of keys) {
        assert.equal((await kv.put(key, "0", { ifAbsent: true, ttlMs: 5000 })).applied, true);
      }
      for (const key of keys) await sharedExpiry(cluster, probe, key, 2);
      const before = (await kv.get(keys[0]))!.expiresAt!.getTime();
      assert.equal(await kv.increment(keys[0]), 1n);
      assert.equal((await kv.get(keys[0]))?.expiresAt?.getTime(), before, "increment dropped the TTL");
      assert.equal((await kv.put(keys[1], "x", { ifAbsent: true })).applied, false);
      await sleep(before - Date.now() + 300);
      assert.equal(await kv.get(keys[1]), null);
      const again = await kv.put(keys[1], "x", { ifAbsent: true });
      assert.equal(again.applied, true, "ifAbsent on an expired key was refused");
      assert.equal((await kv.get(keys[1]))?.expiresAt, undefined);
      assert.equal(await kv.increment(keys[0]), 1n, "an expired counter did not start over");
    } finally {
      probe.close();
      kv.close();
      await endCluster(cluster);
    }
  },
);
