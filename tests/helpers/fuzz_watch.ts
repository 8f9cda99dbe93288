/**
 * What the RPC fuzz test asserts about a cluster between its batches: every
 * node still runs and serves a put and a get through itself, the member list
 * is the one it started with, the data written before the fuzz reads back
 * intact, and no node's resident memory grew past a bound. Over a whole
 * pass the bound applies to growth beyond the bytes the node stores (an
 * authenticated peer may legitimately write data; that is not a leak).
 *
 * A memory guard also polls every node's RSS and kills one that passes a
 * hard ceiling, so a node that would eat the machine (the machine is shared)
 * ends as a finding instead. Checks return findings rather than throw, so a
 * pass reports everything it saw before it fails.
 */
import { KvClient } from "../../lib/grpc/kv_client.ts";
import { errorMessage } from "../../lib/errors.ts";
import { memoryOf, resetPeakOf } from "../../bench/_procs.ts";
import { sleep, type TestCluster, text } from "./cluster.ts";
import { scrapeAt, total } from "./metrics.ts";

/** The data written before the fuzz: small values, and one large value under `bigKey`. */
export interface Fixture {
  values: Map<string, Uint8Array>;
  bigKey: string;
}

/** Writes the fixture through the cluster's client; fails if a write is not acknowledged. */
export async function writeFixture(cluster: TestCluster, count: number, bigBytes: number): Promise<Fixture> {
  const client = await cluster.client();
  const values = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) values.set(`fixture/${i}`, text.encode(`value ${i} ✓`));
  const bigKey = "fixture/big";
  values.set(bigKey, new Uint8Array(bigBytes).map((_, i) => (i * 31) & 0xff));
  for (const [k, v] of values) {
    const r = await client.put(k, v);
    if (!r.ok) throw new Error(`fixture put ${k} failed: ${r.message}`);
  }
  return { values, bigKey };
}

/** The parts of a member list the fuzz must not change. */
function listSignature(
  m: { epoch: number; members: { id: string; address: string; memberState: string }[] },
) {
  const members = m.members.map((x) => `${x.id}@${x.address}(${x.memberState})`).sort().join(",");
  return `epoch ${m.epoch}, ${m.members.length} members: ${members}`;
}

/** Baselines taken at the start of a pass, and the checks against them. */
export class ClusterWatch {
  readonly #probes = new Map<string, KvClient>();
  #routed?: KvClient;
  #lists = new Map<string, string>();
  #baseRss = new Map<string, number>();
  #baseStored = new Map<string, number>();
  #batchRss = new Map<string, number>();
  #guard?: ReturnType<typeof setInterval>;
  /** Nodes the memory guard killed, with the RSS it saw. */
  readonly guardKills: string[] = [];

  constructor(readonly cluster: TestCluster, readonly fixture: Fixture, readonly rssBound: number) {}

  /** Takes the baselines (member lists, RSS) and starts the memory guard at `ceiling` bytes. */
  async start(ceiling: number): Promise<void> {
    for (const n of this.cluster.nodes) {
      this.#probes.set(n.id, await this.cluster.client({ via: n.id, route: false, timeoutMs: 5000 }));
      this.#lists.set(n.id, listSignature(await this.#probes.get(n.id)!.membership(n.address)));
      this.#baseRss.set(n.id, memoryOf(this.cluster.pid(n.id))?.rss ?? 0);
      this.#baseStored.set(n.id, await storedBytes(n.adminPort));
    }
    this.#routed = await this.cluster.client({ timeoutMs: 5000 });
    this.#guard = setInterval(() => this.#police(ceiling), 100);
  }

