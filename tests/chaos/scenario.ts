/**
 * One chaos scenario: a 3-node cluster in network namespaces, the workload
 * running from the clients' namespace, one nemesis started after a warm-up
 * and healed after the fault window, then the history checked and the time
 * until every replica is identical measured. Everything the run created
 * (processes, namespaces, files) is removed on every exit.
 */
import { ChaosNetwork } from "./netns.ts";
import { type ClusterSettings, NsCluster } from "./ns_cluster.ts";
import type { Nemesis } from "./nemeses.ts";
import { check, type CheckResult, type KeyState, type Op } from "./checker.ts";
import { isConditionalOp } from "./conditional_checker.ts";
import type { WorkloadResult } from "./workload.ts";
import { sleep } from "../../lib/async.ts";

const WORKLOAD = new URL("./workload.ts", import.meta.url).pathname;
const NODES = ["n1", "n2", "n3"];

/** A replication setting of the table. */
export interface Setting extends ClusterSettings {
  name: string;
}

/** The settings of the table in docs/chaos.md. */
export const SETTINGS: Setting[] = [
  { name: "rf2-w1", replicationFactor: 2, writeQuorum: 1, readQuorum: 1, antiEntropyMs: 4000 },
  { name: "rf2-w2", replicationFactor: 2, writeQuorum: 2, readQuorum: 1, antiEntropyMs: 4000 },
  {
    name: "rf2-w2-sloppy",
    replicationFactor: 2,
    writeQuorum: 2,
    readQuorum: 1,
    sloppyQuorum: true,
    antiEntropyMs: 4000,
  },
  { name: "rf3-w2-r2", replicationFactor: 3, writeQuorum: 2, readQuorum: 2, antiEntropyMs: 4000 },
];

/**
 * Phases of a run, in ms, and the bounds of its waits: at most 20 s to start,
 * 12 s of load, 10 s for the workers to stop, 12 s for the replicas to agree
 * (5 s more for the answer), so a run ends within 60 s whatever happens.
 */
export const PHASES = {
  startLimitMs: 20_000,
  warmMs: 2000,
  faultMs: 8000,
  afterHealMs: 2000,
  stopLimitMs: 10_000,
  convergeLimitMs: 12_000,
};

/** One row of the results. */
export interface ScenarioResult {
  setting: string;
  nemesis: string;
  seed: number;
  ops: number;
  check: CheckResult;
  /** ms from the heal until every replica was identical; undefined if they never were. */
  convergeMs?: number;
  differing: string[];
  unexpectedExits: string[];
  /**
   * Whether the checker, given this run's history with one acknowledged
   * write-once key taken out of the final state, counts exactly one more lost
   * key (undefined when no write-once key was acknowledged): a checker blind
   * to missing keys would report 0 lost in every run.
   */
  seesMissingKey?: boolean;
  /** Conditional operations started between the fault and the heal, and how many of them answered UNAVAILABLE. */
  conditionalInFault: { attempted: number; unavailable: number };
}

