/**
 * String commands: GET, SET, MGET, MSET, STRLEN, GETRANGE.
 *
 * Every value is a string, so -WRONGTYPE never happens. A plain SET, with
 * or without an expiry, is a put; its options that depend on the key's
 * state (NX, XX, GET, KEEPTTL) are conditional writes (../cas.ts), so two
 * SET NX through different nodes cannot both succeed. MSET stores its keys
 * as one batch but, like a Redis Cluster spanning slots, not atomically
 * (README).
 */
import type { Ctx } from "../context.ts";
import { integer, key, value } from "../args.ts";
import { arr, bulk, err, int, NIL, OK, type Reply } from "../reply.ts";
import { checkKeyCount, firstFailure, putKeys, readFailure, readKeys, writeFailure } from "../store.ts";
import { keptExpiry, lwtCall, readModifyWrite } from "../cas.ts";
import { stringOptions, writeExpiry } from "../expiry_args.ts";

export async function get(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const [r] = await readKeys(ctx.gw.node, [key(args[1], ctx.gw.node.config.limits)]);
  return readFailure(r) ?? (r.found ? bulk(r.value) : NIL);
}

/**
 * SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL], as Redis 7.0
 * (after its syntax and expire-time checks, in its order): a plain put
 * without NX, XX, GET or KEEPTTL. NX alone is one put-if-absent. Otherwise
 * a compare-and-set at the version read: XX needs the key, NX its absence
 * (a refused condition answers nil, or with GET the old value, and writes
 * nothing); GET answers the old value (nil when absent); KEEPTTL writes the
 * read record's expiry, anything else the given one or none.
 */
export async function set(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const k = key(args[1], limits);
  const v = value(args[2], limits);
  const o = stringOptions(args, 3, "set");
  const expiry = o.expiry ? writeExpiry(o.expiry.arg, o.expiry.kind, "set", Date.now()) : {};
  const has = (w: string) => o.conditional.includes(w);
  if (o.conditional.length === 0) {
    const [r] = await putKeys(ctx.gw.node, [{ key: k, value: v, ...expiry }]);
    return writeFailure(r) ?? OK;
  }
  const node = ctx.gw.node;
  // An absent key has no TTL to keep: NX without GET needs no read.
  if (has("NX") && !has("GET")) {
    const r = await lwtCall(() => node.lwt.putIf(k, v, { kind: "absent" }, expiry));
    return r.applied ? OK : NIL;
  }
  return readModifyWrite(node, "SET", k, (held) => {
    const answer = has("GET") ? (held ? bulk(held.value) : NIL) : OK;
    if ((has("NX") && held) || (has("XX") && !held)) return { answer: has("GET") ? answer : NIL };
    return { write: v, expiry: has("KEEPTTL") ? keptExpiry(held) : expiry, answer };
  });
}

export async function mget(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  checkKeyCount(ctx.gw.node, args.length - 1);
  const keys = args.slice(1).map((a) => key(a, limits));
  const distinct = [...new Set(keys)];
  const rs = await readKeys(ctx.gw.node, distinct, "MGET");
  const failed = firstFailure(rs, readFailure);
  if (failed) return failed;
  const byKey = new Map(rs.map((r) => [r.key, r]));
  return arr(keys.map((k) => {
    const r = byKey.get(k)!;
    return r.found ? bulk(r.value) : NIL;
  }));
}

export async function mset(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  if (args.length % 2 !== 1) return err("wrong number of arguments for 'mset' command");
  const limits = ctx.gw.node.config.limits;
  checkKeyCount(ctx.gw.node, (args.length - 1) / 2);
  // A key named twice takes its last value, as in Redis; a batch names each key once.
  const items = new Map<string, Uint8Array>();
  for (let i = 1; i < args.length; i += 2) {
    const k = key(args[i], limits);
    items.delete(k);
    items.set(k, value(args[i + 1], limits));
  }
  const rs = await putKeys(ctx.gw.node, [...items].map(([k, v]) => ({ key: k, value: v })));
  return firstFailure(rs, writeFailure) ?? OK;
}

export async function strlen(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const [r] = await readKeys(ctx.gw.node, [key(args[1], ctx.gw.node.config.limits)]);
  return readFailure(r) ?? int(r.found ? r.value.length : 0);
}

export async function getrange(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  const start = integer(args[2]);
  const end = integer(args[3]);
  const [r] = await readKeys(ctx.gw.node, [k]);
  const failed = readFailure(r);
  if (failed) return failed;
  return bulk(range(r.found ? r.value : new Uint8Array(0), start, end));
}

/** GETRANGE's slice: negative offsets count from the end, both ends inclusive, clamped. */
export function range(v: Uint8Array, start: number, end: number): Uint8Array {
  const len = v.length;
  if (start < 0 && end < 0 && start > end) return new Uint8Array(0);
  let s = start < 0 ? Math.max(0, len + start) : start;
  let e = end < 0 ? len + end : end;
  if (e < 0) e = 0;
  if (e >= len) e = len - 1;
  if (s > e || len === 0) return new Uint8Array(0);
  s = Math.max(0, s);
  return v.subarray(s, e + 1);
}
