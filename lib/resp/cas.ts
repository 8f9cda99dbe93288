/**
 * The gateway's read-modify-write path: a compare-and-set loop over the
 * store's conditional writes (lib/lwt), never a read followed by a plain put.
 *
 * A command reads the key, decides from what it holds, and writes on the
 * condition that the key is still at the version it read (or still absent).
 * A writer that got in between makes the write not apply and hands back the
 * key's current record; the command decides again from that, a bounded
 * number of times. So a lost race retries and never overwrites, and each
 * applied write is linearizable per key. UNAVAILABLE (a replica down: at
 * replication factor 2 a conditional write needs both) becomes Redis's
 * `-TRYAGAIN`: nothing was changed, so the client may simply resend.
 */
import type { KvNode } from "../node.ts";
import type { KvRecord, Version } from "../record.ts";
import type { ExpiryRequest, LwtResult } from "../lwt/service.ts";
import { Code, KvError } from "../errors.ts";
import { FLOAT_ERROR, FLOAT_RANGE_ERROR, INT_ERROR, OVERFLOW_ERROR } from "../lwt/ops.ts";
import { casLoop, type CasStep, MAX_ATTEMPTS } from "../cas_loop.ts";
import { RespError } from "./args.ts";
import { coded, err } from "./reply.ts";
import { readFailure, readKeys } from "./store.ts";

/** A key's live value, its version and its expiry (ms since the epoch, 0: none), or undefined when absent. */
export type Held = { value: Uint8Array; version: Version; expiresAtMs: number } | undefined;

/**
 * What a command does with what the key holds: answer without writing, or
 * write (null deletes) then answer. A write stores the expiry given, none
 * without one: a command that keeps the key's TTL passes the held expiresAtMs.
 */
export type Step<T> = { answer: T } | { write: Uint8Array | null; expiry?: ExpiryRequest; answer: T };

/** The held record's expiry, for a write that keeps the key's TTL (none when absent or without one). */
export function keptExpiry(held: Held): ExpiryRequest {
  return held?.expiresAtMs ? { expiresAtMs: held.expiresAtMs } : {};
}

/** Redis's words for a value the store cannot count with; a forwarded operation's error prefixes its node. */
const REDIS_ERRORS = [INT_ERROR, OVERFLOW_ERROR, FLOAT_ERROR, FLOAT_RANGE_ERROR];

/** Runs `decide` against the key until its write applies at the version it decided from. */
export async function readModifyWrite<T>(
  node: KvNode,
  name: string,
  key: string,
  decide: (held: Held) => Step<T>,
): Promise<T> {
  const answered = await casLoop(await readHeld(node, key), async (held): Promise<CasStep<Held, T>> => {
    const step = decide(held);
    if (!("write" in step)) return { done: step.answer };
    const condition = held
      ? { kind: "version" as const, version: held.version }
      : { kind: "absent" as const };
    const r = await lwtCall(() =>
      step.write === null
        ? node.lwt.deleteIf(key, condition)
        : node.lwt.putIf(key, step.write, condition, step.expiry)
    );
    if (r.applied) return { done: step.answer };
    return { retry: heldOf(r.current) };
  });
  if (answered) return answered.result;
  throw new RespError(
    coded(
      "TRYAGAIN",
      `'${name}' lost the race for its key ${MAX_ATTEMPTS} times to other writers; nothing was changed`,
    ),
  );
}

/** A record handed back by a lost race, as a command sees it (a tombstone: absent). */
function heldOf(r: KvRecord | undefined): Held {
  return r && !r.tombstone
    ? {
      value: r.value,
      version: { timestamp: r.timestamp, versionNode: r.versionNode },
      expiresAtMs: r.expiresAtMs ?? 0,
    }
    : undefined;
}

/** The key as its coordinator reads it now (a failed read is the command's error). */
async function readHeld(node: KvNode, key: string): Promise<Held> {
  const [r] = await readKeys(node, [key]);
  const failed = readFailure(r);
  if (failed) throw new RespError(failed);
  return r.found
    ? {
      value: r.value,
      version: { timestamp: r.timestamp, versionNode: r.versionNode ?? "" },
      expiresAtMs: r.expiresAtMs ?? 0,
    }
    : undefined;
}

/**
 * A conditional operation; UNAVAILABLE becomes `-TRYAGAIN` (nothing changed),
 * a counter's error Redis's exact words, other errors pass on as `-ERR`.
 */
export async function lwtCall<R = LwtResult>(op: () => Promise<R>): Promise<R> {
  try {
    return await op();
  } catch (e) {
    if (!(e instanceof KvError)) throw e;
    if (e.code === Code.UNAVAILABLE) throw new RespError(coded("TRYAGAIN", e.message));
    const words = REDIS_ERRORS.find((w) => e.message.endsWith(w));
    throw words ? new RespError(err(words)) : e;
  }
}
