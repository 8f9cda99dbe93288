/**
 * Expiry commands: SETEX, PSETEX, TTL and its kin, EXPIRE and its kin,
 * PERSIST, and GETEX without options.
 *
 * SETEX and PSETEX are plain writes carrying a ttl. TTL & co. read the
 * record's absolute expiry. EXPIRE and PERSIST change an existing key's
 * expiry, a read-modify-write: without conditional writes (their own issue)
 * they go through the store's guarded rewrite (expiry.ts rewriteExpiry:
 * the value read, put back one microsecond above the version read, so a
 * write made after the read wins). That is not linearizable (README's RESP
 * section says what it can do); the conditional forms (NX, XX, GT, LT) and
 * GETEX's options wait for conditional writes, answering an error.
 */
import type { Ctx } from "../context.ts";
import { key, value, word } from "../args.ts";
import { bulk, int, NIL, OK, type Reply } from "../reply.ts";
import { deleteKeys, putKeys, readFailure, readKeys, writeFailure } from "../store.ts";
import { needsError } from "../command.ts";
import { expireAt, expireFlags, stringOptions, writeExpiry } from "../expiry_args.ts";
import { rewriteExpiry } from "../../expiry.ts";

/** SETEX key seconds value, PSETEX key ms value: a put with a ttl. */
export async function setex(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const k = key(args[1], limits);
  const cmd = word(args[0]);
  const expiry = writeExpiry(args[2], cmd === "setex" ? "ex" : "px", cmd, Date.now());
  const [r] = await putKeys(ctx.gw.node, [{ key: k, value: value(args[3], limits), ...expiry }]);
  return writeFailure(r) ?? OK;
}

/**
 * TTL, PTTL (time left), EXPIRETIME, PEXPIRETIME (the instant): -2 without
 * the key, -1 without an expiry. Seconds round as Redis's do ((ms+500)/1000);
 * time left is by this node's clock, 0 when a copy read still holds a value
 * this clock has seen expire.
 */
export async function ttl(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const cmd = word(args[0]);
  const [r] = await readKeys(ctx.gw.node, [key(args[1], ctx.gw.node.config.limits)]);
  const failed = readFailure(r);
  if (failed) return failed;
  if (!r.found) return int(-2);
  if (!r.expiresAtMs) return int(-1);
  const ms = Math.max(0, cmd.endsWith("expiretime") ? r.expiresAtMs : r.expiresAtMs - Date.now());
  return int(cmd.startsWith("p") ? ms : Math.floor((ms + 500) / 1000));
}

/**
 * EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key n: :1 when set, :0 when the key is
 * absent. A time already past deletes the key (Redis's rule) with a
 * tombstone after reading that it exists. A rewrite that loses to a write
 * made after its read still answers :1: that write is ordered after it.
 */
export async function expire(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const cmd = word(args[0]);
  const k = key(args[1], ctx.gw.node.config.limits);
  const flags = expireFlags(args, 3);
  const nowMs = Date.now();
  const at = expireAt(args[2], cmd, nowMs);
  if (flags.length > 0) return needsError(`${cmd.toUpperCase()} ... ${flags[0]}`, "conditional writes");
  if (at <= nowMs) return await deleteIfPresent(ctx, k);
  const relative = cmd === "expire" || cmd === "pexpire";
  const w = await rewriteExpiry(
    ctx.gw.node.coordinator,
    k,
    relative ? { ttlMs: at - nowMs } : { expiresAtMs: at },
  );
  if (!w) return int(0);
  return writeFailure(w) ?? int(1);
}

async function deleteIfPresent(ctx: Ctx, k: string): Promise<Reply> {
  const [r] = await readKeys(ctx.gw.node, [k]);
  const failed = readFailure(r);
  if (failed || !r.found) return failed ?? int(0);
  const [w] = await deleteKeys(ctx.gw.node, [k]);
  return writeFailure(w) ?? int(1);
}

/** PERSIST key: :1 when an expiry was removed, :0 when the key is absent or has none. */
export async function persist(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  const w = await rewriteExpiry(ctx.gw.node.coordinator, k, {}, (r) => !!r.expiresAtMs);
  if (!w) return int(0);
  return writeFailure(w) ?? int(1);
}

/** GETEX key: a GET. Its options change the expiry of the value read: they wait for conditional writes. */
export async function getex(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  const o = stringOptions(args, 2, "getex");
  const first = o.expiry?.kind.toUpperCase() ?? o.conditional[0];
  if (first) return needsError(`GETEX ... ${first}`, "conditional writes");
  const [r] = await readKeys(ctx.gw.node, [k]);
  return readFailure(r) ?? (r.found ? bulk(r.value) : NIL);
}
