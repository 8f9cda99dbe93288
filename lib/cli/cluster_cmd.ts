/**
 * `kvstore cluster`: every node of the config as its own OS process.
 *
 * The one command that runs a local cluster: it starts the nodes (and, with
 * `--redis`, one redis-server per node first), prefixes each node's output
 * with its id, waits until all of them listen, says where they are, reports
 * a node that dies, and stops everything it started on Ctrl+C or SIGTERM.
 */
import { resolve } from "node:path";
import type { ClusterConfig, NodeConfig } from "../config.ts";
import { KvClient } from "../grpc/kv_client.ts";
import { operatorTls, randomSecret } from "../security/settings.ts";
import { startRedisServer } from "../redis_server.ts";
import { configFrom, EXIT, intFlag, parseFlags, selfCommand } from "./common.ts";
import { NODE_V8_FLAGS } from "./node_flags.ts";
import { sizedConfig } from "./sized_config.ts";
import { errorMessage } from "../errors.ts";
import { sleep } from "../async.ts";

const HELP = `kvstore cluster [flags]

Starts every node of the cluster file as its own process and stops them all
on Ctrl+C (SIGINT) or SIGTERM.

  --config FILE        cluster file (default: the embedded config/cluster.json)
  --nodes N            start N nodes (node1..nodeN on consecutive ports from the
                       file's first node, Redis ports likewise) with the file's settings
  --redis              also start one redis-server per node (its redis_port, data
                       under --data-dir) and run the nodes on the redis engine
  --data-dir DIR       where --redis keeps each node's Redis files (default ./data)
  --log-level LEVEL    passed to every node (debug shows one line per operation)
  --log-format FORMAT  text or json, passed to every node
  -h, --help           this help

When the cluster file sets neither security.cluster_secret(_file) nor
security.tls, the nodes get a random cluster secret made for this run (its
file is printed at start and removed at stop).`;

interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

/** Runs the cluster mode; resolves with the exit code after everything stopped. */
export async function clusterCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    config: { type: "string" },
    nodes: { type: "string" },
    redis: { type: "boolean" },
    "data-dir": { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const sized = values.nodes !== undefined
    ? await sizedConfig(values.config && resolve(values.config), intFlag(values.nodes, "--nodes", 1))
    : undefined;
  const config = sized?.config ?? configFrom(values.config);
  const configPath = sized?.path ?? (values.config && resolve(values.config));
  const started: Stoppable[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    say("stopping every process this command started");
    await Promise.all(
      started.reverse().map((s) => s.stop().catch((e) => say(`${s.name}: ${errorMessage(e)}`))),
    );
  };
  const signalled = new Promise<string>((done) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => done(sig));
  });
  const runSecret = await secretForRun(config);
  if (runSecret) started.push(runSecret);
  try {
    if (values.redis) started.push(...await startRedis(config, resolve(values["data-dir"] ?? "data")));
    const nodeArgs = [
      ...(configPath ? ["--config", configPath] : []),
      ...(runSecret ? ["--cluster-secret-file", runSecret.file] : []),
      ...(values.redis ? ["--storage", "redis"] : []),
      ...(values["log-level"] ? ["--log-level", values["log-level"]] : []),
      ...(values["log-format"] ? ["--log-format", values["log-format"]] : []),
    ];
    for (const node of config.nodes) started.push(startNode(node, nodeArgs, () => stopping));
    await Promise.race([waitUntilListening(config), signalled.then((s) => Promise.reject(new Error(s)))]);
    printWelcome(config, values.redis ?? false);
  } catch (err) {
    say(`cluster did not start: ${errorMessage(err)}`);
    await stopAll();
    return EXIT.ERROR;
  }
  const sig = await signalled;
  say(`received ${sig}`);
  await stopAll();
  if (sized) await Deno.remove(sized.path).catch(() => {});
  say("all stopped");
  return EXIT.OK;
}

