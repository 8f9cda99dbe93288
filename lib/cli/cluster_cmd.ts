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
import { operatorTls } from "../security/settings.ts";
import { startRedisServer } from "../redis_server.ts";
import { configFrom, EXIT, intFlag, parseFlags, selfCommand } from "./common.ts";
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
  -h, --help           this help`;

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
  try {
    if (values.redis) started.push(...await startRedis(config, resolve(values["data-dir"] ?? "data")));
    const nodeArgs = [
      ...(configPath ? ["--config", configPath] : []),
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

/** Crashes (not kills) that make the supervisor start a node again. */
const CRASH_SIGNALS = new Set(["SIGABRT", "SIGSEGV"]);
const MAX_RESTARTS = 5;

/**
 * Starts one node process with its output prefixed by its id, and starts it
 * again if it crashes (SIGABRT or SIGSEGV, as Deno 2.9's HTTP/2 can:
 * denoland/deno#36788); it then recovers its data from its peers. A node
 * killed or exiting on its own is reported, not restarted.
 */
function startNode(node: NodeConfig, args: string[], stopping: () => boolean): Stoppable {
  let child = spawnNode(node, args);
  let exited = watch(child);
  let restarts = 0;
  async function watch(c: Deno.ChildProcess): Promise<Deno.CommandStatus> {
    const status = await c.status;
    if (stopping()) return status;
    const how = `code ${status.code}${status.signal ? ` (${status.signal})` : ""}`;
    if (status.signal && CRASH_SIGNALS.has(status.signal) && restarts < MAX_RESTARTS) {
      restarts++;
      say(`${node.id} (pid ${c.pid}) crashed with ${how}; starting it again (${restarts}/${MAX_RESTARTS})`);
      child = spawnNode(node, args);
      exited = watch(child);
      return await exited;
    }
    say(`${node.id} (pid ${c.pid}) exited with ${how}`);
    return status;
  }
  return {
    name: node.id,
    async stop() {
      const kill = (sig: Deno.Signal) => {
        try {
          child.kill(sig);
        } catch { /* already exited */ }
      };
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function spawnNode(node: NodeConfig, args: string[]): Deno.ChildProcess {
  const { cmd, args: cmdArgs } = selfCommand(["server", "--id", node.id, ...args]);
  const child = new Deno.Command(cmd, { args: cmdArgs, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const prefix = `[${node.id}] `;
  const pipe = (s: ReadableStream<Uint8Array>, write: (l: string) => void) =>
    s.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          for (const line of chunk.split("\n")) if (line !== "") write(prefix + line);
        },
      }),
    ).catch(() => {});
  pipe(child.stdout, console.log);
  pipe(child.stderr, console.error);
  say(`started ${node.id} (pid ${child.pid}) for ${node.host}:${node.port}`);
  return child;
}

/**
 * Polls each node until it answers, then until every node sees every node
 * ACTIVE (a node that starts is JOINING while it pulls its ranges from its
 * peers). The probe client is left open for the life of the process: closing
 * it would send the nodes a GOAWAY, which Deno 2.9's HTTP/2 does not always
 * survive (denoland/deno#36788).
 */
async function waitUntilListening(config: ClusterConfig): Promise<void> {
  const deadline = Date.now() + 60_000;
  const addresses = config.nodes.map((n) => `${n.host}:${n.port}`);
  const client = await KvClient.connect(addresses, {
    route: false,
    timeoutMs: 1000,
    tls: operatorTls(config),
  });
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
      }`,
    );
  }
  say("try, in another terminal:");
  say(`  npx -y deno@2.9.3 task client --node-port ${first.port}            # PUT/GET/DELETE demonstration`);
  say(`  npx -y deno@2.9.3 task client put greeting hello`);
  say(`  npx -y deno@2.9.3 task client status`);
  say("Ctrl+C stops every node");
}
