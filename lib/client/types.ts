/**
 * The client library's public records: what programs pass in and get back.
 *
 * Kept apart from the implementation so the API a program depends on reads
 * in one place and changes only on purpose (it is the package's contract).
 */

/** A value as a program gives it: bytes, or text stored as UTF-8. */
export type Value = Uint8Array | string;

/**
 * A key's version: the write's timestamp (microseconds since the Unix epoch,
 * from the coordinator's hybrid logical clock) and the node whose clock made
 * it. Give a version read from `get` or `put` back as `ifVersion` to write
 * only over exactly that version.
 *
 * @example Releasing a lock only if it is still ours
 * ```ts ignore
 * const { version } = await kv.put("lock", "me", { ifAbsent: true, ttlMs: 5000 });
 * await kv.delete("lock", { ifVersion: version });
 * ```
 */
export interface Version {
  /** Microseconds since the Unix epoch (below 2^53, so a number is exact). */
  timestamp: number;
  /** The node whose clock made the version ("" when the node does not say). */
  node: string;
}

/**
 * A value read.
 *
 * @example
 * ```ts ignore
 * const e = await kv.get("k");
 * if (e) console.log(e.value.length, e.version.timestamp, e.expiresAt);
 * ```
 */
export interface Entry {
  /** The value's bytes (see `getText` for text). */
  value: Uint8Array;
  /** The version read. */
  version: Version;
  /** When the value expires (absent: never). */
  expiresAt?: Date;
}

/**
 * Options of `put`.
 *
 * @example
 * ```ts ignore
 * await kv.put("session:1", "{}", { ttlMs: 30_000 });
 * ```
 */
export interface PutOptions {
  /** Time to live in ms: the key reads as absent once it has passed (also with a condition). */
  ttlMs?: number;
  /** Write only if the key is absent (or expired); per-key consensus. */
  ifAbsent?: boolean;
  /** Write only if the key's current version is exactly this one (not expired); per-key consensus. */
  ifVersion?: Version;
}

/**
 * The outcome of a put or delete.
 *
 * @example
 * ```ts ignore
 * const { applied, version } = await kv.put("k", "v", { ifAbsent: true });
 * ```
 */
export interface WriteOutcome {
  /** False only when a condition (ifAbsent, ifVersion) did not hold: nothing was written. */
  applied: boolean;
  /** The version written (applied), or the key's current one (not applied; absent when the key is). */
  version?: Version;
}

/**
 * Options of `delete`.
 *
 * @example
 * ```ts ignore
 * await kv.delete("lock", { ifVersion: version });
 * ```
 */
export interface DeleteOptions {
  /** Delete only if the key's current version is exactly this one. */
  ifVersion?: Version;
}

/**
 * One item of `putMany` (conditions are not taken in batches).
 *
 * @example
 * ```ts ignore
 * await kv.putMany([{ key: "a", value: "1", ttlMs: 1000 }, { key: "b", value: "2" }]);
 * ```
 */
export interface PutManyItem {
  /** The key. */
  key: string;
  /** The value. */
  value: Value;
  /** Time to live in ms. */
  ttlMs?: number;
}

/**
 * Options of `list`.
 *
 * @example
 * ```ts ignore
 * const page = await kv.list({ prefix: "session:", limit: 100 });
 * ```
 */
export interface ListOptions {
  /** Only keys starting with this. */
  prefix?: string;
  /** Keys per page at most (default 1000). */
  limit?: number;
  /** The `cursor` of the previous page ("" or absent: start). */
  cursor?: string;
}

/**
 * One page of the cluster's keys.
 *
 * @example
 * ```ts ignore
 * let cursor = "";
 * do {
 *   const page = await kv.list({ cursor });
 *   console.log(page.keys);
 *   cursor = page.cursor;
 * } while (cursor !== "");
 * ```
 */
export interface ListPage {
  /** Keys of this page. */
  keys: string[];
  /** Pass back as `cursor` for the next page; "" when there is none. */
  cursor: string;
}

/**
 * TLS settings: PEM text or bytes.
 *
 * @example
 * ```ts ignore
 * const kv = await connect({ nodes: ["db1:8001"], tls: { ca: Deno.readTextFileSync("ca.pem") } });
 * ```
 */
export interface TlsOptions {
  /** CA to verify the nodes against (the system's roots without one). */
  ca?: string | Uint8Array;
  /** Client certificate (PEM), for mutual TLS. */
  cert?: string | Uint8Array;
  /** Its private key (PEM). */
  key?: string | Uint8Array;
}

/**
 * Options of `connect`.
 *
 * @example
 * ```ts ignore
 * const kv = await connect({ nodes: ["127.0.0.1:8001", "127.0.0.1:8002"], token: "s3cret" });
 * ```
 */
export interface ConnectOptions {
  /** Some nodes' `host:port`; the others are learned from the membership. */
  nodes: string[];
  /** Speak TLS (when the cluster sets `security.tls`). */
  tls?: TlsOptions;
  /** The client token (when the cluster sets `security.client_token_file`). */
  token?: string;
  /** Deadline of each call in ms (default 5000). */
  timeoutMs?: number;
}
