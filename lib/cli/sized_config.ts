/**
 * `cluster --nodes N`: the cluster file, resized to N local nodes.
 *
 * Nodes node1..nodeN listen on consecutive ports from the file's first
 * node's port, each with its own Redis port (consecutive from the first
 * node's, and admin and RESP ports likewise when the first node sets one); every
 * other setting is the file's. The result is written to a
 * temporary file so every node process reads the same one.
 */
import { type ClusterConfig, defaultConfigJson, parseConfig } from "../config.ts";
import { UsageError } from "./common.ts";

/** Writes the resized cluster file; resolves with its path and the parsed configuration. */
export async function sizedConfig(
  path: string | undefined,
  nodes: number,
): Promise<{ path: string; config: ClusterConfig }> {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 100) throw new UsageError("--nodes must be 1 to 100");
  const raw = (path ? JSON.parse(await Deno.readTextFile(path)) : defaultConfigJson()) as {
    nodes?: { host?: string; port?: number; redis_port?: number; admin_port?: number; resp_port?: number }[];
  };
  const first = raw.nodes?.[0] ?? {};
  const port = first.port ?? 8001;
  const redisPort = first.redis_port ?? 6379;
  raw.nodes = Array.from({ length: nodes }, (_, i) => ({
    id: `node${i + 1}`,
    host: first.host ?? "127.0.0.1",
    port: port + i,
    redis_host: "127.0.0.1",
    redis_port: redisPort + i,
    // Admin ports follow the first node's (0 stays off); without one each takes its default.
    ...(first.admin_port !== undefined
      ? { admin_port: first.admin_port === 0 ? 0 : first.admin_port + i }
      : {}),
    // RESP ports likewise (the embedded file's 7001, 7002...); absent or 0 stays off.
    ...(first.resp_port ? { resp_port: first.resp_port + i } : {}),
  }));
  const out = await Deno.makeTempFile({ prefix: "kvstore-cluster-", suffix: ".json" });
  await Deno.writeTextFile(out, JSON.stringify(raw, null, 2));
  return {
    path: out,
    config: parseConfig(raw, `${path ?? "embedded config/cluster.json"} resized to ${nodes} nodes`),
  };
}
