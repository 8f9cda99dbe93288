/**
 * RENAME, RENAMENX, COPY: commands over two keys.
 *
 * The store changes one key atomically at a time (per-key Paxos), so moving
 * or copying a value between two different keys could not be atomic: a
 * rename done as a conditional put of the destination and a conditional
 * delete of the source lets other clients see both keys, or neither after a
 * failure between the two. Rather than imitate them, these commands answer
 * everything Redis decides from the source alone (`-ERR no such key`, the
 * same key named twice, COPY's options) and refuse two distinct keys with
 * Redis Cluster's `-CROSSSLOT`, as Redis Cluster does for keys in different
 * slots.
 */
import type { Ctx } from "../context.ts";
import { fail, integer, key, RespError, SYNTAX, word } from "../args.ts";
import { err, int, OK, type Reply } from "../reply.ts";
import { readFailure, readKeys } from "../store.ts";
import { crossKeys } from "./rmw.ts";

/** Whether the source exists, as its coordinator reads it (a failed read is the command's error). */
async function sourceExists(ctx: Ctx, k: string): Promise<boolean> {
  const [r] = await readKeys(ctx.gw.node, [k]);
  const failed = readFailure(r);
  if (failed) throw new RespError(failed);
  return r.found;
}

async function renameGeneric(ctx: Ctx, args: Uint8Array[], nx: boolean): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const src = key(args[1], limits);
  const dst = key(args[2], limits);
  if (!await sourceExists(ctx, src)) return err("no such key");
  if (src === dst) return nx ? int(0) : OK;
  return crossKeys(nx ? "RENAMENX" : "RENAME");
}

export const rename = (ctx: Ctx, args: Uint8Array[]): Promise<Reply> => renameGeneric(ctx, args, false);
export const renamenx = (ctx: Ctx, args: Uint8Array[]): Promise<Reply> => renameGeneric(ctx, args, true);

export async function copy(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
  const limits = ctx.gw.node.config.limits;
  const src = key(args[1], limits);
  const dst = key(args[2], limits);
  for (let i = 3; i < args.length; i++) {
    const opt = word(args[i]);
    if (opt === "replace") continue;
    if (opt !== "db" || i + 1 >= args.length) fail(SYNTAX);
    if (integer(args[++i]) !== 0) fail("Copying to another database is not allowed in cluster mode");
  }
  if (src === dst) return err("source and destination objects are the same");
  if (!await sourceExists(ctx, src)) return int(0);
  return crossKeys("COPY");
}
