/**
 * Expiry commands: SETEX, PSETEX, TTL and its kin, EXPIRE and its kin,
 * PERSIST, and GETEX.
 *
 * SETEX and PSETEX are plain writes carrying a ttl. TTL & co. read the
 * record's absolute expiry. EXPIRE (with or without NX, XX, GT, LT),
 * PERSIST and GETEX's options change an existing key's expiry, so they are
 * compare-and-set writes at the version read (../cas.ts): a write in
 * between makes them decide again, and none can put an older value back.
 */
import type { Ctx } from "../context.ts";
import { key, value, word } from "../args.ts";
import { bulk, int, NIL, OK, type Reply } from "../reply.ts";
import { putKeys, readFailure, readKeys, writeFailure } from "../store.ts";
import { readModifyWrite } from "../cas.ts";
import { expireAllowed, expireAt, expireFlags, stringOptions, writeExpiry } from "../expiry_args.ts";

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
 * EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key n [NX|XX|GT|LT]: :1 when set, :0
 * when the key is absent or the flags refuse. A time already past deletes
 * the key (Redis's rule).
 */
export async function expire(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const cmd = word(args[0]);
  const k = key(args[1], ctx.gw.node.config.limits);
  const flags = expireFlags(args, 3);
  const nowMs = Date.now();
  return await expireIf(ctx, k, cmd, flags, expireAt(args[2], cmd, nowMs));
}

/**
 * :0 without the key or when the flags refuse (expireAllowed), else the
 * value read written back at its version with the new absolute expiry (a
 * time already past deletes it), :1.
 */
function expireIf(ctx: Ctx, k: string, cmd: string, flags: string[], at: number): Promise<Reply> {
  return readModifyWrite(ctx.gw.node, cmd.toUpperCase(), k, (held) => {
    if (!held || !expireAllowed(flags, held.expiresAtMs, at)) return { answer: int(0) };
    if (at <= Date.now()) return { write: null, answer: int(1) };
    return { write: held.value, expiry: { expiresAtMs: at }, answer: int(1) };
  });
}

/** PERSIST key: :1 when an expiry was removed, :0 when the key is absent or has none. */
export function persist(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  return readModifyWrite(ctx.gw.node, "PERSIST", k, (held) => {
    if (!held?.expiresAtMs) return { answer: int(0) };
    return { write: held.value, answer: int(1) };
  });
}

/**
 * GETEX key [EX|PX|EXAT|PXAT n|PERSIST]: the value (nil when absent, and
 * nothing written). With an option, the value read is written back at its
 * version with the new expiry, or none for PERSIST (a key without one is
 * left as it is).
 */
export async function getex(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const k = key(args[1], ctx.gw.node.config.limits);
  const o = stringOptions(args, 2, "getex");
  const expiry = o.expiry ? writeExpiry(o.expiry.arg, o.expiry.kind, "getex", Date.now()) : undefined;
  const persist = o.conditional.includes("PERSIST");
  if (!expiry && !persist) {
    const [r] = await readKeys(ctx.gw.node, [k]);
    return readFailure(r) ?? (r.found ? bulk(r.value) : NIL);
  }
  return readModifyWrite(ctx.gw.node, "GETEX", k, (held) => {
    if (!held) return { answer: NIL };
    const answer = bulk(held.value);
    if (persist && !held.expiresAtMs) return { answer };
    return { write: held.value, expiry: expiry ?? {}, answer };
  });
}
