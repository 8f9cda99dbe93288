/**
 * Fuzz of every RPC of KeyValueStore and NodeService (read from the loaded
 * proto, so a new RPC is fuzzed without changes here) against a real
 * 3-node cluster with a secret, the memory engine and 4 MiB messages.
 *
 * Each pass is a step with a fresh cluster: an outsider (no credentials) and
 * an authenticated peer (a valid node token, made with the cluster secret
 * the harness holds), each against each service. Every RPC gets random and
 * adversarial bodies (tests/helpers/fuzz.ts) and raw random bytes, a
 * bounded number of calls within a time share, each with a deadline;
 * streams are read for a few messages and cancelled. After every RPC's batch
 * the pass checks (tests/helpers/fuzz_watch.ts) that every node runs and
 * serves, the member list is unchanged, the data written before reads back
 * intact, and no node's peak RSS grew by more than 4 x max_message_bytes +
 * 64 MB (over the whole pass: beyond the data it stores, once the runtime
 * had time to collect and trim its garbage); a
 * DEADLINE_EXCEEDED is a hang when the node then fails a health check too.
 *
 * The peer pass does not send what a peer may legitimately do to the
 * membership (a JoinCluster or CHANGE_JOIN with a valid address, a removal
 * of a real member): those change the list on purpose. Every other
 * membership message (PushMembership, Prepare/AcceptMembership, malformed
 * joins and removals, STREAMED) is fuzzed in both passes, and the member
 * list must not change.
 *
 * The seed is printed; KVSTORE_FUZZ_SEED=N replays a run, KVSTORE_FUZZ_ONLY=
 * Name,Name limits it to some RPCs.
 */
import protobuf from "protobufjs";
import { TestCluster, withTimeout } from "./helpers/cluster.ts";
import {
  describeBody,
  type FuzzContext,
  fuzzSeed,
  legitimateChange,
  MessageFuzzer,
  Rng,
  subSeed,
} from "./helpers/fuzz.ts";
import { type FuzzMethod, fuzzMethods, RawCaller } from "./helpers/fuzz_client.ts";
import { ClusterWatch, mb, writeFixture } from "./helpers/fuzz_watch.ts";
import { PROTO_TEXT } from "../lib/grpc/proto.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";

const MAX_MESSAGE_BYTES = 4 << 20;
const RSS_BOUND = 4 * MAX_MESSAGE_BYTES + (64 << 20);
/** Above this a node is killed (a finding): the machine is shared. */
const MEMORY_CEILING = 1536 << 20;
const CALLS_PER_RPC = 40;
const MIN_CALLS_PER_RPC = 3;
const CALL_DEADLINE_MS = 3000;
/** How long the cluster may take to serve again after a batch (peers suspected a busy node). */
const SETTLE_MS = 8000;
/** How long a node's RSS may take to come back under the bound after a pass (collection, malloc trim). */
const PASS_SETTLE_MS = 15_000;
/** Statuses whose message the table prints: neither an answer nor a refusal of the request. */
const ODD = /^(CANCELLED|UNKNOWN|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS|ABORTED|code \d+)$/;

interface Pass {
  name: string;
  peer: boolean;
  service: FuzzMethod["service"];
  /** Fuzzing time of the whole pass, shared equally by its RPCs. */
  budgetMs: number;
}

const PASSES: Pass[] = [
  { name: "outsider, KeyValueStore", peer: false, service: "KeyValueStore", budgetMs: 20_000 },
  { name: "outsider, NodeService", peer: false, service: "NodeService", budgetMs: 20_000 },
  { name: "authenticated peer, KeyValueStore", peer: true, service: "KeyValueStore", budgetMs: 20_000 },
  { name: "authenticated peer, NodeService", peer: true, service: "NodeService", budgetMs: 60_000 },
];

/** One RPC's batch, for the table. */
interface Row {
  rpc: string;
  calls: number;
  skipped: number;
  codes: Map<string, number>;
  /** The first message of each status that is not a plain answer or refusal (see ODD). */
  odd: Map<string, string>;
  growth: number;
  /** How long the checks after the batch took to pass (or to give up). */
  settleMs: number;
}

const root = protobuf.parse(PROTO_TEXT, { keepCase: true }).root;
root.resolveAll();

Deno.test({
  name: "fuzz: random and adversarial messages to every RPC, as an outsider and as a peer",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const seed = fuzzSeed();
    console.log(`fuzz seed ${seed} (replay: KVSTORE_FUZZ_SEED=${seed})`);
    for (const pass of PASSES) {
      await t.step({
        name: pass.name,
        sanitizeOps: false,
        sanitizeResources: false,
        fn: () => withTimeout(runPass(pass, seed), pass.budgetMs + 90_000, pass.name),
      });
    }
  },
});

