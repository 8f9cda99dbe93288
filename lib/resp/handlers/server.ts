/**
 * Server commands: COMMAND (from the table), INFO, CONFIG GET, TIME.
 *
 * INFO describes the cluster honestly rather than imitate a Redis server:
 * no replication links or persistence of its own, but the node's id, the
 * members and the keys. CONFIG GET answers the few parameters tools read
 * at start (redis-benchmark asks for `save` and `appendonly`); settings come
 * from the cluster file, so CONFIG SET is refused.
 */
import type { Ctx } from "../context.ts";
import { text, utf8Text, word } from "../args.ts";
import { arr, bulk, bulks, err, int, map, NIL, type Reply } from "../reply.ts";
import type { CommandSpec } from "../command.ts";
import { globMatcher } from "../glob.ts";
import type { CommandTable } from "../table.ts";
import type { KvNode, MemberInfo } from "../../node.ts";

/** The Redis version the gateway answers as: the commands follow Redis 7.0's documented behaviour. */
export const REDIS_VERSION = "7.0.15";

function flagSet(spec: CommandSpec): Reply {
  return { k: "set", v: spec.flags.map((f) => ({ k: "status", s: f }) as Reply) };
}

/** One COMMAND INFO entry, Redis 7's ten fields. */
function info(spec: CommandSpec): Reply {
  return arr([
    bulk(spec.name),
    int(spec.arity),
    flagSet(spec),
    int(spec.firstKey),
    int(spec.lastKey),
    int(spec.step),
    { k: "set", v: [{ k: "status", s: `@${spec.group}` }] },
    { k: "set", v: [] },
    arr([]),
    arr((spec.subcommands ?? []).map(info)),
  ]);
}

function docs(spec: CommandSpec): Reply {
  const fields: [string, Reply][] = [
    ["summary", bulk(spec.summary)],
    ["since", bulk(spec.since)],
    ["group", bulk(spec.group)],
  ];
  if (spec.subcommands) {
    fields.push(["subcommands", { k: "map", v: spec.subcommands.map((s) => [bulk(s.name), docs(s)]) }]);
  }
  return map(fields);
}

function table(ctx: Ctx): CommandTable {
  return ctx.gw.commands;
}

export const commandCmd = {
  all: (ctx: Ctx): Reply => arr(table(ctx).all().map(info)),
  count: (ctx: Ctx): Reply => int(table(ctx).all().length),
  list: (ctx: Ctx): Reply => bulks(table(ctx).all().map((s) => s.name)),
  info: (ctx: Ctx, args: Uint8Array[]): Reply => {
    const names = args.length > 2 ? args.slice(2).map(word) : table(ctx).all().map((s) => s.name);
    return arr(names.map((n) => {
      const spec = table(ctx).find(n);
      return spec ? info(spec) : NIL;
    }));
  },
  docs: (ctx: Ctx, args: Uint8Array[]): Reply => {
    const specs = args.length > 2
      ? args.slice(2).map((a) => table(ctx).find(word(a))).filter((s) => s !== undefined)
      : table(ctx).all();
    return { k: "map", v: specs.map((s) => [bulk(s.name), docs(s)]) };
  },
};

export function time(): Reply {
  const us = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
  return bulks([String(us / 1_000_000n), String(us % 1_000_000n)]);
}

/** CONFIG GET's parameters: what this gateway is, in Redis's names. */
function configValues(ctx: Ctx): [string, string][] {
  const lim = ctx.gw.node.config.limits;
  const rs = ctx.gw.settings;
  return [
    ["save", ""],
    ["appendonly", "no"],
    ["maxmemory", "0"],
    ["maxmemory-policy", "noeviction"],
    ["databases", "1"],
    ["cluster-enabled", "no"],
    ["port", String(ctx.gw.port)],
    ["timeout", String(Math.floor(rs.idleTimeoutMs / 1000))],
    ["maxclients", String(rs.maxConnections)],
    ["proto-max-bulk-len", String(lim.maxValueBytes)],
    ["client-output-buffer-limit", `normal ${rs.outputBufferLimitBytes} 0 0`],
    ["requirepass", ""],
    ["protected-mode", ctx.gw.tokenCheck ? "no" : "yes"],
  ];
}

