/**
 * The chaos workload: a program run inside the clients' network namespace.
 *
 * It waits until every node sees every node ACTIVE (or held back by its clock) and
 * conditional operations are accepted (the vote floor), and prints
 * `{"event":"ready"}`; then concurrent workers put (each put a value no other
 * put writes), get and delete a small set of keys, while other workers put
 * write-once keys (each put a new key, never rewritten: a lost write cannot
 * hide behind a later one), and conditional workers increment counters, race
 * put-if-absent and compare-and-set by version (conditional_workload.ts),
 * recording every operation (invocation,
 * completion, outcome) until a line `stop` arrives on stdin.
 * Then it reads every replica's own copy of every rewritten key (Get with
 * read_from_replica on each node of the key's preference list, leaving out
 * the nodes of `--down`, left down by the nemesis) until all copies agree or
 * `--converge-ms` passes, reads every write-once key back in MultiGet batches
 * from every node's own copies (present if any node holds it), writes the
 * history as JSON lines to `--history`, and prints one last line with the
 * final state. Operations are drawn from a seeded generator, so `--seed`
 * replays the same choices.
 */
import { parseArgs } from "node:util";
import { KvClient } from "../../lib/grpc/kv_client.ts";
import { HashRing } from "../../lib/ring.ts";
import { Code, KvError } from "../../lib/errors.ts";
import type { KeyState, Op } from "./checker.ts";
import {
  type ConditionalKeys,
  conditionalWorker,
  readConditional,
  waitConditionalReady,
} from "./conditional_workload.ts";

/** What the workload prints on its last line. */
export interface WorkloadResult {
  event: "converged" | "diverged";
  /** Unix ms when the replicas were first seen identical (or when it gave up). */
  at: number;
  ops: number;
  final: Record<string, KeyState>;
  /** Keys whose copies still differed when it gave up. */
  differing: string[];
}

/** A small seeded generator (mulberry32), so a seed replays a run's choices. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const now = () => performance.timeOrigin + performance.now();

/** Write-once keys read back per MultiGet. */
const READ_BATCH = 500;

/** Errors that say the write was certainly not applied. */
const NOT_APPLIED: number[] = [Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.RESOURCE_EXHAUSTED];

async function worker(
  client: KvClient,
  id: number,
  opts: { keys: string[]; seed: number; stop: () => boolean; history: Op[] },
): Promise<void> {
  const rand = seeded(opts.seed * 1000 + id);
  for (let seq = 0; !opts.stop(); seq++) {
    const key = opts.keys[Math.floor(rand() * opts.keys.length)];
    const dice = rand();
    const start = now();
    if (dice < 0.45) {
      const value = `s${opts.seed}-w${id}-${seq}`;
      const op = await outcomeOf(() => client.put(key, value));
      opts.history.push({ kind: "put", key, value, start, end: now(), process: id, ...op });
    } else if (dice < 0.55) {
      const op = await outcomeOf(() => client.delete(key));
      opts.history.push({ kind: "delete", key, start, end: now(), process: id, ...op });
    } else {
      try {
        const r = await client.get(key);
        const found = r.found;
        const value = found ? new TextDecoder().decode(r.value) : undefined;
        opts.history.push({ kind: "get", key, found, value, start, end: now(), process: id, outcome: "ok" });
      } catch (err) {
        opts.history.push({
          kind: "get",
          key,
          start,
          end: now(),
          process: id,
          outcome: "fail",
          error: msg(err),
        });
      }
    }
  }
}

/** Puts write-once keys, each a key no other operation writes, until told to stop. */
async function onceWorker(
  client: KvClient,
  id: number,
  opts: { seed: number; stop: () => boolean; history: Op[] },
): Promise<void> {
  for (let seq = 0; !opts.stop(); seq++) {
    const key = `once-s${opts.seed}-w${id}-${seq}`;
    const value = `s${opts.seed}-o${id}-${seq}`;
    const start = now();
    const op = await outcomeOf(() => client.put(key, value));
    opts.history.push({ kind: "put", key, value, once: true, start, end: now(), process: id, ...op });
  }
}