/** A fresh cluster, the fixture, every RPC's batch with checks after each; fails with every finding. */
async function runPass(pass: Pass, seed: number): Promise<void> {
  const methods = selected(fuzzMethods().filter((m) => m.service === pass.service));
  if (methods.length === 0) return console.log(`${pass.name}: no RPC selected (KVSTORE_FUZZ_ONLY)`);
  const started = Date.now();
  const cluster = await TestCluster.start({
    nodes: 3,
    extra: { limits: { max_message_bytes: MAX_MESSAGE_BYTES } },
  });
  const found: string[] = [];
  const rows: Row[] = [];
  let watch: ClusterWatch | undefined;
  try {
    const fixture = await writeFixture(cluster, 40, 1 << 20);
    watch = new ClusterWatch(cluster, fixture, RSS_BOUND);
    await watch.start(MEMORY_CEILING);
    const ctx: FuzzContext = {
      nodeIds: cluster.nodes.map((n) => n.id),
      ports: cluster.nodes.map((n) => n.port),
      readKeys: [...fixture.values.keys()],
      bigKey: fixture.bigKey,
      maxMessageBytes: MAX_MESSAGE_BYTES,
    };
    const callers = cluster.nodes.map((n, i) =>
      cluster.closeOnStop(
        new RawCaller(
          n.address,
          pass.peer ? { secret: cluster.secret, peerAs: ctx.nodeIds[(i + 1) % 3], target: n.id } : {},
        ),
      )
    );
    for (const m of methods) {
      watch.startBatch();
      const row = await fuzzOne(m, { pass, seed, ctx, callers, cluster, watch, found });
      row.growth = watch.batchGrowth().bytes;
      rows.push(row);
      found.push(...watch.guardKills.splice(0).map((f) => `during ${m.name}: ${f}`));
      const after = await watch.settled(m.name, SETTLE_MS);
      row.settleMs = after.ms;
      found.push(...after.findings.map((f) => `after ${m.name}: ${f}`));
      if (cluster.nodes.some((n) => !cluster.isRunning(n.id))) {
        found.push(`pass stopped after ${m.name}: a node is down, so later RPCs were not fuzzed`);
        break;
      }
    }
    found.push(...await watch.passGrowth(PASS_SETTLE_MS));
  } finally {
    watch?.stop();
    printTable(pass, rows, Date.now() - started);
    printUnexpected(cluster);
    if (found.length > 0) await saveLogs(cluster, pass);
    await cluster.stop().catch((err) => found.push(String(err)));
  }
  if (found.length > 0) throw new Error(`${pass.name} (seed ${seed}):\n- ${found.join("\n- ")}`);
}

/** The methods KVSTORE_FUZZ_ONLY names, or all. */
function selected(methods: FuzzMethod[]): FuzzMethod[] {
  const only = Deno.env.get("KVSTORE_FUZZ_ONLY")?.split(",").filter((s) => s !== "");
  return only?.length ? methods.filter((m) => only.includes(m.name)) : methods;
}

/** What a pass's batches share. */
interface Run {
  pass: Pass;
  seed: number;
  ctx: FuzzContext;
  /** One per node, in the cluster's order. */
  callers: RawCaller[];
  cluster: TestCluster;
  watch: ClusterWatch;
  /** Findings so far; each names the call and its message, to replay with the seed. */
  found: string[];
}

/**
 * One RPC's batch: random bodies to random nodes until the count or the time
 * share runs out. After each call: a DEADLINE_EXCEEDED from a node that then
 * fails a health check is a hang, the first call that changes the target's
 * member list or takes a node's peak RSS past the bound is a finding, and a
 * node that stopped running ends the batch.
 */
