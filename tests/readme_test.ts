/**
 * A newcomer following only the README: its first command (`deno task
 * cluster`), then every command of its walk-through, run as written.
 *
 * The walk-through's blocks are read from README.md itself, so a command
 * changed there is the command tested. Only the default ports change: the
 * cluster runs the shipped config/cluster.json with its ports (8001-8003,
 * RESP 7001-7003) replaced by free ones, the same replacement is made in
 * each command, and a `deno task client` that names no node is given the
 * first node (it would contact 8001). `deno` is this test's Deno, as the
 * README's "`deno` means `npx -y deno@2.9.3`" says. A comment `# → word`
 * is output the command must show, `# exit N` its exit code (else 0).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { blocksUnder, type FencedBlock } from "./helpers/markdown.ts";
import { clusterTest, sleep, text } from "./helpers/cluster.ts";
import { ROOT } from "./helpers/examples.ts";
import { freePort } from "./helpers/ports.ts";
import { ignoreRedis } from "./helpers/redis.ts";

const WALK_THROUGH = "## A first walk-through";
/** Longest one command may run before it is killed (and the test fails). */
const COMMAND_LIMIT_MS = 60_000;

/** One command line of the README, with what its comment expects. */
export interface WalkStep {
  command: string;
  exitCode: number;
  shows?: string;
}

/** The steps of the walk-through's `sh` blocks; a `ts` block is the file `file` (first.ts) the steps run. */
export function walkThrough(readme: string): { steps: WalkStep[]; program?: FencedBlock } {
  const blocks = blocksUnder(readme, WALK_THROUGH);
  const steps = blocks.filter((b) => b.lang === "sh").flatMap((b) => b.lines)
    .filter((l) => l.trim() !== "" && !l.trim().startsWith("#"))
    .map((line) => {
      const hash = line.indexOf(" # ");
      const comment = hash < 0 ? "" : line.slice(hash + 3);
      return {
        command: (hash < 0 ? line : line.slice(0, hash)).trim(),
        exitCode: Number(/\bexit (\d+)/.exec(comment)?.[1] ?? 0),
        shows: /→ (\S+)/.exec(comment)?.[1],
      };
    });
  return { steps, program: blocks.find((b) => b.lang === "ts") };
}

/** The README's default ports and the test's, in the order they are replaced. */
type PortMap = Map<number, number>;

/** A README command as this test runs it: free ports, and the first node for a client that names none. */
export function localized(command: string, ports: PortMap, firstNode: number): string {
  let out = command.replace(/\b(800[1-3]|700[1-3])\b/g, (p) => String(ports.get(Number(p)) ?? p));
  if (/^deno task client\b/.test(out) && !/--node-port|--addr/.test(out)) {
    out = out.replace(/^deno task client/, `deno task client --node-port ${firstNode}`);
  }
  return out;
}

/** Runs one command in the repository as a shell would; its exit code and output. */
async function sh(command: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("bash", {
    args: ["-c", command],
    cwd: ROOT,
    env: { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(COMMAND_LIMIT_MS),
  }).output();
  return { code: r.code, out: text.decode(r.stdout) + text.decode(r.stderr) };
}

/** The README's first command (`deno task cluster`) on the shipped cluster file with free ports. */
async function startCluster(
  dir: string,
): Promise<{ child: Deno.ChildProcess; lines: string[]; ports: PortMap }> {
  const shipped = JSON.parse(await Deno.readTextFile(join(ROOT, "config/cluster.json")));
  const ports: PortMap = new Map();
  for (const node of shipped.nodes) {
    ports.set(node.port, node.port = freePort());
    ports.set(node.resp_port, node.resp_port = freePort());
    node.admin_port = freePort(); // gRPC port + 1000 by default: not known to be free
  }
  await Deno.writeTextFile(join(dir, "cluster.json"), JSON.stringify(shipped));
  const task = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks.cluster as string;
  assert.match(task, /^deno run /, "the cluster task is a deno run command");
  const child = new Deno.Command(Deno.execPath(), {
    args: [...task.split(" ").slice(1), "--config", join(dir, "cluster.json")],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    s.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (c) => void lines.push(...c.split("\n").filter((l) => l)) }),
    ).catch(() => {});
  }
  const deadline = Date.now() + 60_000;
  while (!lines.some((l) => /is up: 3 nodes/.test(l))) {
    if (Date.now() > deadline) throw new Error(`the cluster did not come up:\n${lines.join("\n")}`);
    await sleep(100);
  }
  return { child, lines, ports };
}

/** The pids of the nodes (and Redis servers) the cluster command says it started. */
function startedPids(lines: string[]): number[] {
  return lines.flatMap((l) => [...l.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1])));
}

clusterTest(
  "the README's walk-through runs as written against `deno task cluster` on free ports",
  async () => {
    const readme = await Deno.readTextFile(join(ROOT, "README.md"));
    const { steps, program } = walkThrough(readme);
    assert.ok(steps.length >= 10, "the walk-through has its commands");
    assert.ok(program, "the walk-through has the library program");
    const dir = await Deno.makeTempDir({ prefix: "kvstore-readme-" });
    const programFile = `.readme-first-${Deno.pid}.ts`; // beside deno.json, so "@kvstore/kvstore" resolves
    const { child, lines, ports } = await startCluster(dir);
    try {
      const first = ports.get(8001)!;
      await Deno.writeTextFile(join(ROOT, programFile), localized(program.lines.join("\n"), ports, first));
      for (const step of steps) {
        if (/^redis-cli\b/.test(step.command) && ignoreRedis) {
          console.log(`skipped (no redis-cli, not CI): ${step.command}`);
          continue;
        }
        const command = localized(step.command, ports, first).replace(/\bfirst\.ts\b/, programFile);
        const started = performance.now();
        const r = await sh(command);
        console.log(`${r.code} ${Math.round(performance.now() - started)} ms  ${command}`);
        assert.equal(r.code, step.exitCode, `exit code of: ${command}\n${r.out}`);
        if (step.shows) assert.ok(r.out.includes(step.shows), `"${command}" shows ${step.shows}:\n${r.out}`);
      }
    } finally {
      await Deno.remove(join(ROOT, programFile)).catch(() => {});
      const pids = startedPids(lines);
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const stopped = await Promise.race([child.status, sleep(30_000).then(() => undefined)]);
      for (const pid of stopped ? pids : [child.pid, ...pids]) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone, as it should be */ }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  { timeoutMs: 300_000 },
);

Deno.test("the walk-through's comments: expected output, exit codes, ports and the first node", () => {
  const readme = "## A first walk-through\n\n```sh\n" +
    "deno task client get greeting             # → hello\n" +
    "deno task client get gone # exit 1 (not found)\n" +
    "redis-cli -p 7003 GET greeting\n```\n\n## Next\n\n```sh\nnot run\n```\n";
  const { steps } = walkThrough(readme);
  assert.deepEqual(steps, [
    { command: "deno task client get greeting", exitCode: 0, shows: "hello" },
    { command: "deno task client get gone", exitCode: 1, shows: undefined },
    { command: "redis-cli -p 7003 GET greeting", exitCode: 0, shows: undefined },
  ]);
  const ports: PortMap = new Map([[8001, 20001], [8002, 20002], [7003, 20103]]);
  assert.equal(localized(steps[0].command, ports, 20001), "deno task client --node-port 20001 get greeting");
  assert.equal(
    localized("deno task client list --node-port 8002", ports, 20001),
    "deno task client list --node-port 20002",
  );
  assert.equal(localized(steps[2].command, ports, 20001), "redis-cli -p 20103 GET greeting");
});
