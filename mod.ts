/**
 * The kvstore client library: connect to a cluster and read, write, expire,
 * condition, count and list keys from a Deno or Node program.
 *
 * ```ts ignore
 * import { connect } from "@kvstore/kvstore";
 *
 * const kv = await connect({ nodes: ["127.0.0.1:8001"] });
 * await kv.put("session:42", JSON.stringify({ user: "ada" }), { ttlMs: 60_000 });
 * console.log(await kv.getText("session:42"));
 * kv.close();
 * ```
 *
 * Values are bytes (`Uint8Array`) or text (stored as UTF-8). Every call
 * throws {@link KvStoreError} when the cluster refuses it or cannot answer.
 * Conditional writes (`ifAbsent`, `ifVersion`, with or without `ttlMs`) and
 * `increment` run through per-key consensus among the key's replicas.
 *
 * @module
 */
export { connect, KeyListing, KvStore } from "./lib/client/kvstore.ts";
export { KvStoreError } from "./lib/client/errors.ts";
export type {
  ConnectOptions,
  DeleteOptions,
  Entry,
  ListOptions,
  ListPage,
  PutManyItem,
  PutOptions,
  TlsOptions,
  Value,
  Version,
  WriteOutcome,
} from "./lib/client/types.ts";
