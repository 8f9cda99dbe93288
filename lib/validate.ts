/**
 * Input rules for client requests, checked once at the edge.
 *
 * Each rule throws a `KvError` whose code and message tell the client
 * exactly what was wrong, so bad input never reaches storage or the network.
 */
import { Buffer } from "node:buffer";
import type { ClusterConfig } from "./config.ts";
import { Code, KvError } from "./errors.ts";
import { checkClientAhead } from "./versions.ts";

/** The limits a request is checked against. */
export type Limits = ClusterConfig["limits"];

/** Checks a key: non-empty, at most `max_key_bytes` of UTF-8. */
export function checkKey(key: string, limits: Limits): void {
  if (key.length === 0) throw new KvError(Code.INVALID_ARGUMENT, "key must not be empty");
  // Keys are placed by their UTF-8 bytes: a lone surrogate has none.
  if (!key.isWellFormed()) throw new KvError(Code.INVALID_ARGUMENT, "key is not valid UTF-8 text");
  // A JS string never has fewer UTF-8 bytes than UTF-16 units / 1 and never
  // more than 3 per unit: the exact count is only needed near the limit.
  if (key.length * 3 <= limits.maxKeyBytes) return;
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > limits.maxKeyBytes) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `key is ${bytes} bytes; the limit is ${limits.maxKeyBytes} (limits.max_key_bytes)`,
    );
  }
}

/** Checks a value's size against `max_value_bytes`. */
export function checkValue(value: Uint8Array, limits: Limits): void {
  if (value.byteLength > limits.maxValueBytes) {
    throw new KvError(
      Code.RESOURCE_EXHAUSTED,
      `value is ${value.byteLength} bytes; the limit is ${limits.maxValueBytes} (limits.max_value_bytes)`,
    );
  }
}

/**
 * Checks a client-supplied timestamp (0 = let the cluster assign it): seconds,
 * milliseconds or microseconds since the epoch (see versions.ts), at most
 * `max_clock_skew_ms` ahead of `nowMs`.
 */
export function checkTimestamp(timestamp: number, limits: Limits, nowMs = Date.now()): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `timestamp must be 0 or a positive number of seconds, milliseconds or microseconds below 2^53, got ${timestamp}`,
    );
  }
  if (timestamp !== 0) checkClientAhead(timestamp, nowMs, limits.maxClockSkewMs);
}

/** Checks the number of items in a batch. */
export function checkBatch(count: number, limits: Limits): void {
  if (count === 0) throw new KvError(Code.INVALID_ARGUMENT, "batch must hold at least one item");
  if (count > limits.maxBatchItems) {
    throw new KvError(
      Code.RESOURCE_EXHAUSTED,
      `batch holds ${count} items; the limit is ${limits.maxBatchItems} (limits.max_batch_items)`,
    );
  }
}

/**
 * Checks that a batch names each key once. Results are matched to requests
 * by position, so a repeated key cannot be answered once; and answered once
 * per repeat, a 13 KB MultiGet naming one 1 MiB key a thousand times made
 * the node copy and serialise a gigabyte.
 */
export function checkDistinct(keys: readonly string[]): void {
  const seen = new Map<string, number>();
  keys.forEach((key, i) => {
    const first = seen.get(key);
    if (first !== undefined) {
      throw new KvError(
        Code.INVALID_ARGUMENT,
        `key "${shortKey(key)}" appears twice in the batch (items ${first} and ${i}); name each key once`,
      );
    }
    seen.set(key, i);
  });
}

/** Keys in messages are cut short so one huge key cannot flood a log or a status. */
export function shortKey(key: string): string {
  return key.length > 64 ? `${key.slice(0, 61)}...` : key;
}
