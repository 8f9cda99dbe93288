/**
 * `kvstore client`: the command-line client.
 *
 * With no command it runs the users' demonstration (PUT, GET, DELETE, GET
 * after DELETE) against 127.0.0.1:8001. Commands put, get, delete, list and
 * status are for scripts: exit 0 when found or done, 1 when not found, 2 on
 * an error; `--json` prints one JSON object per result.
 */
import { clientTlsFrom, TLS_FLAGS, TLS_HELP } from "./tls_flags.ts";
import { clientTokenFrom, readSecretFlag, TOKEN_FLAG, TOKEN_HELP } from "./token_flag.ts";
import { Buffer } from "node:buffer";
import { KvClient, type Member, type Membership } from "../grpc/kv_client.ts";
import { sleep } from "../async.ts";
import { HashRing } from "../ring.ts";
import { LiveRing } from "../membership/live_ring.ts";
import { movementOf } from "../membership/movement.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import { errorMessage, KvError } from "../errors.ts";
import {
  CONDITION_HELP,
  conditionFrom,
  incrCommand,
  printConditional,
  readVersion,
} from "./conditional_cmd.ts";
import { EXIT, intFlag, parseAddress, parseFlags, UsageError } from "./common.ts";
import { expiryCommand } from "./expiry_cmd.ts";

const HELP = `kvstore client [COMMAND] [flags]

Commands:
  (none)               demonstration: PUT, GET, DELETE, GET after DELETE
  put KEY VALUE        store VALUE (text) under KEY
  get KEY              print KEY's value (exit 1 if not found)
  ttl KEY              print the time KEY has left (exit 1 if not found)
  expire KEY DURATION  give KEY (if found) a new time to live, e.g. 10m
  persist KEY          remove KEY's expiry (expire and persist are conditional writes at
                       the version read: a write made in between is kept, never
                       overwritten; they need a majority of KEY's replicas)
  delete KEY           delete KEY from every copy
  incr KEY [DELTA]     add DELTA (default 1) to the integer in KEY; prints the new value
  list                 keys held by the contacted node (--addr / --node-port)
  status               every node: address, status, keys held, share of the ring; the
                       membership epoch and any range movement under way
                       (--watch: refresh every second until Ctrl+C; --count N: N times)
  remove-node ID       remove a node: a live one streams its ranges out and exits, a
                       dead one's ranges are copied from the others; waits until done
                       (--no-wait: return once the change has started)

Flags:
  --addr HOST:PORT     node to contact (default 127.0.0.1:8001)
  --node-port PORT     node to contact on 127.0.0.1
  --no-route           send every request to that node (it forwards); default:
                       send each key straight to its owner
  --replica            get: answer from the contacted node's own copy
  --timestamp N        put: last-write-wins timestamp: seconds, milliseconds or microseconds
                       since the epoch (read by magnitude; 0 = the cluster stamps it)
  --ttl DURATION       put: expire after DURATION (500ms, 30s, 10m, 2h, 7d; a bare
                       number is seconds)
  --timeout MS         deadline of each call (default 5000)
  --no-wait            remove-node: do not wait for the change to complete
  --cluster-secret-file FILE
                       remove-node: the cluster secret, when the nodes authenticate;
                       signs as "operator" (removal only), or as the node named by
                       --cert when that is a node's certificate (needed with TLS)
  --json               machine-readable output
${CONDITION_HELP}
${TLS_HELP}
${TOKEN_HELP}
  -h, --help           this help

Exit codes: 0 ok or found, 1 not found, 2 error.`;

interface Output {
  json: boolean;
}

const COMMANDS = [
  "put",
  "get",
  "ttl",
  "expire",
  "persist",
  "delete",
  "incr",
  "list",
  "status",
  "remove-node",
];

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** A duration flag in ms: a positive integer with ms, s, m, h or d (bare: seconds). */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? "s"] : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new UsageError(
      `${flag} must be a positive duration such as 500ms, 30s, 10m, 2h or 7d, got "${text}"`,
    );
  }
  return ms;
}

