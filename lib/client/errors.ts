/**
 * The one error class the client library throws, and the translation of the
 * store's internal errors into it.
 *
 * Programs using the library catch one class and switch on its `code` (gRPC's
 * number) or `codeName`, without importing anything from the store's core.
 */
import { KvError } from "../errors.ts";

/** gRPC status codes by number, for readable messages. */
const CODE_NAMES: Record<number, string> = {
  0: "OK",
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};

/**
 * An operation the store refused or could not complete.
 *
 * `code` is the gRPC status number and `codeName` its name (for instance 14
 * and "UNAVAILABLE": no node that holds the key answered; 4 and
 * "DEADLINE_EXCEEDED": a write may or may not have been applied). The
 * message reads as `UNAVAILABLE: <what the node or client said>`.
 *
 * @example Telling a refusal from an outage
 * ```ts ignore
 * import { connect, KvStoreError } from "@kvstore/kvstore";
 * const kv = await connect({ nodes: ["127.0.0.1:8001"] });
 * try {
 *   await kv.put("k", "v");
 * } catch (err) {
 *   if (err instanceof KvStoreError && err.codeName === "UNAVAILABLE") console.log("cluster down");
 *   else throw err;
 * }
 * ```
 */
export class KvStoreError extends Error {
  /** The gRPC status code's name, e.g. "INVALID_ARGUMENT". */
  readonly codeName: string;

  /** An error with a gRPC status number and the detail said about it. */
  constructor(readonly code: number, readonly detail: string) {
    const name = CODE_NAMES[code] ?? `CODE_${code}`;
    super(`${name}: ${detail}`);
    this.codeName = name;
    this.name = "KvStoreError";
  }
}

/** Any thrown value as a KvStoreError (the store's own errors keep their code). */
export function toKvStoreError(err: unknown): KvStoreError {
  if (err instanceof KvStoreError) return err;
  if (err instanceof KvError) return new KvStoreError(err.code, err.message);
  return new KvStoreError(13, err instanceof Error ? err.message : String(err));
}

/** Runs `fn`, turning whatever it throws into a KvStoreError. */
export async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKvStoreError(err);
  }
}
