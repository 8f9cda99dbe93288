/**
 * Reading Redis's expiry arguments: SET's and GETEX's options, EXPIRE's
 * NX/XX/GT/LT flags, and the expire times themselves, with Redis 7.0's
 * checks in Redis's order and its error words (t_string.c, expire.c), so a
 * client sees the same error for the same bad command.
 *
 * Pure: the time is passed in. The one difference from Redis is the
 * store's limit (expiry.ts MAX_TTL_MS): an expiry more than 10 years ahead
 * is refused, with Redis's words and the reason appended.
 */
import { fail, integer64, LLONG_MAX, LLONG_MIN, SYNTAX, text, word } from "./args.ts";
import { MAX_TTL_MS } from "../expiry.ts";

/** How an expiry argument counts: EX/PX from now, EXAT/PXAT from the epoch. */
export type ExpiryKind = "ex" | "px" | "exat" | "pxat";

/** SET's and GETEX's options, as Redis's parser reads them. */
export interface StringOptions {
  /** The conditional options (NX, XX, GET, KEEPTTL, PERSIST) given, in argument order, upper-case. */
  conditional: string[];
  expiry?: { kind: ExpiryKind; arg: Uint8Array };
}

/** What a write stores: a time to live, or an absolute expiry (ms since the epoch). */
export interface WriteExpiry {
  ttlMs?: number;
  expiresAtMs?: number;
}

/**
 * SET's (from argument 3) or GETEX's (from argument 2) options. Redis's
 * rules: NX and XX exclude each other, one expiry kind at most (repeated,
 * the last counts), KEEPTTL (SET) and
 * PERSIST (GETEX) exclude every expiry; anything else is a syntax error.
 */
export function stringOptions(args: Uint8Array[], from: number, cmd: "set" | "getex"): StringOptions {
  const o: StringOptions = { conditional: [] };
  const has = (w: string) => o.conditional.includes(w.toUpperCase());
  const kind = () => o.expiry?.kind;
  for (let j = from; j < args.length; j++) {
    const opt = word(args[j]);
    const next = j + 1 < args.length;
    const isSet = cmd === "set";
    const noTtlOpt = !has("keepttl") && !has("persist");
    if (opt === "nx" && isSet && !has("xx")) o.conditional.push("NX");
    else if (opt === "xx" && isSet && !has("nx")) o.conditional.push("XX");
    else if (opt === "get" && isSet) o.conditional.push("GET");
    else if (opt === "keepttl" && isSet && !has("persist") && !kind()) o.conditional.push("KEEPTTL");
    else if (opt === "persist" && !isSet && !kind() && !has("keepttl")) o.conditional.push("PERSIST");
    else if (isExpiryKind(opt) && noTtlOpt && next && (!kind() || kind() === opt)) {
      o.expiry = { kind: opt, arg: args[++j] };
    } else fail(SYNTAX);
  }
  return o;
}

function isExpiryKind(w: string): w is ExpiryKind {
  return w === "ex" || w === "px" || w === "exat" || w === "pxat";
}

/** Redis's reply to an expire time it refuses. */
export function invalidExpireTime(cmd: string): string {
  return `invalid expire time in '${cmd}' command`;
}

/** Refuses an absolute expiry past the store's limit, in Redis's words with the reason. */
function checkStoreLimit(atMs: bigint, nowMs: number, cmd: string): void {
  if (atMs > BigInt(nowMs + MAX_TTL_MS)) {
    fail(`${invalidExpireTime(cmd)}: more than 10 years ahead, this store's limit`);
  }
}

/**
 * An expire time of SET, SETEX, PSETEX (Redis's getExpireMillisecondsOrReply):
 * not an integer, not positive, or overflowing is refused in Redis's words.
 * EX/PX become a ttl (the write's coordinator fixes the instant), EXAT/PXAT
 * an absolute expiry (already past is accepted: stored expired, reads absent).
 */
export function writeExpiry(arg: Uint8Array, kind: ExpiryKind, cmd: string, nowMs: number): WriteExpiry {
  let ms = integer64(arg);
  const seconds = kind === "ex" || kind === "exat";
  if (ms <= 0n || (seconds && ms > LLONG_MAX / 1000n)) fail(invalidExpireTime(cmd));
  if (seconds) ms *= 1000n;
  const relative = kind === "ex" || kind === "px";
  if (relative && ms + BigInt(nowMs) > LLONG_MAX) fail(invalidExpireTime(cmd));
  checkStoreLimit(relative ? ms + BigInt(nowMs) : ms, nowMs, cmd);
  return relative ? { ttlMs: Number(ms) } : { expiresAtMs: Number(ms) };
}

/** EXPIRE's flags (NX, XX, GT, LT), upper-case, with Redis's errors for unknown or clashing ones. */
export function expireFlags(args: Uint8Array[], from: number): string[] {
  const flags = new Set<string>();
  for (let j = from; j < args.length; j++) {
    const f = word(args[j]);
    if (!["nx", "xx", "gt", "lt"].includes(f)) fail(`Unsupported option ${text(args[j])}`);
    flags.add(f.toUpperCase());
  }
  if (flags.has("NX") && flags.size > 1) {
    fail("NX and XX, GT or LT options at the same time are not compatible");
  }
  if (flags.has("GT") && flags.has("LT")) fail("GT and LT options at the same time are not compatible");
  return [...flags];
}

/**
 * Whether EXPIRE's flags let it set `atMs` on a key whose expiry is
 * `currentMs` (0: none), by Redis 7.0's rules (expire.c): NX only without
 * an expiry, XX only with one; GT and LT compare with the current expiry,
 * a key without one counting as an infinite TTL (so GT never, LT always).
 */
export function expireAllowed(flags: readonly string[], currentMs: number, atMs: number): boolean {
  const has = (f: string) => flags.includes(f);
  if (has("NX") && currentMs) return false;
  if (has("XX") && !currentMs) return false;
  if (has("GT") && (!currentMs || atMs <= currentMs)) return false;
  if (has("LT") && currentMs && atMs >= currentMs) return false;
  return true;
}

/**
 * EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT's time as an absolute instant (ms):
 * any integer (a past one deletes the key), refused only on overflow, as
 * Redis does, or past the store's limit.
 */
export function expireAt(arg: Uint8Array, cmd: string, nowMs: number): number {
  let when = integer64(arg);
  const seconds = cmd === "expire" || cmd === "expireat";
  if (seconds) {
    if (when > LLONG_MAX / 1000n || when < LLONG_MIN / 1000n) fail(invalidExpireTime(cmd));
    when *= 1000n;
  }
  const base = cmd === "expire" || cmd === "pexpire" ? BigInt(nowMs) : 0n;
  if (when > LLONG_MAX - base) fail(invalidExpireTime(cmd));
  when += base;
  checkStoreLimit(when, nowMs, cmd);
  // Far in the past is just "past": clamp so the number stays exact.
  return when < 0n ? 0 : Number(when);
}