export const configCmd = {
  get(ctx: Ctx, args: Uint8Array[]): Reply {
    const matchers = args.slice(2).map((a) => globMatcher(utf8Text(a, "pattern").toLowerCase()));
    const found = configValues(ctx).filter(([k]) => matchers.some((m) => m(k)));
    return map(found.map(([k, v]) => [k, bulk(v)]));
  },
  set: (): Reply => err("CONFIG SET is not supported: settings come from the cluster file"),
  resetstat: (): Reply => ({ k: "status", s: "OK" }),
};

/** INFO [section ...]: the sections asked for ("default", "all", "everything" or names). */
export async function infoCmd(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const asked = args.slice(1).map((a) => text(a).toLowerCase());
  const all = asked.length === 0 || asked.some((a) => ["default", "all", "everything"].includes(a));
  const sections = await infoSections(ctx);
  const out = sections
    .filter(([name]) => all || asked.includes(name.toLowerCase()))
    .map(([name, lines]) => `# ${name}\r\n${lines.map(([k, v]) => `${k}:${v}\r\n`).join("")}`);
  return bulk(out.join("\r\n"));
}

/** One member in INFO: its addresses (its RESP port from the member list, 0 = none), status and keys. */
function memberLine(node: KvNode, m: MemberInfo): string {
  const resp = node.membership.list.members.find((x) => x.id === m.id)?.respPort ?? 0;
  return `id=${m.id},addr=${m.host}:${m.port},resp_port=${resp},status=${m.status},keys=${m.keysCount}`;
}

async function infoSections(ctx: Ctx): Promise<[string, [string, string | number][]][]> {
  const gw = ctx.gw;
  const node = gw.node;
  const uptime = Math.floor((Date.now() - gw.startedMs) / 1000);
  const members = node.members();
  const mem = Deno.memoryUsage();
  // INFO is clients' ready check (ioredis): a peer that cannot be listed leaves the keyspace line out, not INFO.
  const keys = await gw.keys.approximateCount().catch(() => 0);
  return [
    ["Server", [
      ["redis_version", REDIS_VERSION],
      ["redis_mode", "standalone"],
      ["kvstore_gateway", "Redis protocol gateway of a kvstore node"],
      ["kvstore_node_id", node.id],
      ["kvstore_cluster_name", node.config.clusterName],
      ["os", Deno.build.os],
      ["arch_bits", 64],
      ["process_id", Deno.pid],
      ["tcp_port", gw.port],
      ["uptime_in_seconds", uptime],
      ["uptime_in_days", Math.floor(uptime / 86400)],
    ]],
    ["Clients", [
      ["connected_clients", gw.sessions.size],
      ["maxclients", gw.settings.maxConnections],
      ["blocked_clients", 0],
    ]],
    ["Memory", [["used_memory", mem.rss], ["used_memory_rss", mem.rss], ["maxmemory", 0]]],
    ["Persistence", [["loading", 0], ["storage_engine", node.config.storage.engine]]],
    ["Stats", [
      ["total_connections_received", gw.connectionsReceived],
      ["total_commands_processed", gw.commandsServed],
      ["rejected_connections", gw.rejectedConnections],
    ]],
    ["Replication", [
      ["role", "master"],
      ["connected_slaves", 0],
      ["kvstore_replication_factor", node.config.replication.replicationFactor],
      ["kvstore_write_quorum", node.config.replication.writeQuorum],
      ["kvstore_read_quorum", node.config.replication.readQuorum],
    ]],
    ["Cluster", [
      ["cluster_enabled", 0],
      ["kvstore_members", members.length],
      ...members.map((m, i) => [`kvstore_member${i}`, memberLine(node, m)] as [string, string]),
    ]],
    // Keys with an expiry are not counted cluster-wide: `expires` and `avg_ttl` stay 0 (README).
    ["Keyspace", keys > 0 ? [["db0", `keys=${keys},expires=0,avg_ttl=0`]] : []],
  ];
}
