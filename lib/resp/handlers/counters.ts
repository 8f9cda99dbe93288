/**
 * Counters: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, through the store's
 * increment (per-key Paxos, lib/lwt), so a counter hit through every node
 * at once loses no increment and gRPC's Increment sees the same key.
 *
 * The store parses and adds as Redis does and fails with Redis's words
 * (`value is not an integer or out of range`, `increment or decrement
 * would overflow`, `value is not a valid float`, `increment would produce
 * NaN or Infinity`); those pass through as `-ERR`. The delta is checked
 * here first, as Redis checks it before looking at the key.
 */
import type { Ctx } from "../context.ts";
import { fail, key, NOT_INTEGER, text } from "../args.ts";
import { bulk, err, int, type Reply } from "../reply.ts";
import { readFailure, readKeys } from "../store.ts";
import { lwtCall } from "../cas.ts";
import { FLOAT_ERROR, FLOAT_RANGE_ERROR, parseFloatStrict, parseInt64 } from "../../lwt/ops.ts";

const MIN = -(2n ** 63n);

async function incrBy(ctx: Ctx, k: Uint8Array, delta: bigint): Promise<Reply> {
  const node = ctx.gw.node;
  const r = await lwtCall(() => node.lwt.increment(key(k, node.config.limits), delta));
  return int(BigInt(r.value));
}

/** A 64-bit integer argument as Redis's string2ll reads it. */
function delta(a: Uint8Array): bigint {
  return parseInt64(text(a)) ?? fail(NOT_INTEGER);
}

export const incr = (ctx: Ctx, args: Uint8Array[]): Promise<Reply> => incrBy(ctx, args[1], 1n);
export const decr = (ctx: Ctx, args: Uint8Array[]): Promise<Reply> => incrBy(ctx, args[1], -1n);
export const incrby = (ctx: Ctx, args: Uint8Array[]): Promise<Reply> => incrBy(ctx, args[1], delta(args[2]));

export function decrby(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const d = delta(args[2]);
  // Negating the smallest int64 overflows: Redis 7.0 refuses it before touching the key.
  if (d === MIN) fail("decrement would overflow");
  return incrBy(ctx, args[1], -d);
}

export async function incrbyfloat(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const node = ctx.gw.node;
  const k = key(args[1], node.config.limits);
  const d = floatDelta(text(args[2]));
  if (!Number.isFinite(d)) return await infinite(ctx, k);
  const r = await lwtCall(() => node.lwt.incrementFloat(k, d));
  return bulk(r.value);
}

/** INCRBYFLOAT by ±inf changes nothing: Redis refuses a held non-float first, then the infinite sum. */
async function infinite(ctx: Ctx, k: string): Promise<Reply> {
  const [r] = await readKeys(ctx.gw.node, [k]);
  const failed = readFailure(r);
  if (failed) return failed;
  const heldOk = !r.found || parseFloatStrict(new TextDecoder().decode(r.value)) !== undefined;
  return err(heldOk ? FLOAT_RANGE_ERROR : FLOAT_ERROR);
}

/**
 * A float argument as Redis's strtold reads it: "inf" is a number there, so
 * the sum, not the argument, is refused (`increment would produce NaN or Infinity`).
 */
function floatDelta(t: string): number {
  const inf = /^([+-]?)inf(inity)?$/i.exec(t);
  if (inf) return inf[1] === "-" ? -Infinity : Infinity;
  return parseFloatStrict(t) ?? fail(FLOAT_ERROR);
}
