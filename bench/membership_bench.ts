/**
 * The benchmark's membership part: on a loaded cluster (the 1M-record
 * memory cluster), time a node joining (node4, started with --join) and a
 * node decommissioning (client remove-node), each until the change has
 * completed on the claimant's list, and count the records moved.
 *
 * Called from bench/benchmark.ts after the 1M test; it starts one extra
 * node process, registered in the benchmark's process group so it is
 * stopped by PID with the others.
 */
import { KvClient } from "../lib/grpc/kv_client.ts";
import { freePort } from "../tests/helpers/ports.ts";
import { type BenchCluster, Proc, type ProcessGroup, sleep } from "./_procs.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** A change that has not completed in this long is reported as a failure. */
const CHANGE_TIMEOUT_MS = 15 * 60_000;

/** What one membership change took. */
export interface ChangeTiming {
  node: string;
  seconds: number;
  /** Records the node(s) gaining ranges pulled, from their "ranges pulled" log lines. */
  recordsMoved: number;
  recordsPerSec: number;
}

/** The membership part of the benchmark's results. */
export interface MembershipResult {
  keys: number;
  join: ChangeTiming;
  decommission: ChangeTiming;
}

/** Joins node4 to the cluster, then decommissions node2; resolves with the timings. */
export async function runMembershipChanges(
  cluster: BenchCluster,
  group: ProcessGroup,
  keys: number,
  log: (msg: string) => void,
): Promise<MembershipResult> {
  const seed = cluster.addresses[0];
  // Never closed, like every client of the benchmark (see the top of bench/benchmark.ts).
  const client = await KvClient.connect([seed], { route: false, timeoutMs: 30_000 });

  log(`membership: node4 joins a cluster holding ${keys} keys`);
  const port = freePort();
  let started = performance.now();
  const joiner = new Proc("node4", Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    MAIN,
    "server",
    "--id",
    "node4",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--join",
    cluster.addresses.join(","),
  ], { cwd: cluster.o.dir });
  group.add({ stop: () => joiner.stop("SIGKILL") }, "node4 (joiner)");
  await settled(client, seed, (ids) => ids.includes("node4"), () => joiner.running);
  const join = timing("node4", started, [joiner]);
  log(`  node4 joined in ${join.seconds} s, ${join.recordsMoved} records moved (${join.recordsPerSec}/s)`);

  log("membership: node2 decommissions");
  started = performance.now();
  const res = await client.removeNode("node2");
  if (!res.accepted) throw new Error(`remove-node node2 not accepted: ${res.message}`);
  await settled(client, seed, (ids) => !ids.includes("node2"), () => true);
  const gainers = [...cluster.procs.values()].filter((p) => p.name !== "node2");
  const decommission = timing("node2", started, [...gainers, joiner]);
  log(
    `  node2 left in ${decommission.seconds} s, ${decommission.recordsMoved} records moved ` +
      `(${decommission.recordsPerSec}/s)`,
  );
  return { keys, join, decommission };
}

/** Waits until the list at `address` satisfies `done` with no change under way. */
async function settled(
  client: KvClient,
  address: string,
  done: (ids: string[]) => boolean,
  alive: () => boolean,
): Promise<void> {
  const deadline = Date.now() + CHANGE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error("the joining node exited");
    const m = await client.membership(address).catch(() => undefined);
    if (m && m.members.every((x) => x.memberState === "NORMAL") && done(m.members.map((x) => x.id))) return;
    await sleep(200);
  }
  throw new Error(`membership change not complete after ${CHANGE_TIMEOUT_MS / 1000} s`);
}

/** The change's time, and the records the pulling nodes logged for their last pull. */
function timing(node: string, started: number, pullers: Proc[]): ChangeTiming {
  const seconds = (performance.now() - started) / 1000;
  let recordsMoved = 0;
  for (const p of pullers) {
    const line = p.grep(/ranges pulled for the membership change/).at(-1) ?? "";
    recordsMoved += Number(/records=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return {
    node,
    seconds: Math.round(seconds * 100) / 100,
    recordsMoved,
    recordsPerSec: Math.round(recordsMoved / Math.max(seconds, 0.001)),
  };
}

/** The results as text for the benchmark's report. */
export function membershipText(m: MembershipResult): string {
  return [
    `membership changes with ${m.keys} keys (memory engine, replication_factor 2):`,
    `  join of ${m.join.node}: ${m.join.seconds} s, ${m.join.recordsMoved} records moved (${m.join.recordsPerSec}/s)`,
    `  decommission of ${m.decommission.node}: ${m.decommission.seconds} s, ` +
    `${m.decommission.recordsMoved} records moved (${m.decommission.recordsPerSec}/s)`,
  ].join("\n");
}