function say(line: string): void {
  console.log(`[cluster] ${line}`);
}

/** A line that reports a bug, not a routine event. */
function sayError(line: string): void {
  console.error(`[cluster] ERROR ${line}`);
}

async function startRedis(config: ClusterConfig, dataDir: string): Promise<Stoppable[]> {
  const servers: Stoppable[] = [];
  for (const node of config.nodes) {
    const dir = `${dataDir}/${node.id}`;
    await Deno.mkdir(dir, { recursive: true });
    const redis = await startRedisServer({ port: node.redisPort, dir });
    say(`redis-server for ${node.id} on 127.0.0.1:${node.redisPort} (pid ${redis.pid}, data in ${dir})`);
    servers.push({ name: `redis ${node.id}`, stop: () => redis.stop() });
  }
  return servers;
}

/**
 * A cluster file that names no secret and no TLS would leave node traffic
 * open to any process that reaches the ports (and each node warns so). The
 * nodes this command starts all run here, so it makes them a random secret
 * for this run instead, in a file only its owner can read, removed on stop.
 */
async function secretForRun(config: ClusterConfig): Promise<(Stoppable & { file: string }) | undefined> {
  const sec = config.security;
  if (sec.clusterSecret !== undefined || sec.clusterSecretFile !== undefined || sec.tls) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "kvstore-cluster-" });
  const file = `${dir}/cluster.secret`;
  await Deno.writeTextFile(file, randomSecret() + "\n", { mode: 0o600 });
  say(`node traffic is authenticated with a secret made for this run: ${file}`);
  say("  (a node added with --join, and client remove-node, take it as --cluster-secret-file)");
  return { name: "run secret", file, stop: () => Deno.remove(dir, { recursive: true }) };
}

