/**
 * Tests of `lib/listing.ts` through a real node: GetSnapshot pages follow
 * their cursors, count only live records and carry their values; a foreign
 * cursor or a negative limit is INVALID_ARGUMENT. (ListKeys' paging is
 * tested with the client in single_node_test.ts.)
 */
import assert from "node:assert/strict";
import { clusterTest, kvError, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { Code } from "../lib/errors.ts";
import { MemoryStorage } from "../lib/storage/memory.ts";
import type { Storage } from "../lib/storage/mod.ts";
import type { KvNode } from "../lib/node.ts";
import { loadConfig } from "../lib/config.ts";
import { listKeys, SCAN_CHUNK_RECORDS, SCAN_PAGES_PER_PAGE, YIELD_EVERY_RECORDS } from "../lib/listing.ts";
import { ClientScans } from "../lib/security/client_scans.ts";

interface SnapshotPage {
  data: { key: string; value: Uint8Array }[];
  total_keys: number;
  provider_node_id: string;
  next_cursor: string;
  message: string;
}

clusterTest(
  "GetSnapshot pages hold every live record once, with its value, and skip deleted keys",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
    try {
      const client = await cluster.client();
      const keys = Array.from({ length: 7 }, (_, i) => `snap-${i}`);
      assert.ok((await client.multiPut(keys.map((key) => ({ key, value: `v:${key}` })))).every((r) => r.ok));
      assert.ok((await client.delete("snap-3")).ok);
      const stub = new NodeStub(cluster, "node1");
      const seen = new Map<string, string>();
      let cursor = "";
      let pages = 0;
      do {
        const page = await stub.call<SnapshotPage>("GetSnapshot", {
          requesting_node_id: "node1",
          limit: 2,
          cursor,
        });
        assert.ok(page.data.length <= 2, `a page holds at most the limit, got ${page.data.length}`);
        assert.equal(page.total_keys, 6, "the total counts live keys only");
        assert.equal(page.provider_node_id, "node1");
        for (const r of page.data) {
          assert.ok(!seen.has(r.key), `${r.key} came twice`);
          seen.set(r.key, text.decode(r.value));
        }
        if (page.next_cursor !== "") assert.match(page.message, /call again with cursor/);
        cursor = page.next_cursor;
        pages++;
      } while (cursor !== "" && pages < 20);
      assert.equal(cursor, "", "the pages ended");
      assert.ok(pages >= 3, `6 records in pages of 2 take at least 3 pages, took ${pages}`);
      const live = keys.filter((k) => k !== "snap-3");
      assert.deepEqual([...seen.keys()].sort(), live);
      for (const k of live) assert.equal(seen.get(k), `v:${k}`);
      const bad = await kvError(() => stub.call("GetSnapshot", { requesting_node_id: "node1", cursor: "x" }));
      assert.equal(bad.code, Code.INVALID_ARGUMENT, bad.message);
      const negative = await kvError(() =>
        stub.call("GetSnapshot", { requesting_node_id: "node1", limit: -1 })
      );
      assert.equal(negative.code, Code.INVALID_ARGUMENT, negative.message);
    } finally {
      await cluster.stop();
    }
  },
);

Deno.test("a ListKeys page over 20 000 tombstones reads small chunks, yields every YIELD_EVERY_RECORDS and stops early", async () => {
  const storage = new MemoryStorage();
  const n = 20_000;
  await storage.apply(Array.from({ length: n }, (_, i) => ({
    key: `gone${i}`,
    value: new Uint8Array(0),
    timestamp: 1,
    versionNode: "n1",
    tombstone: true,
  })));
  await storage.apply([{
    key: "alive",
    value: new Uint8Array(8),
    timestamp: 1,
    versionNode: "n1",
    tombstone: false,
  }]);
  const asked: number[] = [];
  let turns = 0;
  let turnsSeen: number[] = [];
  const timer = setInterval(() => turns++, 0);
  const spy = {
    scanVersions: (
      c: string,
      l: number,
    ) => (asked.push(l), turnsSeen.push(turns), storage.scanVersions(c, l)),
    scan: () => Promise.reject(new Error("ListKeys must not copy values")),
    countLive: () => storage.countLive(),
  } as unknown as Storage;
  const clientScans = new ClientScans({ maxPerConnection: 16, idleMs: 60_000 });
  const node = { id: "n1", storage: spy, config: loadConfig(), clientScans } as unknown as KvNode;
  try {
    let cursor = "";
    let keys: string[] = [];
    let pages = 0;
    do {
      turnsSeen = [];
      const page = await listKeys(node, { cursor, limit: 1000, connection: "ipv4:127.0.0.1:1" });
      keys = keys.concat(page.keys);
      cursor = page.nextCursor;
      pages++;
      const scanned = asked.splice(0).reduce((a, b) => a + b, 0);
      // Each page scans at most SCAN_PAGES_PER_PAGE pages' worth, in chunks, with a turn of the loop between.
      assert.ok(
        scanned <= SCAN_PAGES_PER_PAGE * 1000 + SCAN_CHUNK_RECORDS,
        `page ${pages} scanned ${scanned}`,
      );
      const yields = new Set(turnsSeen).size - 1;
      assert.ok(
        yields >= Math.floor(scanned / YIELD_EVERY_RECORDS) - 1,
        `page ${pages}: ${yields} yields for ${scanned}`,
      );
    } while (cursor !== "" && pages < 100);
    assert.deepEqual(keys, ["alive"]);
    console.log(
      `${n} tombstones listed in ${pages} pages of at most ${SCAN_PAGES_PER_PAGE * 1000} records scanned`,
    );
  } finally {
    clearInterval(timer);
  }
});
