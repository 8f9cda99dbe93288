/**
 * Key commands: DEL, UNLINK, EXISTS, TYPE, and the
 * cluster-wide ones (SCAN, KEYS, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL) that
 * list every node through cluster_keys.ts.
 *
 * DEL's count comes from a read just before the deletes: the deletes
 * themselves are unconditional tombstones, so a key deleted by two clients
 * at once may be counted by both (README). TTL and its kin are in
 * expiry.ts.
 */
import type { Ctx } from "../context.ts";
import { fail, integer, key, SYNTAX, text, utf8Text, word } from "../args.ts";
import { arr, bulk, bulks, err, int, NIL, OK, type Reply } from "../reply.ts";
import { checkKeyCount, deleteKeys, firstFailure, readFailure, readKeys, writeFailure } from "../store.ts";
import { globMatcher } from "../glob.ts";
import { errorMessage } from "../../errors.ts";

/** Keys per page when a command walks the whole keyspace. */
const WALK_PAGE = 1000;

function keysOf(ctx: Ctx, args: Uint8Array[]): string[] {
  checkKeyCount(ctx.gw.node, args.length - 1);
  const limits = ctx.gw.node.config.limits;
  return args.slice(1).map((a) => key(a, limits));
}

/** How many of `keys` (repeats counted, as Redis does) exist. */
async function countExisting(ctx: Ctx, keys: string[]): Promise<number | Reply> {
  const rs = await readKeys(ctx.gw.node, [...new Set(keys)]);
  const failed = firstFailure(rs, readFailure);
  if (failed) return failed;
  const found = new Set(rs.filter((r) => r.found).map((r) => r.key));
  return keys.filter((k) => found.has(k)).length;
}

export async function del(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const keys = [...new Set(keysOf(ctx, args))];
  const existing = await countExisting(ctx, keys);
  if (typeof existing !== "number") return existing;
  const ws = await deleteKeys(ctx.gw.node, keys);
  return firstFailure(ws, writeFailure) ?? int(existing);
}

export async function exists(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const n = await countExisting(ctx, keysOf(ctx, args));
  return typeof n === "number" ? int(n) : n;
}

export async function type(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const n = await countExisting(ctx, keysOf(ctx, args));
  return typeof n === "number" ? { k: "status", s: n > 0 ? "string" : "none" } : n;
}

export async function dbsize(ctx: Ctx): Promise<Reply> {
  return int(await ctx.gw.keys.approximateCount());
}

/** SCAN's options. */
interface ScanOptions {
  match?: (k: string) => boolean;
  count: number;
  /** TYPE: any type but "string" matches nothing here. */
  none: boolean;
}

function scanOptions(args: Uint8Array[], from: number): ScanOptions {
  const o: ScanOptions = { count: 10, none: false };
  for (let i = from; i < args.length; i++) {
    const opt = word(args[i]);
    if (i + 1 >= args.length) fail(SYNTAX);
    const v = args[++i];
    if (opt === "match") o.match = globMatcher(utf8Text(v, "pattern"));
    else if (opt === "count") {
      o.count = integer(v);
      if (o.count < 1) fail(SYNTAX);
    } else if (opt === "type") o.none = word(v) !== "string";
    else fail(SYNTAX);
  }
  return o;
}

/** SCAN cursor [MATCH p] [COUNT n] [TYPE t]: one node's page per call, the cursor naming where it stands. */
export async function scan(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const raw = text(args[1]);
  if (!/^[0-9]+$/.test(raw) || raw.length > 16 || !Number.isSafeInteger(Number(raw))) fail("invalid cursor");
  const cursor = Number(raw);
  const o = scanOptions(args, 2);
  const cursors = ctx.s.cursors;
  const state = cursor === 0
    ? { nodes: ctx.gw.keys.servingNodes(), index: 0, cursor: "" }
    : cursors.get(cursor);
  if (!state) return err("invalid cursor");
  const found: string[] = [];
  while (state.index < state.nodes.length && found.length < o.count) {
    const id = state.nodes[state.index];
    let page;
    try {
      page = await ctx.gw.keys.page(id, state.cursor, o.count);
    } catch (e) {
      // The node's keys would be missed: the scan cannot keep its guarantee.
      cursors.drop(cursor);
      return err(`SCAN cannot list node ${id} (${errorMessage(e)}); start the scan again`);
    }
    for (const k of page.keys) if (!o.none && (!o.match || o.match(k))) found.push(k);
    state.cursor = page.next;
    if (page.next === "") state.index++;
    if (page.next !== "") break;
  }
  if (state.index >= state.nodes.length) {
    if (cursor !== 0) cursors.drop(cursor);
    return arr([bulk("0"), bulks(found)]);
  }
  const next = cursors.save(state, cursor === 0 ? undefined : cursor);
  return arr([bulk(String(next)), bulks(found)]);
}

/** KEYS pattern: every matching key of the cluster, bounded by resp.keys_limit. */
export async function keys(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const match = globMatcher(utf8Text(args[1], "pattern"));
  const limit = ctx.gw.settings.keysLimit;
  const out: string[] = [];
  for await (const page of ctx.gw.keys.all(WALK_PAGE)) {
    for (const k of page) if (match(k)) out.push(k);
    if (out.length > limit) {
      return err(`KEYS matches more than ${limit} keys (resp.keys_limit); use SCAN with MATCH`);
    }
  }
  return bulks(out);
}

/** RANDOMKEY: a key from a random serving node's first page (not uniform over the keyspace). */
export async function randomkey(ctx: Ctx): Promise<Reply> {
  const nodes = ctx.gw.keys.servingNodes();
  for (let tries = nodes.length; tries > 0; tries--) {
    const id = nodes.splice(Math.floor(Math.random() * nodes.length), 1)[0];
    const page = await ctx.gw.keys.page(id, "", 100);
    if (page.keys.length > 0) return bulk(page.keys[Math.floor(Math.random() * page.keys.length)]);
  }
  return NIL;
}

/** FLUSHDB / FLUSHALL [ASYNC|SYNC]: a tombstone for every key, page by page (resp.disable_flush refuses it). */
export async function flush(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  if (args.length > 2) return err(SYNTAX);
  if (args.length === 2 && !["async", "sync"].includes(word(args[1]))) return err(SYNTAX);
  const name = word(args[0]).toUpperCase();
  if (ctx.gw.settings.disableFlush) return err(`${name} is disabled on this cluster (resp.disable_flush)`);
  const node = ctx.gw.node;
  const batch = Math.min(WALK_PAGE, node.config.limits.maxBatchItems);
  for await (const page of ctx.gw.keys.all(batch)) {
    const failed = firstFailure(await deleteKeys(node, page), writeFailure);
    if (failed) return failed;
  }
  return OK;
}