async function fuzzOne(m: FuzzMethod, run: Run): Promise<Row> {
  const { pass, seed, ctx, callers, cluster, watch, found } = run;
  const rng = new Rng(subSeed(seed, pass.name, m.name));
  const fuzzer = new MessageFuzzer(rng, ctx);
  const type = root.lookupType(`kvstore.${m.requestType}`);
  const row: Row = {
    rpc: `${m.service}.${m.name}`,
    calls: 0,
    skipped: 0,
    codes: new Map(),
    odd: new Map(),
    growth: 0,
    settleMs: 0,
  };
  const share = pass.budgetMs / fuzzMethods().filter((x) => x.service === pass.service).length;
  const until = Date.now() + share;
  let overBound = false;
  let listChanged = false;
  for (let i = 0; i < CALLS_PER_RPC && (i < MIN_CALLS_PER_RPC || Date.now() < until); i++) {
    const target = rng.int(callers.length);
    const bodies = Array.from(
      { length: m.requestStream ? 1 + rng.int(4) : 1 },
      () => rng.chance(0.2) ? fuzzer.rawBody() : fuzzer.body(type),
    );
    if (pass.peer && bodies.some((b) => legitimateChange(m.name, decoded(type, b), ctx.nodeIds))) {
      row.skipped++;
      continue;
    }
    const outcome = await callers[target].call(m, bodies, CALL_DEADLINE_MS, rng.chance(0.8));
    row.calls++;
    row.codes.set(outcome.code, (row.codes.get(outcome.code) ?? 0) + 1);
    if (ODD.test(outcome.code) && !row.odd.has(outcome.code)) row.odd.set(outcome.code, outcome.details);
    const call = () =>
      `${m.name} call ${i} to ${cluster.nodes[target].id} (${
        bodies.map((b) => describeBody(type, b)).join("; ")
      })`;
    if (outcome.code === "DEADLINE_EXCEEDED" && !(await answers(cluster, target))) {
      found.push(`${call()}: no answer, and the node then failed a health check`);
    }
    const changed = listChanged ? undefined : await watch.listChange(cluster.nodes[target].id);
    if (changed) {
      listChanged = true;
      found.push(`${call()}: ${cluster.nodes[target].id}'s member list ${changed}`);
    }
    const grown = watch.batchGrowth();
    if (grown.bytes > RSS_BOUND && !overBound) {
      overBound = true;
      found.push(`${call()}: ${grown.node}'s peak RSS grew by ${mb(grown.bytes)} (bound ${mb(RSS_BOUND)})`);
    }
    const down = cluster.nodes.filter((n) => !cluster.isRunning(n.id)).map((n) => n.id);
    if (down.length > 0) {
      found.push(`${call()}: then ${down.join(", ")} no longer ran`);
      break;
    }
  }
  return row;
}

/** A body as the node decodes it (protobufjs, as grpc-js's loader does); {} when it does not parse. */
function decoded(type: protobuf.Type, body: Uint8Array): Record<string, unknown> {
  try {
    return type.toObject(type.decode(body), { enums: String, longs: Number, defaults: true });
  } catch {
    return {};
  }
}

/** Whether a node answers GetMembership within 2 s. */
async function answers(cluster: TestCluster, index: number): Promise<boolean> {
  const address = cluster.nodes[index].address;
  const client = await KvClient.connect([address], { route: false, timeoutMs: 2000 }).catch(() => undefined);
  if (!client) return false;
  try {
    await client.membership(address);
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/**
 * Handler errors the nodes logged as unexpected (answered INTERNAL): printed
 * for the reader, not failed on, since the node lives on and the caller got a
 * status; each is a message that deserved a clearer refusal.
 */
function printUnexpected(cluster: TestCluster): void {
  const lines = cluster.nodes.flatMap((n) =>
    cluster.logs(n.id).split("\n").filter((l) => /failed unexpectedly|uncaught|unhandled/i.test(l))
  );
  if (lines.length === 0) return;
  const distinct = [...new Set(lines.map((l) => l.replace(/^\S+ \S+\s+\[\w+\] /, "")))];
  console.log(`unexpected handler errors logged (${lines.length}):\n  ${distinct.slice(0, 10).join("\n  ")}`);
}

/** With KVSTORE_FUZZ_LOGS=DIR, every node's whole log of a failed pass is saved there. */
async function saveLogs(cluster: TestCluster, pass: Pass): Promise<void> {
  const dir = Deno.env.get("KVSTORE_FUZZ_LOGS");
  if (!dir) return;
  await Deno.mkdir(dir, { recursive: true });
  for (const n of cluster.nodes) {
    const file = `${dir}/${pass.name.replace(/\W+/g, "_")}-${n.id}.log`;
    await Deno.writeTextFile(file, cluster.logs(n.id));
  }
  console.log(`node logs saved in ${dir}`);
}

function printTable(pass: Pass, rows: Row[], ms: number): void {
  const lines = rows.map((r) => {
    const codes = [...r.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(", ");
    const skipped = r.skipped > 0 ? ` (${r.skipped} legitimate changes not sent)` : "";
    const settle = `${(r.settleMs / 1000).toFixed(1)} s`;
    const cells = [
      r.rpc.padEnd(32),
      String(r.calls).padStart(5),
      mb(r.growth).padStart(14),
      settle.padStart(7),
    ];
    const odd = [...r.odd].map(([c, d]) => `\n${" ".repeat(36)}${c}: ${d.slice(0, 160)}`).join("");
    return `  ${cells.join(" ")}  ${codes}${skipped}${odd}`;
  });
  const head = ["RPC".padEnd(32), "calls", "max RSS growth", " checks"].join(" ");
  console.log(
    `\n${pass.name}: ${rows.length} RPCs in ${(ms / 1000).toFixed(1)} s\n  ${head}  status codes\n${
      lines.join("\n")
    }`,
  );
}
