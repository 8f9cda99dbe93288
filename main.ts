/**
 * kvstore: one executable that runs as a storage node, a client, a load
 * generator, or a local cluster of nodes.
 *
 *   main.ts server [port] [node_id]   a node of the cluster
 *   main.ts client [command]          the command-line client
 *   main.ts bench                     the load generator
 *   main.ts cluster                   every node of the config, as processes
 *   main.ts certs                     a CA and certificates for the cluster
 *
 * `main.ts MODE --help` tells more about each.
 */
import { EXIT, UsageError } from "./lib/cli/common.ts";
import { ConfigError } from "./lib/config.ts";

const USAGE = `kvstore: a Dynamo-style distributed key-value store

Usage:
  kvstore server [PORT] [NODE_ID] [flags]   run a node (default: node1 on 8001)
  kvstore client [COMMAND] [flags]          talk to the cluster (default: a demonstration)
  kvstore bench [flags]                     measure throughput and latency
  kvstore cluster [flags]                   start every node of the config and watch them
  kvstore certs --out DIR [flags]           write a CA, node and client certificates (openssl)

Run "kvstore MODE --help" for the flags of a mode.`;

/** How long the process may take to end by itself after its mode returned. */
const EXIT_GRACE_MS = 1000;

async function main(args: string[]): Promise<number> {
  const [mode, ...rest] = args;
  switch (mode) {
    case "server":
      return await (await import("./lib/cli/server_cmd.ts")).serverCommand(rest);
    case "client":
      return await (await import("./lib/cli/client_cmd.ts")).clientCommand(rest);
    case "bench":
      return await (await import("./lib/cli/bench_cmd.ts")).benchCommand(rest);
    case "cluster":
      return await (await import("./lib/cli/cluster_cmd.ts")).clusterCommand(rest);
    case "certs":
      return await (await import("./lib/cli/certs_cmd.ts")).certsCommand(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return mode === undefined ? EXIT.ERROR : EXIT.OK;
    default:
      console.error(`unknown mode "${mode}"\n\n${USAGE}`);
      return EXIT.ERROR;
  }
}

if (import.meta.main) {
  let code: number = EXIT.ERROR;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`error: ${err.message}`);
    } else {
      console.error(err);
    }
  }
  // Every mode closes what it opened, so the process ends by itself once the
  // last bytes (the GOAWAYs of closed channels) are out; should a library
  // timer keep it alive, it exits anyway after EXIT_GRACE_MS.
  Deno.exitCode = code;
  Deno.unrefTimer(setTimeout(() => Deno.exit(code), EXIT_GRACE_MS));
}