/** Runs the client mode; resolves with the exit code. */
export async function clientCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    addr: { type: "string" },
    "node-port": { type: "string" },
    "no-route": { type: "boolean" },
    replica: { type: "boolean" },
    timestamp: { type: "string" },
    ttl: { type: "string" },
    timeout: { type: "string" },
    json: { type: "boolean" },
    watch: { type: "boolean" },
    count: { type: "string" },
    "if-absent": { type: "boolean" },
    "if-exists": { type: "boolean" },
    "if-version": { type: "string" },
    version: { type: "boolean" },
    float: { type: "boolean" },
    ...TLS_FLAGS,
    "no-wait": { type: "boolean" },
    "cluster-secret-file": { type: "string" },
    ...TOKEN_FLAG,
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  const address = parseAddress(values.addr ?? values["node-port"] ?? "8001");
  const timeoutMs = values.timeout !== undefined ? intFlag(values.timeout, "--timeout", 1) : 5000;
  const tls = clientTlsFrom(values);
  const [command, ...rest] = positionals;
  const out: Output = { json: values.json ?? false };
  // An unknown command is a usage error even when no node can be reached.
  if (command !== undefined && !COMMANDS.includes(command)) {
    throw new UsageError(`unknown client command "${command}" (see client --help)`);
  }
  // Checked before any node is contacted, so a bad duration is a usage error even offline.
  const putTtlMs = values.ttl !== undefined ? parseDuration(values.ttl, "--ttl") : 0;
  const expireMs = command === "expire" && rest[1] !== undefined ? parseDuration(rest[1], "DURATION") : 0;
  let client: KvClient | undefined;
  try {
    const route = !values["no-route"] && command !== "list" && command !== "remove-node";
    const nodeSecret = values["cluster-secret-file"] !== undefined
      ? await readSecret(values["cluster-secret-file"])
      : undefined;
    const clientToken = await clientTokenFrom(values);
    client = await KvClient.connect([address], { route, timeoutMs, tls, nodeSecret, clientToken });
    switch (command) {
      case undefined:
        return await demo(client, address, out);
      case "put": {
        const [key, value] = expectArgs(rest, 2, "put KEY VALUE");
        const condition = conditionFrom(values);
        if (condition) {
          const expiry = putTtlMs ? { ttlMs: putTtlMs } : {};
          return printConditional(await client.putIf(key, value, condition, expiry), "PUT", key, out.json);
        }
        const ts = values.timestamp !== undefined ? intFlag(values.timestamp, "--timestamp", 0) : 0;
        return printWrite(await client.put(key, value, { timestamp: ts, ttlMs: putTtlMs }), "PUT", out);
      }
      case "ttl": {
        const [key] = expectArgs(rest, 1, "ttl KEY");
        return printTtl(await client.get(key), out);
      }
      case "expire":
      case "persist": {
        const [key] = command === "expire"
          ? expectArgs(rest, 2, "expire KEY DURATION")
          : expectArgs(rest, 1, "persist KEY");
        return await expiryCommand(client, key, command === "expire" ? expireMs : null, out.json);
      }
      case "get": {
        const [key] = expectArgs(rest, 1, "get KEY");
        const opts = values.replica ? { fromReplica: true, address } : {};
        const r = await client.get(key, opts);
        return values.version ? printRead(r, out, readVersion(r)) : printRead(r, out);
      }
      case "delete": {
        const [key] = expectArgs(rest, 1, "delete KEY");
        const condition = conditionFrom(values);
        if (condition) {
          return printConditional(await client.deleteIf(key, condition), "DELETE", key, out.json);
        }
        return printWrite(await client.delete(key), "DELETE", out);
      }
      case "incr":
        return await incrCommand(client, rest, values.float ?? false, out.json);
      case "list": {
        expectArgs(rest, 0, "list");
        const keys = await client.listAllKeys(address);
        print(out, { node: address, count: keys.length, keys }, keys.join("\n") || "(no keys)");
        return EXIT.OK;
      }
      case "status": {
        expectArgs(rest, 0, "status");
        if (values.watch || values.count !== undefined) {
          const count = values.count !== undefined ? intFlag(values.count, "--count", 1) : Infinity;
          return await watchStatus(client, out, count);
        }
        const m = await client.membership();
        return printStatus(m, await ownViews(client, m), out);
      }
      case "remove-node": {
        const [id] = expectArgs(rest, 1, "remove-node NODE_ID");
        return await removeNode(client, id, !values["no-wait"], out);
      }
      default:
        throw new UsageError(`unknown client command "${command}" (see client --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = err instanceof KvError ? codeName(err.code) : "ERROR";
    print(out, { error: code, message: errorMessage(err) }, `error: ${code}: ${errorMessage(err)}`);
    return EXIT.ERROR;
  } finally {
    client?.close();
  }
}

/** The users' demonstration: PUT, GET, DELETE, GET after DELETE. */
async function demo(client: KvClient, address: string, out: Output): Promise<number> {
  const m = client.lastMembership;
  const via = m ? ` (${m.responder}, cluster "${m.clusterName}", ${m.members.length} nodes)` : "";
  if (!out.json) console.log(`connected to ${address}${via}`);
  const key = "demo:greeting";
  const value = `hello from kvstore at ${new Date().toISOString()}`;
  printWrite(await client.put(key, value), "PUT", out);
  const got = await client.get(key);
  printRead(got, out);
  printWrite(await client.delete(key), "DELETE", out);
  const after = await client.get(key);
  printRead(after, out);
  const ok = got.found && Buffer.from(got.value).toString() === value && !after.found;
  if (!out.json) console.log(ok ? "demonstration OK" : "demonstration FAILED");
  return ok ? EXIT.OK : EXIT.ERROR;
}

function printWrite(r: WriteResult, op: string, out: Output): number {
  print(
    out,
    {
      op,
      key: r.key,
      success: r.ok,
      message: r.message,
      node: r.nodeId,
      replicas: r.replicas,
      timestamp: r.timestamp,
    },
    `${op} ${r.key}: ${r.ok ? "ok" : "FAILED"} (${r.message}; node ${r.nodeId}, ${r.replicas} ${
      r.replicas === 1 ? "copy" : "copies"
    }, version ${r.timestamp})`,
  );
  return r.ok ? EXIT.OK : EXIT.ERROR;
}

function printRead(r: ReadResult, out: Output, version?: string): number {
  const value = Buffer.from(r.value).toString("utf8");
  print(
    out,
    {
      op: "GET",
      key: r.key,
      found: r.found,
      value: r.found ? value : null,
      node: r.nodeId,
      timestamp: r.timestamp,
      expires_at_ms: r.expiresAtMs ?? 0,
      ...(version !== undefined ? { version } : {}),
    },
    r.found
      ? `GET ${r.key}: "${value}" (node ${r.nodeId}, version ${version ?? r.timestamp}${
        r.expiresAtMs ? `, expires ${new Date(r.expiresAtMs).toISOString()}` : ""
      })`
      : `GET ${r.key}: not found (node ${r.nodeId})`,
  );
  return r.found ? EXIT.OK : EXIT.NOT_FOUND;
}

/** `ttl`: the time left by the answering node's clock, as Redis's PTTL (-1: no expiry; not found: exit 1). */
function printTtl(r: ReadResult, out: Output): number {
  const leftMs = r.found && r.expiresAtMs ? r.ttlMs ?? Math.max(1, r.expiresAtMs - Date.now()) : -1;
  print(
    out,
    {
      op: "TTL",
      key: r.key,
      found: r.found,
      ttl_ms: r.found ? leftMs : null,
      expires_at_ms: r.expiresAtMs ?? 0,
    },
    !r.found
      ? `TTL ${r.key}: not found`
      : leftMs < 0
      ? `TTL ${r.key}: no expiry`
      : `TTL ${r.key}: ${(leftMs / 1000).toFixed(3)} s left (expires ${
        new Date(r.expiresAtMs!).toISOString()
      })`,
  );
  return r.found ? EXIT.OK : EXIT.NOT_FOUND;
}

/**
 * `status --watch`: the table again every second, `count` times (Ctrl+C
 * stops it). On a terminal the screen is cleared first; otherwise (a pipe,
 * a test) refreshes follow each other. A node that does not answer is an
 * error line, and the next refresh tries again.
 */
async function watchStatus(client: KvClient, out: Output, count: number): Promise<number> {
  const tty = Deno.stdout.isTerminal();
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(WATCH_INTERVAL_MS);
    if (tty && !out.json) await Deno.stdout.write(new TextEncoder().encode("\x1b[H\x1b[2J"));
    if (!out.json) console.log(`${new Date().toLocaleTimeString()} (every 1 s; Ctrl+C stops)`);
    try {
      const m = await client.membership();
      printStatus(m, await ownViews(client, m), out);
    } catch (err) {
      const code = err instanceof KvError ? codeName(err.code) : "ERROR";
      print(out, { error: code, message: errorMessage(err) }, `error: ${code}: ${errorMessage(err)}`);
    }
  }
  return EXIT.OK;
}

const WATCH_INTERVAL_MS = 1000;

/** The cluster secret from its file (a trailing newline is not part of it, as for the nodes). */
async function readSecret(path: string): Promise<Uint8Array> {
  return new TextEncoder().encode(await readSecretFlag(path, "--cluster-secret-file"));
}

/** What each member says of itself (keys held, records moved), where it answers. */
async function ownViews(client: KvClient, m: Membership): Promise<Map<string, Member>> {
  const views = new Map<string, Member>();
  await Promise.all(m.members.map(async (n) => {
    const own = await client.membership(n.address).catch(() => undefined);
    const self = own?.members.find((x) => x.id === n.id);
    if (self) views.set(n.id, self);
  }));
  return views;
}

/** Proposes a removal; waits (unless told not to) until the node is no longer a member. */
/** How long remove-node asks again while the cluster answers "retry". */
const REMOVE_RETRY_MS = 30_000;

async function removeNode(client: KvClient, id: string, wait: boolean, out: Output): Promise<number> {
  const credential = client.operatorCredential;
  const ask = () =>
    client.removeNode(id).catch((err) => {
      // A refusal says which credential was refused.
      throw err instanceof KvError
        ? new KvError(err.code, `${err.message} (credential: ${credential})`)
        : err;
    });
  // "retry" means the cluster cannot take the change yet (another change under way, the claimant busy).
  const asked = Date.now();
  let res = await ask();
  while (!res.accepted && res.retry && Date.now() - asked < REMOVE_RETRY_MS) {
    await sleep(500);
    res = await ask();
  }
  print(
    out,
    { op: "remove-node", node: id, credential, ...res },
    `remove-node ${id} (credential: ${credential}): ${res.message}`,
  );
  if (!res.accepted) return EXIT.ERROR;
  if (!wait) return EXIT.OK;
  const started = Date.now();
  let last = "";
  while (Date.now() - started < 600_000) {
    const m = await client.membership().catch(() => undefined);
    if (m && !m.members.some((n) => n.id === id)) {
      print(
        out,
        { op: "remove-node", node: id, done: true, epoch: m.epoch },
        `${id} removed at epoch ${m.epoch}`,
      );
      return EXIT.OK;
    }
    const line = m
      ? `epoch ${m.epoch}: streamed by ${m.streamed.join(", ") || "none yet"}`
      : "no node answered";
    if (line !== last && !out.json) console.log(line);
    last = line;
    await sleep(500);
  }
  print(
    out,
    { op: "remove-node", node: id, done: false },
    `${id} not removed after 600 s; see client status`,
  );
  return EXIT.ERROR;
}

function printStatus(m: Membership, own: Map<string, Member>, out: Output): number {
  const serving = m.members.filter((n) => n.memberState !== "JOINING");
  const shares = new HashRing(serving.map((n) => n.id), m.virtualNodes).shares();
  const now = Date.now() / 1000;
  const rows = m.members.map((n) => ({
    node: n.id,
    address: n.address,
    status: n.status,
    member: n.memberState,
    keys: own.get(n.id)?.keysCount ?? n.keysCount,
    ring_share: shares.get(n.id) ?? 0,
    last_contact_s: Math.max(0, Math.round(now - n.lastHeartbeatUnix)),
    recovered: own.get(n.id)?.recoveredRecords ?? n.recoveredRecords,
    // The member's clock against the responder's (heartbeat round trips).
    clock_offset_ms: n.clockOffset?.offsetMs,
    clock_uncertainty_ms: n.clockOffset?.uncertaintyMs,
    not_serving: (own.get(n.id)?.statusReason || undefined) as string | undefined,
  }));
  // The nodes that gain ranges, computed from the rings as the nodes do.
  const list = {
    epoch: m.epoch,
    claimant: m.claimant,
    members: m.members.map((n) => ({ id: n.id, host: "", port: 0, state: n.memberState })),
  };
  const moving = movementOf(list, new LiveRing(list, m.virtualNodes), m.replicationFactor, m.streamed);
  const header = [
    `cluster "${m.clusterName}" as ${m.responder} sees it (replication factor ${m.replicationFactor}, ` +
    `membership epoch ${m.epoch}, claimant ${m.claimant || "none"})`,
    moving
      ? `range movement under way: ${moving.node} ${moving.state}; ${moving.streamed.length} of ${moving.gainers.length} ` +
        `new holders have streamed their ranges (waiting for ${moving.waiting.join(", ")})`
      : "no range movement under way",
  ].join("\n");
  const table = [
    ["NODE", "ADDRESS", "STATUS", "KEYS", "RING", "LAST CONTACT", "RECOVERED", "MEMBER", "CLOCK"],
    ...rows.map((r) => [
      r.node,
      r.address,
      r.status,
      String(r.keys),
      `${(r.ring_share * 100).toFixed(1)}%`,
      `${r.last_contact_s}s ago`,
      String(r.recovered),
      r.member,
      clockCell(r.clock_offset_ms, r.clock_uncertainty_ms),
    ]),
  ];
  const reasons = rows.filter((r) => r.not_serving).map((r) => `${r.node} not serving: ${r.not_serving}`);
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const text = table.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join("  ")).join("\n");
  print(
    out,
    {
      cluster: m.clusterName,
      responder: m.responder,
      epoch: m.epoch,
      claimant: m.claimant,
      moving,
      nodes: rows,
    },
    [header, text, ...reasons].join("\n"),
  );
  return EXIT.OK;
}

/** "-100.002s ±1ms": a member's clock against the responder's; "-" for the responder or unmeasured. */
function clockCell(offsetMs?: number, uncertaintyMs?: number): string {
  if (offsetMs === undefined) return "-";
  return `${offsetMs >= 0 ? "+" : ""}${(offsetMs / 1000).toFixed(3)}s ±${uncertaintyMs}ms`;
}

function print(out: Output, json: unknown, text: string): void {
  console.log(out.json ? JSON.stringify(json) : text);
}

function expectArgs(rest: string[], n: number, usage: string): string[] {
  if (rest.length !== n) throw new UsageError(`usage: client ${usage}`);
  return rest;
}

const CODE_NAMES: Record<number, string> = {
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  16: "UNAUTHENTICATED",
};

/** A status code's name, for messages. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}
