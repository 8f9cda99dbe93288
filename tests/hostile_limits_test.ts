/**
 * One hostile caller against a real 3-node cluster whose messages are capped
 * at 4 MiB: batches that repeat a key (MultiGet, MultiPut, MultiDelete,
 * ForwardMultiGet, ForwardStream frames), a MultiGet of more distinct large
 * values than one answer carries, ListKeys over many large values and 20 000
 * tombstones, GetSnapshot pages, and more calls on one connection than
 * `limits.max_calls_per_connection`. After each: the caller got the status
 * it should, every node runs and serves, the data is intact, and no node's
 * peak RSS grew by more than 4 x max_message_bytes + 64 MB. Each step prints
 * the RSS growth and the longest event-loop block the nodes logged (their
 * stall threshold is set to 20 ms); times are printed, never asserted.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, ringOf, TestCluster, text } from "./helpers/cluster.ts";
import { NodeStub } from "./helpers/node_stub.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { channelOptions, statusError, unary } from "../lib/grpc/call.ts";
import { Code } from "../lib/errors.ts";
import type { KvError } from "../lib/errors.ts";

const MiB = 1 << 20;
const MAX_MESSAGE = 4 * MiB;
const RSS_BOUND_MB = 4 * MAX_MESSAGE / MiB + 64;
const CALLS_PER_CONNECTION = 8;
const BIG_KEYS = 60;

/** A node's resident set, and its peak since the last reset, in MiB (Linux /proc). */
function rss(pid: number): { now: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** Resets a process's peak RSS to its current RSS ("5" > clear_refs), where the kernel allows it. */
function resetPeak(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** The longest event-loop block a node logged in `lines`, in ms (0: none over the threshold). */
function longestBlock(lines: string[]): number {
  return Math.max(0, ...lines.map((l) => Number(/event loop was blocked .*ms=(\d+)/.exec(l)?.[1] ?? 0)));
}

/** The status a raw call ended with (OK as code 0). */
async function statusOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: Code.OK, message: "" };
  } catch (err) {
    const e = err instanceof Error && "code" in err ? err as KvError : statusError(err);
    return { code: e.code, message: e.message };
  }
}

class Harness {
  readonly kv: grpc.Client;
  readonly canary = Array.from({ length: 40 }, (_, i) => `canary${i}`);

  constructor(readonly cluster: TestCluster) {
    // Answers up to 64 MiB are accepted here, so every refusal seen is the node's own.
    this.kv = cluster.closeOnStop(
      new (kvstorePackage().KeyValueStore)(
        cluster.nodes[0].address,
        grpc.credentials.createInsecure(),
        channelOptions(64 * MiB),
      ),
    );
  }

  call<Res>(method: string, req: unknown, timeoutMs = 30_000): Promise<Res> {
    return unary<Res>(this.kv, method, req, timeoutMs);
  }

  /**
   * Runs a hostile step and checks the aftermath: every node running and
   * serving, the canary keys intact, each node's RSS growth within bounds.
   */
  async step(name: string, fn: () => Promise<void>): Promise<void> {
    const c = this.cluster;
    const before = new Map(
      c.nodes.map((n) => [n.id, { rss: rss(c.pid(n.id)).now, lines: c.logs(n.id).split("\n").length }]),
    );
    const peakReset = c.nodes.map((n) => resetPeak(c.pid(n.id))).every(Boolean);
    const sampled = new Map(c.nodes.map((n) => [n.id, 0]));
    const sampler = setInterval(() => {
      for (const n of c.nodes) {
        if (c.isRunning(n.id)) sampled.set(n.id, Math.max(sampled.get(n.id)!, rss(c.pid(n.id)).now));
      }
    }, 20);
    let failure: unknown;
    try {
      await fn();
    } catch (err) {
      failure = err;
    } finally {
      clearInterval(sampler);
    }
    // Measured and printed first, so a failing step still shows what the nodes went through.
    const report: string[] = [];
    const growths = new Map<string, number>();
    for (const n of c.nodes) {
      if (!c.isRunning(n.id)) {
        report.push(`${n.id} DIED (sampled peak ${sampled.get(n.id)!.toFixed(0)} MB)`);
        continue;
      }
      const b = before.get(n.id)!;
      const peak = Math.max(sampled.get(n.id)!, peakReset ? rss(c.pid(n.id)).peak : 0);
      growths.set(n.id, peak - b.rss);
      const block = longestBlock(c.logs(n.id).split("\n").slice(b.lines));
      report.push(
        `${n.id} +${(peak - b.rss).toFixed(1)} MB (peak ${peak.toFixed(0)}), longest block ${block} ms`,
      );
    }
    console.log(`${name}: ${report.join("; ")}${peakReset ? "" : " (sampled RSS: peak reset not allowed)"}`);
    if (failure) throw failure;
    for (const n of c.nodes) assert.ok(c.isRunning(n.id), `${name}: ${n.id} still runs`);
    for (const [id, growth] of growths) {
      assert.ok(
        growth <= RSS_BOUND_MB,
        `${name}: ${id}'s RSS grew ${growth.toFixed(1)} MB (bound ${RSS_BOUND_MB})`,
      );
    }
    await this.assertIntact(name);
  }