/** Deaths that only a defect causes (never a kill or an orderly exit): the node is started again. */
const CRASH_SIGNALS = new Set(["SIGABRT", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"]);
/** More crashes than this within CRASH_WINDOW_MS is a crash loop: the node is left down. */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;
/** Lines of a node's own output shown when it crashes. */
const TAIL_LINES = 20;

/** A node process and the last lines it printed. */
interface NodeProcess {
  child: Deno.ChildProcess;
  tail: string[];
  /** Resolves once all its output has been read. */
  drained: Promise<unknown>;
}

/**
 * Starts one node process with its output prefixed by its id. A node that
 * crashes (killed by SIGABRT, SIGSEGV...) is a bug, reported as an ERROR
 * with its exit status and last lines, and started again: it recovers its
 * data from its peers. A node killed or exiting on its own is reported, not
 * restarted; so is one that crashes in a loop.
 */
function startNode(node: NodeConfig, args: string[], stopping: () => boolean): Stoppable {
  let proc = spawnNode(node, args);
  let exited = watch(proc);
  const crashes: number[] = [];
  async function watch(p: NodeProcess): Promise<Deno.CommandStatus> {
    const status = await p.child.status;
    await p.drained; // its last words (an abort message) are in the tail
    if (stopping()) return status;
    const how = `exit code ${status.code}${status.signal ? `, signal ${status.signal}` : ""}`;
    if (!status.signal || !CRASH_SIGNALS.has(status.signal)) {
      say(`${node.id} (pid ${p.child.pid}) exited with ${how}`);
      return status;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes[0] < now - CRASH_WINDOW_MS) crashes.shift();
    sayError(
      `${node.id} (pid ${p.child.pid}) CRASHED (${how}). A node must never crash: this is a bug, ` +
        `please report it with the lines below. Its last ${p.tail.length} lines:`,
    );
    for (const line of p.tail) sayError(`  | ${line}`);
    if (crashes.length > MAX_CRASHES) {
      sayError(
        `${node.id} crashed ${crashes.length} times in ${CRASH_WINDOW_MS / 1000} s; not starting it again`,
      );
      return status;
    }
    sayError(`starting ${node.id} again (crash ${crashes.length} in the last ${CRASH_WINDOW_MS / 1000} s)`);
    proc = spawnNode(node, args);
    exited = watch(proc);
    return await exited;
  }
  return {
    name: node.id,
    async stop() {
      const kill = (sig: Deno.Signal) => {
        try {
          proc.child.kill(sig);
        } catch { /* already exited */ }
      };
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function spawnNode(node: NodeConfig, args: string[]): NodeProcess {
  const { cmd, args: cmdArgs } = selfCommand(["server", "--id", node.id, ...args], NODE_V8_FLAGS);
  const child = new Deno.Command(cmd, { args: cmdArgs, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const tail: string[] = [];
  const prefix = `[${node.id}] `;
  const pipe = (s: ReadableStream<Uint8Array>, write: (l: string) => void) =>
    s.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          for (const line of chunk.split("\n")) {
            if (line === "") continue;
            write(prefix + line);
            tail.push(line);
            if (tail.length > TAIL_LINES) tail.shift();
          }
        },
      }),
    ).catch(() => {});
  const drained = Promise.all([pipe(child.stdout, console.log), pipe(child.stderr, console.error)]);
  say(`started ${node.id} (pid ${child.pid}) for ${node.host}:${node.port}`);
  return { child, tail, drained };
}

/**
 * Polls each node until it answers, then until every node sees every node
 * ACTIVE (a node that starts is JOINING while it pulls its ranges from its
 * peers).
 */
async function waitUntilListening(config: ClusterConfig): Promise<void> {
  const deadline = Date.now() + 60_000;
  const addresses = config.nodes.map((n) => `${n.host}:${n.port}`);
  const client = await KvClient.connect(addresses, {
    route: false,
    timeoutMs: 1000,
    tls: operatorTls(config),
  });
  try {
    await waitForAll(config, addresses, client, deadline);
  } finally {
    client.close();
  }
}

async function waitForAll(
  config: ClusterConfig,
  addresses: string[],
  client: KvClient,
  deadline: number,
): Promise<void> {
  for (const [i, address] of addresses.entries()) {
    while (true) {
      try {
        await client.membership(address);
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`${config.nodes[i].id} is not answering on ${address}: ${errorMessage(err)}`);
        }
        await sleep(200);
      }
    }
  }
  const allActive = async () => {
    for (const address of addresses) {
      const m = await client.membership(address).catch(() => undefined);
      if (!m || m.members.some((x) => x.status !== "ACTIVE")) return false;
    }
    return true;
  };
  while (!await allActive()) {
    if (Date.now() > deadline) {
      say("warning: not every node reports every node ACTIVE yet; see `client status`");
      return;
    }
    await sleep(100);
  }
}

function printWelcome(config: ClusterConfig, redis: boolean): void {
  const first = config.nodes[0];
  say(
    `cluster "${config.clusterName}" is up: ${config.nodes.length} nodes, storage ${
      redis ? "redis" : "memory"
    }`,
  );
  for (const n of config.nodes) {
    say(
      `  ${n.id}  ${n.host}:${n.port}${
        n.adminPort ? `  status page and /metrics: http://${n.host}:${n.adminPort}/` : ""
      }${n.respPort ? `  Redis protocol: redis-cli -p ${n.respPort}` : ""}`,
    );
  }
  say("try, in another terminal:");
  say(`  npx -y deno@2.9.3 task client --node-port ${first.port}            # PUT/GET/DELETE demonstration`);
  say(`  npx -y deno@2.9.3 task client put greeting hello`);
  say(`  npx -y deno@2.9.3 task client status`);
  const resp = config.nodes.find((n) => n.respPort > 0);
  if (resp) say(`  redis-cli -p ${resp.respPort} SET greeting hello   # any Redis client, through any node`);
  const token = config.security.clientTokenFile;
  if (token) say(`  (clients need the client token: add --token-file ${token} to client and bench)`);
  say("Ctrl+C stops every node");
}
