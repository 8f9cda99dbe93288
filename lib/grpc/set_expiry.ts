/**
 * EXPIRE and PERSIST from a client: a compare-and-set loop (../cas_loop.ts)
 * over the store's conditional writes, as the Redis gateway's EXPIRE and
 * PERSIST run (../resp/cas.ts), so the CLI and the gateway change an expiry
 * one way.
 *
 * The key is read, then its value is written back with the new expiry on
 * the condition that the key still holds the version read. A write made in
 * between fails the condition and hands back the key's current value and
 * version; the loop writes that back instead, a bounded number of times.
 * So the value read is never put back over a newer one, and each applied
 * change is linearizable per key. Conditional writes go through per-key
 * consensus: they need a majority of the key's replicas (at replication
 * factor 2, both), else UNAVAILABLE, with nothing changed.
 */
import { casLoop, type CasStep, MAX_ATTEMPTS } from "../cas_loop.ts";
import { Code, KvError } from "../errors.ts";
import type { Version } from "../record.ts";
import type { KvClient } from "./kv_client.ts";

/** What a change of expiry did. */
export type ExpiryChange =
  /** The key was not found: nothing to change. */
  | { outcome: "absent" }
  /** The key was found, then expired or was deleted before the change applied: nothing written. */
  | { outcome: "gone" }
  /** PERSIST of a key that has no expiry: nothing written. */
  | { outcome: "unchanged" }
  /** Written at `version` by `nodeId`, after `attempts` conditional writes (more than 1: races lost). */
  | { outcome: "applied"; version: Version; nodeId: string; attempts: number };

/** The value and version an attempt writes on. */
type Held = { value: Uint8Array; version: Version };

/** The calls the change makes. */
export type ExpiryClient = Pick<KvClient, "get" | "putIf">;

/**
 * Gives `key` a time to live of `ttlMs` (counted from when the key's leader
 * applies it), or removes its expiry (`ttlMs` null: PERSIST).
 */
export async function setExpiry(
  client: ExpiryClient,
  key: string,
  ttlMs: number | null,
): Promise<ExpiryChange> {
  const read = await client.get(key);
  if (!read.found) return { outcome: "absent" };
  if (ttlMs === null && !read.expiresAtMs) return { outcome: "unchanged" };
  const start: Held = {
    value: read.value,
    version: { timestamp: read.timestamp, versionNode: read.versionNode ?? "" },
  };
  const changed = await casLoop(start, async (held, attempt): Promise<CasStep<Held, ExpiryChange>> => {
    const w = await client.putIf(
      key,
      held.value,
      { kind: "version", version: held.version },
      ttlMs ? { ttlMs } : {},
    );
    if (w.applied) {
      return { done: { outcome: "applied", version: w.version!, nodeId: w.nodeId, attempts: attempt } };
    }
    return w.current ? { retry: w.current } : { done: { outcome: "gone" } };
  });
  if (changed) return changed.result;
  throw new KvError(
    Code.FAILED_PRECONDITION,
    `lost the race for ${key} to other writers ${MAX_ATTEMPTS} times; its expiry was not changed`,
  );
}
