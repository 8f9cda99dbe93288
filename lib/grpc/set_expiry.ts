/**
 * EXPIRE and PERSIST from a client: a compare-and-set loop over the store's
 * conditional writes, as the Redis gateway's EXPIRE and PERSIST run
 * (../resp/cas.ts), so the CLI and the gateway change an expiry one way.
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
import { sleep } from "../async.ts";
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

/** Conditional writes lost to other writers before the change gives up (each retry writes the newer value). */
export const MAX_ATTEMPTS = 32;

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
  let held = {
    value: read.value,
    version: { timestamp: read.timestamp, versionNode: read.versionNode ?? "" },
  };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const w = await client.putIf(
      key,
      held.value,
      { kind: "version", version: held.version },
      ttlMs ? { ttlMs } : {},
    );
    if (w.applied) return { outcome: "applied", version: w.version!, nodeId: w.nodeId, attempts: attempt };
    if (!w.current) return { outcome: "gone" };
    held = w.current;
    // Writers that collided retry at random moments, so the one that lost does not lose to the same crowd again.
    await sleep(Math.random() * Math.min(2 ** attempt, 50));
  }
  throw new KvError(
    Code.FAILED_PRECONDITION,
    `lost the race for ${key} to other writers ${MAX_ATTEMPTS} times; its expiry was not changed`,
  );
}