async function outcomeOf(
  fn: () => Promise<{ ok: boolean; code: number; message: string }>,
): Promise<Pick<Op, "outcome" | "error">> {
  try {
    const r = await fn();
    if (r.ok) return { outcome: "ok" };
    return { outcome: NOT_APPLIED.includes(r.code) ? "fail" : "unknown", error: r.message };
  } catch (err) {
    const code = err instanceof KvError ? err.code : -1;
    return { outcome: NOT_APPLIED.includes(code) ? "fail" : "unknown", error: msg(err) };
  }
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every replica's copy of every key, and the keys whose copies differ. */
async function readReplicas(
  client: KvClient,
  keys: string[],
  rf: number,
  down: string[],
): Promise<{ final: Record<string, KeyState>; differing: string[] }> {
  const m = client.lastMembership!;
  const ring = new HashRing(m.members.map((n) => n.id), m.virtualNodes);
  const addressOf = new Map(m.members.map((n) => [n.id, n.address]));
  const final: Record<string, KeyState> = {};
  const differing: string[] = [];
  await Promise.all(keys.map(async (key) => {
    const copies = await Promise.all(
      ring.preferenceList(key, rf).filter((id) => !down.includes(addressOf.get(id)!)).map((id) =>
        client.get(key, { fromReplica: true, address: addressOf.get(id)! }).catch(() => undefined)
      ),
    );
    const seen = copies.map((
      c,
    ) => (c === undefined ? "?" : c.found ? new TextDecoder().decode(c.value) : "-"));
    if (seen.some((s) => s !== seen[0]) || seen[0] === "?") differing.push(key);
    const newest = copies.filter((c) => c?.found).sort((a, b) => b!.timestamp - a!.timestamp)[0];
    final[key] = newest ? { found: true, value: new TextDecoder().decode(newest.value) } : { found: false };
  }));
  return { final, differing };
}

/**
 * The final state of every attempted write-once key: present (with its value)
 * when any node's own copy holds it, a stand-in's hinted copy included, so only
 * a key no node holds counts as lost. A node that does not answer is left out.
 */
async function readOnce(
  addresses: string[],
  keys: string[],
  timeoutMs: number,
): Promise<Record<string, KeyState>> {
  const final: Record<string, KeyState> = Object.fromEntries(keys.map((k) => [k, { found: false }]));
  for (const address of addresses) {
    const node = await KvClient.connect([address], { route: false, timeoutMs });
    try {
      for (let i = 0; i < keys.length; i += READ_BATCH) {
        const got = await node.multiGet(keys.slice(i, i + READ_BATCH), { fromReplica: true });
        for (const r of got) {
          if (r.found) final[r.key] = { found: true, value: new TextDecoder().decode(r.value) };
        }
      }
    } catch (err) {
      console.error(`write-once read-back from ${address} stopped: ${msg(err)}`);
    } finally {
      node.close();
    }
  }
  return final;
}

/** A routing client, once every node answers and sees every node ACTIVE. */
async function waitAllActive(
  addresses: string[],
  callTimeoutMs: number,
  timeoutMs: number,
): Promise<KvClient> {
  const deadline = Date.now() + timeoutMs;
  const probe = await KvClient.connect(addresses, { route: false, timeoutMs: callTimeoutMs });
  while (true) {
    const views = await Promise.all(addresses.map((a) => probe.membership(a).catch(() => undefined)));
    // A node whose clock is off to its peers (clock-ahead) stays JOINING by design, its keys
    // served by the next node (lib/clock_watch.ts): the cluster is ready as it is.
    const clockHeld = new Set(
      views.flatMap((v) =>
        v?.members.filter((m) => m.id === v.responder && m.statusReason.startsWith("clock offset beyond"))
          .map((m) => m.id) ?? []
      ),
    );
    if (views.every((v) => v && v.members.every((m) => m.status === "ACTIVE" || clockHeld.has(m.id)))) {
      return await KvClient.connect(addresses, { timeoutMs: callTimeoutMs });
    }
    if (Date.now() > deadline) throw new Error(`cluster not ACTIVE after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      nodes: { type: "string" },
      keys: { type: "string", default: "16" },
      workers: { type: "string", default: "6" },
      "once-workers": { type: "string", default: "4" },
      "cond-workers": { type: "string", default: "4" },
      down: { type: "string", default: "" },
      seed: { type: "string", default: "1" },
      rf: { type: "string", default: "2" },
      history: { type: "string" },
      "timeout-ms": { type: "string", default: "1000" },
      "converge-ms": { type: "string", default: "20000" },
    },
  });
  const addresses = values.nodes!.split(",");
  const keys = Array.from({ length: Number(values.keys) }, (_, i) => `key-${i}`);
  const seed = Number(values.seed);
  const client = await waitAllActive(addresses, Number(values["timeout-ms"]), 20_000);
  await waitConditionalReady(client, seed, 15_000);
  console.log(JSON.stringify({ event: "ready" }));

  let stopped = false;
  const history: Op[] = [];
  const condKeys: ConditionalKeys = { seed, shortSeq: 0, absentSeq: 0, casSeq: 0 };
  const stdin = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  const stopSignal = (async () => {
    let buf = "";
    while (!buf.includes("stop")) {
      const { value, done } = await stdin.read();
      if (done) break;
      buf += value;
    }
    stopped = true;
  })();
  const workers = [
    ...Array.from(
      { length: Number(values.workers) },
      (_, id) => worker(client, id, { keys, seed, stop: () => stopped, history }),
    ),
    ...Array.from(
      { length: Number(values["once-workers"]) },
      (_, id) => onceWorker(client, 100 + id, { seed, stop: () => stopped, history }),
    ),
    ...Array.from({ length: Number(values["cond-workers"]) }, (_, id) =>
      conditionalWorker(client, 200 + id, {
        keys: condKeys,
        rand: seeded(seed * 1000 + 200 + id),
        stop: () => stopped,
        history,
      })),
  ];
  await stopSignal;
  await Promise.all(workers);
  await Deno.writeTextFile(values.history!, history.map((o) => JSON.stringify(o)).join("\n") + "\n");
  console.log(JSON.stringify({ event: "stopped", ops: history.length }));

  const down = values.down.split(",").filter((a) => a);
  const deadline = Date.now() + Number(values["converge-ms"]);
  let state = await readReplicas(client, keys, Number(values.rf), down);
  while (state.differing.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    await client.refresh().catch(() => {});
    state = await readReplicas(client, keys, Number(values.rf), down);
  }
  const at = Date.now();
  const onceKeys = history.filter((o) => o.once).map((o) => o.key);
  const live = addresses.filter((a) => !down.includes(a));
  const once = await readOnce(live, onceKeys, Number(values["timeout-ms"]) * 5);
  const conditional = await readConditional(client, history);
  const result: WorkloadResult = {
    event: state.differing.length === 0 ? "converged" : "diverged",
    at,
    ops: history.length,
    final: { ...state.final, ...once, ...conditional },
    differing: state.differing,
  };
  console.log(JSON.stringify(result));
  client.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
