/**
 * Read-modify-write string commands: SETNX, MSETNX, GETSET, GETDEL,
 * APPEND, SETRANGE, each through the conditional-write loop (../cas.ts), so
 * two clients appending to one key through different nodes both land.
 *
 * MSETNX is all-or-nothing only when it names one key: the store changes
 * one key atomically at a time (each key is its own consensus group), so
 * MSETNX over several keys is refused as Redis Cluster refuses keys in
 * different slots (`-CROSSSLOT`), rather than half-applied.
 */
import type { Ctx } from "../context.ts";
import { fail, integer, key, value } from "../args.ts";
import { bulk, coded, err, int, NIL, type Reply } from "../reply.ts";
import { keptExpiry, lwtCall, readModifyWrite } from "../cas.ts";
import type { KvNode } from "../../node.ts";

const TOO_BIG = "string exceeds maximum allowed size (proto-max-bulk-len)";

/** Redis Cluster's refusal of keys in different slots, saying why it applies here. */
export function crossKeys(what: string): Reply {
  return coded(
    "CROSSSLOT",
    `Keys in request don't hash to the same slot (${what} over several keys cannot be atomic here: each key is its own consensus group)`,
  );
}

/** SETNX's and MSETNX's one conditional put: 1 when the key was absent and is now set. */
async function putIfAbsent(node: KvNode, k: string, v: Uint8Array): Promise<Reply> {
  const r = await lwtCall(() => node.lwt.putIf(k, v, { kind: "absent" }));
  return int(r.applied ? 1 : 0);
}

export function setnx(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  return putIfAbsent(ctx.gw.node, key(args[1], limits), value(args[2], limits));
}

export function msetnx(ctx: Ctx, args: Uint8Array[]): Reply | Promise<Reply> {
  if (args.length % 2 !== 1) return err("wrong number of arguments for 'msetnx' command");
  const limits = ctx.gw.node.config.limits;
  const items = new Map<string, Uint8Array>();
  for (let i = 1; i < args.length; i += 2) items.set(key(args[i], limits), value(args[i + 1], limits));
  if (items.size > 1) return crossKeys("MSETNX");
  const [[k, v]] = items;
  return putIfAbsent(ctx.gw.node, k, v);
}

// GETSET discards the key's TTL, as Redis's does: its write carries no expiry.
export function getset(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const v = value(args[2], limits);
  return readModifyWrite(ctx.gw.node, "GETSET", key(args[1], limits), (held) => ({
    write: v,
    answer: held ? bulk(held.value) : NIL,
  }));
}

export function getdel(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  return readModifyWrite(
    ctx.gw.node,
    "GETDEL",
    k,
    (held) => held ? { write: null, answer: bulk(held.value) } : { answer: NIL },
  );
}

export function append(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const k = key(args[1], limits);
  const tail = args[2].slice();
  return readModifyWrite(ctx.gw.node, "APPEND", k, (held) => {
    const old = held?.value ?? new Uint8Array(0);
    if (old.length + tail.length > limits.maxValueBytes) fail(TOO_BIG);
    const next = new Uint8Array(old.length + tail.length);
    next.set(old), next.set(tail, old.length);
    // APPEND keeps the key's TTL, as in Redis.
    return { write: next, expiry: keptExpiry(held), answer: int(next.length) };
  });
}

export function setrange(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const k = key(args[1], limits);
  const offset = integer(args[2]);
  if (offset < 0) fail("offset is out of range");
  const part = args[3].slice();
  return readModifyWrite(ctx.gw.node, "SETRANGE", k, (held) => {
    const old = held?.value ?? new Uint8Array(0);
    // Setting nothing changes nothing (and creates no key), as in Redis.
    if (part.length === 0) return { answer: int(old.length) };
    if (offset + part.length > limits.maxValueBytes) fail(TOO_BIG);
    const next = new Uint8Array(Math.max(old.length, offset + part.length));
    next.set(old), next.set(part, offset);
    return { write: next, expiry: keptExpiry(held), answer: int(next.length) };
  });
}
