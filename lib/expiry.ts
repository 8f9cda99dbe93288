/**
 * Expiry rules for client writes: what a ttl or an absolute expiry may be,
 * and the absolute expiry a coordinator gives a write.
 *
 * The coordinator fixes an absolute expiry (wall-clock ms since the epoch)
 * once, from its own clock, and the record carries it to every copy: copies
 * then agree on the instant and expire within the cluster's clock offset of
 * each other, instead of each counting a ttl from when it happened to
 * receive the write. How an expired record is read, kept and purged is in
 * record.ts and tombstones.ts.
 */
import { Code, KvError } from "./errors.ts";
import type { WriteRequest } from "./transport.ts";

/** The longest time to live accepted, and how far ahead an absolute expiry may be: 10 years. */
export const MAX_TTL_MS = 10 * 365 * 86_400_000;

/**
 * Checks a write's expiry fields (0 = not given): a ttl from 1 ms to
 * {@link MAX_TTL_MS}, or an absolute expiry up to that far ahead of
 * `nowMs`. An absolute expiry already past is accepted: the write is stored
 * already expired, as Redis's SET with a past EXAT deletes the key.
 */
export function checkExpiry(ttlMs: number, expiresAtMs: number, nowMs = Date.now()): void {
  for (const [name, v] of [["ttl_ms", ttlMs], ["expires_at_ms", expiresAtMs]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new KvError(
        Code.INVALID_ARGUMENT,
        `${name} must be 0 (none) or a positive number of ms, got ${v}`,
      );
    }
  }
  if (ttlMs !== 0 && expiresAtMs !== 0) {
    throw new KvError(Code.INVALID_ARGUMENT, "give ttl_ms or expires_at_ms, not both");
  }
  if (ttlMs > MAX_TTL_MS) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `ttl_ms ${ttlMs} is over the limit of ${MAX_TTL_MS} ms (10 years)`,
    );
  }
  if (expiresAtMs > nowMs + MAX_TTL_MS) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `expires_at_ms ${expiresAtMs} is more than 10 years ahead of this node's clock`,
    );
  }
}

/** The absolute expiry a coordinator stores with a write (undefined: none); `nowMs` is its clock. */
export function expiryOf(w: Pick<WriteRequest, "ttlMs" | "expiresAtMs" | "tombstone">, nowMs: number) {
  if (w.tombstone) return undefined;
  if (w.ttlMs) return nowMs + w.ttlMs;
  return w.expiresAtMs || undefined;
}
