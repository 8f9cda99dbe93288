/**
 * The benchmark's RESP rows: redis-benchmark against the memory cluster's
 * Redis protocol gateways (through one node, and spread over the three)
 * and against a real redis-server, with and without pipelining, in the
 * same run as the gRPC rows so their figures compare.
 *
 * `redis-benchmark -t set,get -r 100000 -c 50 [-P 16]`: spread over three
 * means three redis-benchmark processes at once, one per node, splitting
 * the 50 connections and the requests, their rates summed. The issue's
 * targets are printed against the figures (never asserted): pipelined SET
 * and GET at least 10 times the gRPC any-node unary row in keys per second,
 * unpipelined at least that row, and the ratio to redis-server beside them.
 */

/** One redis-benchmark measurement. */
export interface RespRow {
  where: string;
  pipeline: number;
  set: number;
  get: number;
}

/** What to measure. */
export interface RespBenchOptions {
  /** The gateways' ports (one per node). */
  respPorts: number[];
  /** A real redis-server's port, when one runs. */
  redisPort?: number;
  /** Requests per test per run. */
  requests: number;
  log: (msg: string) => void;
}

const CLIENTS = 50;

/** Runs every RESP row: one node, three nodes, redis-server; -P 1 and 16. */
export async function runRespRows(o: RespBenchOptions): Promise<RespRow[]> {
  const rows: RespRow[] = [];
  for (const pipeline of [1, 16]) {
    const n = o.requests * pipeline;
    o.log(`resp: redis-benchmark -t set,get -r 100000 -c ${CLIENTS} -P ${pipeline} -n ${n}`);
    rows.push({ where: "RESP one node", pipeline, ...await sum([o.respPorts[0]], n, CLIENTS, pipeline) });
    rows.push({ where: "RESP three nodes", pipeline, ...await sum(o.respPorts, n, CLIENTS, pipeline) });
    if (o.redisPort) {
      rows.push({ where: "redis-server", pipeline, ...await sum([o.redisPort], n, CLIENTS, pipeline) });
    }
  }
  return rows;
}

/** redis-benchmark on each port at once (clients and requests split), SET and GET rates summed. */
async function sum(ports: number[], requests: number, clients: number, pipeline: number) {
  const runs = await Promise.all(
    ports.map((port) =>
      redisBenchmark(port, Math.ceil(requests / ports.length), Math.ceil(clients / ports.length), pipeline)
    ),
  );
  return { set: runs.reduce((a, r) => a + r.set, 0), get: runs.reduce((a, r) => a + r.get, 0) };
}

async function redisBenchmark(
  port: number,
  n: number,
  c: number,
  p: number,
): Promise<{ set: number; get: number }> {
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-p",
      String(port),
      "-t",
      "set,get",
      "-r",
      "100000",
      "-n",
      String(n),
      "-c",
      String(c),
      "-P",
      String(p),
      "-q",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rate = (name: string) =>
    Number(new RegExp(`${name}: ([0-9.]+) requests per second`).exec(text)?.[1] ?? NaN);
  if (out.code !== 0 || Number.isNaN(rate("SET"))) {
    throw new Error(`redis-benchmark on ${port} failed: ${text} ${new TextDecoder().decode(out.stderr)}`);
  }
  return { set: rate("SET"), get: rate("GET") };
}

/** The rows as a table, and the targets against the gRPC any-node unary rows (keys/s). */
export function respText(rows: RespRow[], anyNode: { put?: number; get?: number }): string {
  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  const redis = (p: number) => rows.find((r) => r.where === "redis-server" && r.pipeline === p);
  const lines = ["RESP (redis-benchmark -t set,get -r 100000 -c 50), requests/s:"];
  for (const r of rows) {
    const ref = redis(r.pipeline);
    const vs = ref && r.where !== "redis-server"
      ? `  (${Math.round((r.set / ref.set) * 100)}% / ${
        Math.round((r.get / ref.get) * 100)
      }% of redis-server)`
      : "";
    lines.push(
      `  ${r.where.padEnd(17)} -P ${String(r.pipeline).padEnd(2)}  SET ${f(r.set).padStart(9)}  GET ${
        f(r.get).padStart(9)
      }${vs}`,
    );
  }
  lines.push("RESP targets (against the gRPC any-node unary rows; printed, not asserted):");
  for (const r of rows.filter((r) => r.where !== "redis-server")) {
    const factor = r.pipeline > 1 ? 10 : 1;
    for (const [op, got, grpc] of [["SET", r.set, anyNode.put], ["GET", r.get, anyNode.get]] as const) {
      if (!grpc) continue;
      const x = got / grpc;
      lines.push(
        `  ${
          x >= factor ? "met    " : "NOT met"
        }  ${r.where} -P ${r.pipeline} ${op} >= ${factor}x any-node unary: ` +
          `${x.toFixed(1)}x (${f(got)} vs ${f(grpc)})`,
      );
    }
  }
  return lines.join("\n");
}