  stop(): void {
    clearInterval(this.#guard);
  }

  /** How node `id`'s member list differs from the one it started with; undefined when it does not (or does not answer). */
  async listChange(id: string): Promise<string | undefined> {
    const node = this.cluster.node(id);
    const now = await this.#probes.get(id)!.membership(node.address).then(listSignature, () => undefined);
    const was = this.#lists.get(id)!;
    return now === undefined || now === was ? undefined : `changed from ${clip(was)} to ${clip(now)}`;
  }

  /** Marks the start of a batch: each node's peak RSS is reset to what it holds now. */
  startBatch(): void {
    for (const n of this.cluster.nodes) {
      if (!this.cluster.isRunning(n.id)) continue;
      const pid = this.cluster.pid(n.id);
      resetPeakOf(pid);
      this.#batchRss.set(n.id, memoryOf(pid)?.rss ?? 0);
    }
  }

  /** The largest peak RSS growth of any node since `startBatch`, in bytes. */
  batchGrowth(): { bytes: number; node: string } {
    let worst = { bytes: 0, node: "" };
    for (const n of this.cluster.nodes) {
      if (!this.cluster.isRunning(n.id)) continue;
      const m = memoryOf(this.cluster.pid(n.id));
      const grown = (m?.hwm ?? 0) - (this.#batchRss.get(n.id) ?? 0);
      if (grown > worst.bytes) worst = { bytes: grown, node: n.id };
    }
    return worst;
  }

  /**
   * RSS growth of each node since the pass began, less what it stores beyond
   * what it stored then, as findings when over the bound. Memory the runtime
   * has not collected or trimmed yet is not a leak: a node over the bound is
   * sampled again for up to `settleMs`, and only one that stays over it is a
   * finding.
   */
  async passGrowth(settleMs: number): Promise<string[]> {
    const found: string[] = [];
    for (const n of this.cluster.nodes) {
      const started = Date.now();
      let excess = await this.#excess(n.id, n.adminPort);
      while (excess && excess.over > this.rssBound && Date.now() - started < settleMs) {
        await sleep(500);
        excess = await this.#excess(n.id, n.adminPort);
      }
      if (!excess) continue;
      const { grown, stored, over } = excess;
      const ms = Date.now() - started;
      console.log(`${n.id}: RSS +${mb(grown)} since the pass began, data +${mb(stored)} (after ${ms} ms)`);
      if (over > this.rssBound) {
        found.push(`${n.id} holds ${mb(grown)} more RSS than at the start of the pass`);
      }
    }
    return found;
  }

  async #excess(
    id: string,
    adminPort: number,
  ): Promise<{ grown: number; stored: number; over: number } | undefined> {
    if (!this.cluster.isRunning(id)) return undefined;
    const grown = (memoryOf(this.cluster.pid(id))?.rss ?? 0) - (this.#baseRss.get(id) ?? 0);
    const stored = Math.max(0, (await storedBytes(adminPort)) - (this.#baseStored.get(id) ?? 0));
    return { grown, stored, over: grown - stored };
  }

  /**
   * Every node runs and serves, the member lists and the fixture are
   * unchanged: the findings, if any, once the cluster has had `settleMs` to
   * recover (a node whose event loop was busy may be suspected by its peers
   * for a moment; one that stays unable to serve is a finding). Resolves with
   * the findings and how long the cluster took to pass.
   */
  async settled(tag: string, settleMs: number): Promise<{ findings: string[]; ms: number }> {
    const started = Date.now();
    let round = 0;
    while (true) {
      const out = await this.check(`${tag}-${round++}`);
      const down = this.cluster.nodes.some((n) => !this.cluster.isRunning(n.id));
      if (out.length === 0 || down || Date.now() - started > settleMs) {
        return { findings: out, ms: Date.now() - started };
      }
      await sleep(250);
    }
  }

  /** One round of {@link settled}'s checks. */
  async check(tag: string): Promise<string[]> {
    const out: string[] = [];
    for (const n of this.cluster.nodes) {
      if (!this.cluster.isRunning(n.id)) {
        out.push(`${n.id} is not running`);
        continue;
      }
      const probe = this.#probes.get(n.id)!;
      out.push(
        ...await findings(`${n.id} put/get through itself`, async () => {
          const key = `canary/${n.id}/${tag}`;
          const w = await probe.put(key, "alive");
          if (!w.ok) return [`put answered ${w.message}`];
          const r = await probe.get(key);
          // One replica written, one read: a get may miss a put just made (settled() asks again).
          return r.found && text.decode(r.value) === "alive"
            ? []
            : [`get answered found=${r.found} ${r.message}`];
        }),
      );
      out.push(
        ...await findings(`${n.id} member list`, async () => {
          const now = listSignature(await probe.membership(n.address));
          return now === this.#lists.get(n.id)
            ? []
            : [`changed from ${clip(this.#lists.get(n.id)!)} to ${clip(now)}`];
        }),
      );
    }
    out.push(...await findings("data written before the fuzz", () => this.#fixtureIntact()));
    return out;
  }

  async #fixtureIntact(): Promise<string[]> {
    const keys = [...this.fixture.values.keys()].filter((k) => k !== this.fixture.bigKey);
    const read = await this.#routed!.multiGet(keys);
    const bad = read.filter((r, i) => !r.found || !sameBytes(r.value, this.fixture.values.get(keys[i])!));
    const big = await this.#routed!.get(this.fixture.bigKey);
    if (!big.found || !sameBytes(big.value, this.fixture.values.get(this.fixture.bigKey)!)) {
      bad.push(big);
    }
    const what = bad.slice(0, 3).map((r) =>
      `${r.key} (found=${r.found}${r.message ? `: ${r.message}` : ""})`
    );
    return bad.length === 0 ? [] : [`${bad.length} keys differ, e.g. ${what.join(", ")}`];
  }

  /** Kills a node whose RSS passed `ceiling` (SIGKILL, by PID): a finding, not a machine out of memory. */
  #police(ceiling: number): void {
    for (const n of this.cluster.nodes) {
      if (!this.cluster.isRunning(n.id)) continue;
      const rss = memoryOf(this.cluster.pid(n.id))?.rss ?? 0;
      if (rss <= ceiling) continue;
      this.guardKills.push(`${n.id} reached ${mb(rss)} RSS and was killed by the fuzz's memory guard`);
      void this.cluster.kill(n.id).catch(() => {});
    }
  }
}

/** Runs a check; an error thrown (a timeout, UNAVAILABLE) is a finding too. */
async function findings(what: string, fn: () => Promise<string[]>): Promise<string[]> {
  try {
    return (await fn()).map((f) => `${what}: ${f}`);
  } catch (err) {
    return [`${what}: ${errorMessage(err)}`];
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A forged list may hold thousands of members: the start of each tells them apart. */
function clip(text: string): string {
  return text.length > 240 ? `${text.slice(0, 240)}...` : text;
}

/** Bytes as MB, for messages and the table. */
export function mb(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

/** The bytes of records a node holds (memory engine), from its metrics. */
async function storedBytes(adminPort: number): Promise<number> {
  return total(await scrapeAt(adminPort), "kvstore_stored_bytes");
}