  async assertIntact(name: string): Promise<void> {
    const client = await this.cluster.client();
    for (const key of this.canary) {
      const r = await client.get(key);
      assert.equal(text.decode(r.value), `v-${key}`, `${name}: ${key} intact`);
    }
    assert.equal((await client.put("after", name)).ok, true, `${name}: the cluster still takes writes`);
  }
}

/** Values of about 1 MiB, one per key, written in MultiPuts that fit a message. */
async function writeBig(h: Harness, keys: string[]): Promise<void> {
  const value = new Uint8Array(MiB - 4096).fill(7);
  for (let i = 0; i < keys.length; i += 2) {
    const items = keys.slice(i, i + 2).map((key) => ({ key, value, timestamp: 0 }));
    const res = await h.call<{ results: { success: boolean; message: string }[] }>("MultiPut", { items });
    for (const r of res.results) assert.ok(r.success, r.message);
  }
}

clusterTest(
  "a hostile caller's batches, big answers, listings and floods of calls are bounded and refused",
  async () => {
    const cluster = await TestCluster.start({
      extra: {
        limits: {
          max_message_bytes: MAX_MESSAGE,
          max_value_bytes: MiB,
          max_calls_per_connection: CALLS_PER_CONNECTION,
        },
        logging: { level: "info", stall_threshold_ms: 20 },
      },
    });
    try {
      await cluster.waitActive();
      const h = new Harness(cluster);
      const client = await cluster.client();
      for (const key of h.canary) await client.put(key, `v-${key}`);
      const big = Array.from({ length: BIG_KEYS }, (_, i) => `big${i}`);
      await writeBig(h, big);

      await h.step("MultiGet of one 1 MiB key x1000", async () => {
        const s = await statusOf(h.call("MultiGet", { keys: Array(1000).fill("big0") }));
        console.log(`  -> ${grpc.status[s.code]}: ${s.message}`);
        assert.equal(s.code, Code.INVALID_ARGUMENT, s.message);
        assert.match(s.message, /key "big0" appears twice/);
      });

      await h.step("MultiPut and MultiDelete repeating a key", async () => {
        const value = text.encode("x");
        const put = await statusOf(h.call("MultiPut", {
          items: [{ key: "d1", value, timestamp: 0 }, { key: "d2", value, timestamp: 0 }, {
            key: "d1",
            value,
            timestamp: 0,
          }],
        }));
        assert.equal(put.code, Code.INVALID_ARGUMENT, put.message);
        assert.match(put.message, /key "d1" appears twice/);
        const del = await statusOf(h.call("MultiDelete", { keys: ["canary1", "canary1"] }));
        assert.equal(del.code, Code.INVALID_ARGUMENT, del.message);
        assert.match(del.message, /key "canary1" appears twice/);
      });

      await h.step("ForwardMultiGet and ForwardStream repeating a key (as a peer)", async () => {
        const stub = new NodeStub(cluster, "node2", { as: "node1" });
        const fwd = await statusOf(stub.call("ForwardMultiGet", { keys: Array(1000).fill("big1") }, 30_000));
        console.log(`  -> ${grpc.status[fwd.code]}: ${fwd.message}`);
        assert.equal(fwd.code, Code.INVALID_ARGUMENT, fwd.message);
        assert.match(fwd.message, /key "big1" appears twice/);
        const replies = await stub.exchange<{ error_code: number; error_message: string }>("ForwardStream", [
          { id: 1, get: { keys: Array(1000).fill("big2"), origin_node_id: "node1" } },
        ], 30_000);
        assert.equal(replies[0].error_code, Code.INVALID_ARGUMENT, replies[0].error_message);
        assert.match(replies[0].error_message, /key "big2" appears twice/);
      });

      await h.step(`MultiGet of ${BIG_KEYS} distinct 1 MiB keys`, async () => {
        const s = await statusOf(h.call("MultiGet", { keys: big }));
        console.log(`  -> ${grpc.status[s.code]}: ${s.message}`);
        assert.equal(s.code, Code.RESOURCE_EXHAUSTED, s.message);
        assert.match(s.message, /answer would be at least \d+ bytes; the limit is 4194304/);
        // Three of them fit, and come back whole.
        const ok = await h.call<{ results: { value: Uint8Array }[] }>("MultiGet", { keys: big.slice(0, 3) });
        assert.deepEqual(ok.results.map((r) => r.value.length), [MiB - 4096, MiB - 4096, MiB - 4096]);
      });

      await h.step("four concurrent ListKeys and GetSnapshot pages over the 1 MiB values", async () => {
        const pages = await Promise.all(
          Array.from({ length: 4 }, () => h.call<{ keys: string[]; next_cursor: string }>("ListKeys", {})),
        );
        for (const p of pages) assert.ok(p.keys.length > 0 && p.keys.length <= 10_000);
        const stub = new NodeStub(cluster, "node1", { as: "node2" });
        let cursor = "";
        let records = 0;
        let pagesRead = 0;
        do {
          const p = await stub.call<{ data: { value: Uint8Array }[]; next_cursor: string }>(
            "GetSnapshot",
            { cursor, limit: 0 },
            30_000,
          );
          const bytes = p.data.reduce((a, r) => a + r.value.length, 0);
          assert.ok(bytes <= MAX_MESSAGE / 2, `a snapshot page of ${bytes} bytes`);
          records += p.data.length;
          cursor = p.next_cursor;
          pagesRead++;
        } while (cursor !== "" && pagesRead < 200);
        console.log(
          `  -> ListKeys pages of ${
            pages[0].keys.length
          } keys; GetSnapshot: ${records} records in ${pagesRead} pages`,
        );
        assert.equal(cursor, "", "the snapshot ended");
      });

      const gone = Array.from({ length: 20_000 }, (_, i) => `gone${i}`);
      for (let i = 0; i < gone.length; i += 1000) {
        const keys = gone.slice(i, i + 1000);
        await h.call("MultiPut", {
          items: keys.map((key) => ({ key, value: text.encode("x"), timestamp: 0 })),
        });
        await h.call("MultiDelete", { keys });
      }
      await h.step("ListKeys over 20 000 tombstones", async () => {
        let cursor = "";
        const keys = new Set<string>();
        let pages = 0;
        do {
          const p = await h.call<{ keys: string[]; next_cursor: string }>("ListKeys", { cursor, limit: 0 });
          for (const k of p.keys) keys.add(k);
          cursor = p.next_cursor;
          pages++;
        } while (cursor !== "" && pages < 500);
        console.log(`  -> ${keys.size} live keys of node1 in ${pages} pages`);
        assert.equal(cursor, "", "the listing ended");
        assert.ok(![...keys].some((k) => k.startsWith("gone")), "no tombstone listed");
      });

      await h.step("concurrent clients reading one key through a forwarding node", async () => {
        // Their forwards are coalesced into batches, which must never repeat the key. (Clients in
        // one process share one connection: six calls stay within its cap.)
        const key = h.canary.find((k) => ringOf(cluster).owner(k) !== "node1")!;
        const clients = await Promise.all(
          Array.from({ length: 2 }, () => cluster.client({ via: "node1", route: false })),
        );
        const values = await Promise.all(clients.flatMap((c) => [c.get(key), c.get(key), c.get(key)]));
        for (const v of values) assert.equal(text.decode(v.value), `v-${key}`);
      });

      await h.step(`${8 * CALLS_PER_CONNECTION} concurrent calls on one connection`, async () => {
        // Keys node1 forwards: each call waits on a peer, so they are in flight together.
        const remote = h.canary.filter((k) => ringOf(cluster).owner(k) !== "node1").slice(0, 4);
        const results = await Promise.all(
          Array.from(
            { length: 8 * CALLS_PER_CONNECTION },
            () => statusOf(h.call("MultiGet", { keys: remote })),
          ),
        );
        const refused = results.filter((r) => r.code === Code.RESOURCE_EXHAUSTED);
        const ok = results.filter((r) => r.code === Code.OK);
        console.log(`  -> ${ok.length} answered, ${refused.length} refused: ${refused[0]?.message}`);
        assert.equal(
          ok.length + refused.length,
          results.length,
          JSON.stringify(results.filter((r) => r.code !== 0 && r.code !== Code.RESOURCE_EXHAUSTED)),
        );
        assert.ok(refused.length > 0, "calls beyond the connection's cap are refused");
        assert.match(refused[0].message, /limits\.max_calls_per_connection/);
        assert.ok(ok.length >= CALLS_PER_CONNECTION, "calls within the cap are answered");
      });
    } finally {
      await cluster.stop();
    }
  },
  { timeoutMs: 240_000 },
);
