/**
 * Reading command arguments, with Redis's error replies for bad ones.
 *
 * Arguments arrive as bytes. Keys become the store's string keys: they are
 * shared with the gRPC keyspace, which places keys by their UTF-8 bytes, so
 * a key that is not valid UTF-8 has no faithful string form and is refused
 * rather than silently altered. Values stay bytes (binary-safe) and are
 * copied before they are stored, since they are views of the read buffer.
 */
import { checkKey, checkValue } from "../validate.ts";
import type { Limits } from "../validate.ts";
import { KvError } from "../errors.ts";
import { err, type Reply } from "./reply.ts";

/** A command refused with this reply; thrown by argument readers, caught by the dispatcher. */
export class RespError extends Error {
  constructor(readonly reply: Reply) {
    super(reply.k === "err" ? reply.s : "error");
  }
}

/** Throws the reply `-ERR msg` (or `-CODE msg` when msg starts with "-"). */
export function fail(msg: string): never {
  throw new RespError(err(msg));
}

export const SYNTAX = "syntax error";
export const NOT_INTEGER = "value is not an integer or out of range";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** An argument as text for keywords and names (every byte kept as one char). */
export function text(a: Uint8Array): string {
  return latin1.decode(a);
}

/** An argument as a lower-case keyword. */
export function word(a: Uint8Array): string {
  return latin1.decode(a).toLowerCase();
}

/** An argument as UTF-8 text (names, patterns, messages), refused when not UTF-8. */
export function utf8Text(a: Uint8Array, what: string): string {
  try {
    return utf8.decode(a);
  } catch {
    return fail(`${what} is not valid UTF-8`);
  }
}

/** A key argument as the store's key: valid UTF-8, within the key limits. */
export function key(a: Uint8Array, limits: Limits): string {
  let k: string;
  try {
    k = utf8.decode(a);
  } catch {
    return fail(
      "key is not valid UTF-8: keys are shared with the gRPC keyspace, which places them by their UTF-8 bytes",
    );
  }
  try {
    checkKey(k, limits);
  } catch (e) {
    if (e instanceof KvError) fail(e.message);
    throw e;
  }
  return k;
}

/** A value argument, copied out of the read buffer and checked against the value limit. */
export function value(a: Uint8Array, limits: Limits): Uint8Array {
  try {
    checkValue(a, limits);
  } catch (e) {
    if (e instanceof KvError) fail(`string exceeds maximum allowed size (${e.message})`);
    throw e;
  }
  return a.slice();
}

/** Redis's long long range. */
export const LLONG_MAX = 9223372036854775807n;
export const LLONG_MIN = -9223372036854775808n;

/** An integer argument as Redis reads one (a 64-bit signed decimal, no spaces or '+'), exactly. */
export function integer64(a: Uint8Array): bigint {
  const s = latin1.decode(a);
  if (!/^-?(0|[1-9][0-9]*)$/.test(s) || s.length > 20) fail(NOT_INTEGER);
  const big = BigInt(s);
  if (big > LLONG_MAX || big < LLONG_MIN) fail(NOT_INTEGER);
  return big;
}

/** An integer argument as Redis reads one, as a number (exact up to 2^53). */
export function integer(a: Uint8Array): number {
  return Number(integer64(a));
}
