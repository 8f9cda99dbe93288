/**
 * What the membership tests share: a preloaded key set, a mixed workload
 * that runs while nodes join and leave, and the placement check (every key
 * on exactly its replication_factor nodes of a ring, from every node's
 * ListKeys).
 */
import assert from "node:assert/strict";
import type { KvClient } from "../../lib/grpc/kv_client.ts";
import { HashRing } from "../../lib/ring.ts";
import { errorMessage } from "../../lib/errors.ts";
import { type MainRun, runMain, sleep, type TestCluster, text } from "./cluster.ts";
import { NodeStub } from "./node_stub.ts";
import type { JoinResponseMsg } from "../../lib/grpc/messages.ts";

/** Keys preloaded by the membership tests: KV_MEMBERSHIP_KEYS, default 100 000 (the figure; about 50 s for the file). */
export const KEY_COUNT = Number(Deno.env.get("KV_MEMBERSHIP_KEYS") ?? 100_000);

/** The value every preloaded key holds. */
export const preValue = (k: string) => `pre:${k}`;

/** Loads `count` keys with MultiPut; deletes every 100th so tombstones travel too. Resolves with live and deleted keys. */
export async function preload(
  client: KvClient,
  count: number,
): Promise<{ live: string[]; deleted: string[] }> {
  const keys = Array.from({ length: count }, (_, i) => `key:${i}`);
  for (let i = 0; i < keys.length; i += 1000) {
    // A cluster that just started on a loaded machine may refuse a few items: retry those, boundedly.
    let part = keys.slice(i, i + 1000);
    for (let attempt = 1; part.length > 0; attempt++) {
      const res = await client.multiPut(part.map((k) => ({ key: k, value: preValue(k) })));
      const failed = part.filter((_, j) => !res[j].ok);
      assert.ok(failed.length === 0 || attempt < 5, `preload failed: ${res.find((r) => !r.ok)?.message}`);
      part = failed;
      if (failed.length > 0) await sleep(200 * attempt);
    }
  }
  const deleted = keys.filter((_, i) => i % 100 === 7);
  const res = await client.multiDelete(deleted);
  assert.ok(res.every((r) => r.ok), "preload deletes failed");
  const gone = new Set(deleted);
  return { live: keys.filter((k) => !gone.has(k)), deleted };
}

/**
 * Two workers, each writing its own keys (so the last acknowledged value of
 * each is known) and reading preloaded keys, which must always be found
 * with their value. Every call that throws, and every wrong read, counts.
 */
export class Workload {
  readonly failures: string[] = [];
  readonly written = new Map<string, string>();
  ops = 0;
  #stop = false;
  #done: Promise<void>[] = [];

  constructor(private readonly client: KvClient, private readonly live: string[]) {}

  start(): void {
    for (let w = 0; w < 2; w++) this.#done.push(this.#worker(w));
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#done);
  }

  async #worker(w: number): Promise<void> {
    for (let seq = 0; !this.#stop; seq++) {
      const key = `w${w}:${seq % 300}`;
      const value = `v${seq}`;
      try {
        const put = await this.client.put(key, value);
        if (put.ok) this.written.set(key, value);
        else this.failures.push(`put ${key}: ${put.message}`);
        const k = this.live[(seq * 7919 + w) % this.live.length];
        const got = await this.client.get(k);
        if (!got.found || text.decode(got.value) !== preValue(k)) {
          this.failures.push(`get ${k}: ${got.found ? "wrong value" : "not found"} (node ${got.nodeId})`);
        }
        this.ops += 2;
      } catch (err) {
        this.failures.push(`${key}: ${errorMessage(err)}`);
      }
      await sleep(2);
    }
  }
}

/** Every live key each node lists (ListKeys is paged). */
export async function holdings(
  cluster: TestCluster,
  client: KvClient,
  ids: string[],
): Promise<Map<string, string[]>> {
  const held = new Map<string, string[]>();
  for (const id of ids) {
    for (const key of await client.listAllKeys(cluster.node(id).address)) {
      let h = held.get(key);
      if (!h) held.set(key, h = []);
      h.push(id);
    }
  }
  return held;
}

/**
 * Checks that every key sits on exactly its `rf` nodes of the ring of
 * `ids`, and nowhere else; resolves with a description of each mismatch.
 */
export async function misplaced(
  cluster: TestCluster,
  client: KvClient,
  ids: string[],
  keys: Iterable<string>,
  rf: number,
): Promise<string[]> {
  const ring = new HashRing(ids, 150);
  const held = await holdings(cluster, client, ids);
  const wrong: string[] = [];
  const expectedKeys = new Set(keys);
  for (const key of expectedKeys) {
    const want = ring.preferenceList(key, rf).sort().join(",");
    const have = (held.get(key) ?? []).sort().join(",");
    if (want !== have) wrong.push(`${key}: on [${have}], should be on [${want}]`);
  }
  for (const [key, on] of held) {
    if (!expectedKeys.has(key)) wrong.push(`${key}: unexpected key on ${on.join(",")}`);
  }
  return wrong;
}

/** Waits until the node at `via` reports epoch >= `epoch` with no change under way; resolves with its membership. */
export async function waitSettled(
  cluster: TestCluster,
  client: KvClient,
  via: string,
  until: (ids: string[]) => boolean,
  timeoutMs: number,
): Promise<void> {
  await cluster.waitFor(
    async () => {
      const m = await client.membership(cluster.node(via).address).catch(() => undefined);
      if (!m || m.members.some((x) => x.memberState !== "NORMAL")) return false;
      return until(m.members.map((x) => x.id));
    },
    timeoutMs,
    `the membership change to complete (as ${via} sees it)`,
  );
}

/** Reads every key: live ones must hold their value, deleted ones stay deleted; resolves with mismatches. */
export async function unreadable(
  client: KvClient,
  expect: Map<string, string | undefined>,
): Promise<string[]> {
  const keys = [...expect.keys()];
  const bad: string[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const part = keys.slice(i, i + 1000);
    const res = await client.multiGet(part);
    res.forEach((r, j) => {
      const want = expect.get(part[j]);
      const got = r.found ? text.decode(r.value) : undefined;
      if (got !== want) bad.push(`${part[j]}: ${got ?? "not found"}, expected ${want ?? "not found"}`);
    });
  }
  return bad;
}

/** A raw JoinCluster call, as a joining node makes it (with the cluster secret). */
export function joinCall(
  cluster: TestCluster,
  via: string,
  id: string,
  port: number,
): Promise<JoinResponseMsg> {
  return new NodeStub(cluster, via, { as: id }).call<JoinResponseMsg>(
    "JoinCluster",
    { node_id: id, host: "127.0.0.1", port },
    10_000,
  );
}

/** `client remove-node ID` through node `via`, with the cluster secret (the operator's command). */
export function removeNodeRun(cluster: TestCluster, id: string, via: string): Promise<MainRun> {
  return runMain(
    cluster.dir,
    "client",
    "remove-node",
    "--cluster-secret-file",
    `${cluster.dir}/cluster.secret`,
    id,
    "--addr",
    cluster.node(via).address,
  );
}

/** {@link removeNodeRun}, failing the test unless it exits 0. */
export async function removeNode(cluster: TestCluster, id: string, via: string): Promise<void> {
  const run = await removeNodeRun(cluster, id, via);
  assert.equal(run.code, 0, `remove-node ${id} failed:\n${run.stdout}\n${run.stderr}`);
}