/** Runs one scenario; throws only when the harness itself fails. */
export async function runScenario(
  setting: Setting,
  nemesis: Nemesis,
  seed: number,
  opts: { conditionalWorkers?: number } = {},
): Promise<ScenarioResult> {
  const net = await ChaosNetwork.create([...NODES, "clients"]);
  let cluster: NsCluster | undefined;
  let workload: Deno.ChildProcess | undefined;
  try {
    cluster = await NsCluster.create(net, NODES, { ...setting, storage: nemesis.storage });
    for (const id of NODES) cluster.startNode(id, nemesis.nodeArgs?.[id] ?? []);
    const historyPath = `${cluster.dir}/history.jsonl`;
    const { cmd, args } = net.exec("clients", Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      WORKLOAD,
      `--nodes=${NODES.map((id) => cluster!.address(id)).join(",")}`,
      `--seed=${seed}`,
      `--cond-workers=${opts.conditionalWorkers ?? 4}`,
      `--rf=${setting.replicationFactor}`,
      `--history=${historyPath}`,
      `--converge-ms=${PHASES.convergeLimitMs}`,
      `--down=${(nemesis.leftDown ?? []).map((id) => cluster!.address(id)).join(",")}`,
    ]);
    workload = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "inherit" }).spawn();
    const lines = lineReader(workload.stdout);
    await expectEvent(lines, "ready", PHASES.startLimitMs, cluster);
    await sleep(PHASES.warmMs);
    const faultAt = Date.now();
    await nemesis.start({ net, cluster });
    await sleep(PHASES.faultMs);
    await nemesis.heal({ net, cluster });
    const healedAt = Date.now();
    await sleep(PHASES.afterHealMs);
    const writer = workload.stdin.getWriter();
    await writer.write(new TextEncoder().encode("stop\n"));
    await writer.close();
    await expectEvent(lines, "stopped", PHASES.stopLimitMs, cluster);
    const result = await expectEvent(
      lines,
      undefined,
      PHASES.convergeLimitMs + 5000,
      cluster,
    ) as WorkloadResult;
    const history = (await Deno.readTextFile(historyPath)).split("\n").filter((l) => l).map((l) =>
      JSON.parse(l) as Op
    );
    const final = new Map<string, KeyState>(Object.entries(result.final));
    await Deno.writeTextFile(`${cluster.dir}/final.json`, JSON.stringify(result));
    const checked = check(history, final);
    return {
      setting: setting.name,
      nemesis: nemesis.name,
      seed,
      ops: history.length,
      check: checked,
      seesMissingKey: seesMissingKey(history, final, checked),
      conditionalInFault: conditionalBetween(history, faultAt, healedAt),
      convergeMs: result.event === "converged" ? result.at - healedAt : undefined,
      differing: result.differing,
      unexpectedExits: cluster.unexpectedExits.map((e) =>
        `${e.id} exited by itself (code ${e.code}, signal ${e.signal}):\n${
          cluster!.logs(e.id).split("\n").slice(-20).join("\n")
        }`
      ),
    };
  } finally {
    if (cluster && Deno.env.get("CHAOS_KEEP")) {
      await keep(Deno.env.get("CHAOS_KEEP")!, setting, nemesis, cluster);
    }
    if (workload) {
      try {
        workload.kill("SIGKILL");
      } catch { /* exited */ }
      await workload.status;
    }
    await cluster?.stop();
    await net.destroy();
  }
}

/** See {@link ScenarioResult.conditionalInFault} (the workload's times are Unix ms too). */
function conditionalBetween(history: Op[], from: number, to: number): ScenarioResult["conditionalInFault"] {
  const ops = history.filter((o) => isConditionalOp(o) && o.start >= from && o.start <= to);
  return {
    attempted: ops.length,
    unavailable: ops.filter((o) => o.code === UNAVAILABLE && o.outcome === "fail").length,
  };
}

/** gRPC's UNAVAILABLE. */
const UNAVAILABLE = 14;

/** See {@link ScenarioResult.seesMissingKey}. */
function seesMissingKey(
  history: Op[],
  final: Map<string, KeyState>,
  checked: CheckResult,
): boolean | undefined {
  const acked = history.find((o) => o.once && o.outcome === "ok" && final.get(o.key)?.found);
  if (!acked) return undefined;
  const without = new Map(final);
  without.set(acked.key, { found: false });
  const lost = check(history, without).writeOnce.lost;
  return lost.length === checked.writeOnce.lost.length + 1 && lost.some((a) => a.key === acked.key);
}

/** Copies the history and every node's log to `dir/setting-nemesis/`, for a failure's post-mortem. */
async function keep(dir: string, setting: Setting, nemesis: Nemesis, cluster: NsCluster): Promise<void> {
  const to = `${dir}/${setting.name}-${nemesis.name}`;
  await Deno.mkdir(to, { recursive: true });
  for (const f of ["history.jsonl", "final.json"]) {
    await Deno.copyFile(`${cluster.dir}/${f}`, `${to}/${f}`).catch(() => {});
  }
  for (const id of cluster.ids) await Deno.writeTextFile(`${to}/${id}.log`, cluster.logs(id));
  console.log(`history and node logs kept in ${to}`);
}

type Lines = AsyncIterator<string>;

function lineReader(stream: ReadableStream<Uint8Array>): Lines {
  return (async function* () {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
  })();
}

/** The next JSON line of the workload (with `event` if given); fails after `ms`. */
async function expectEvent(lines: Lines, event: string | undefined, ms: number, cluster: NsCluster) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`workload: no "${event ?? "result"}" within ${ms} ms\n${cluster.tails()}`)),
      ms,
    );
  });
  try {
    while (true) {
      const next = await Promise.race([lines.next(), timeout]);
      if (next.done) throw new Error(`workload exited before "${event ?? "result"}"\n${cluster.tails()}`);
      const msg = JSON.parse(next.value);
      if (event === undefined || msg.event === event) return msg;
    }
  } finally {
    clearTimeout(timer);
  }
}
