/**
 * The client library's facade: a small, typed, stable API over KvClient.
 *
 * KvClient (grpc/kv_client.ts) is the store's own client: routing by the
 * ring, failing over, following membership epochs, and the operator's calls.
 * Programs get this narrower face instead, whose names and records
 * (types.ts) are the package's contract and do not move when KvClient does:
 * entries instead of wire results, `null` for absent keys, one error class.
 */
import { Buffer } from "node:buffer";
import { KvClient } from "../grpc/kv_client.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import { KvStoreError, translated } from "./errors.ts";
import { conditionalDelete, conditionalPut, conditionOf, increment } from "./conditional.ts";
import { listPage } from "./cluster_keys.ts";
import type {
  ConnectOptions,
  DeleteOptions,
  Entry,
  ListOptions,
  ListPage,
  PutManyItem,
  PutOptions,
  TlsOptions,
  Value,
  WriteOutcome,
} from "./types.ts";

/**
 * Connects to a cluster: asks one of `nodes` for the membership, then sends
 * each key straight to its owner, following membership changes.
 *
 * @example
 * ```ts ignore
 * import { connect } from "@kvstore/kvstore";
 * const kv = await connect({ nodes: ["127.0.0.1:8001"] });
 * await kv.put("greeting", "hello");
 * console.log(await kv.getText("greeting")); // "hello"
 * kv.close();
 * ```
 */
export function connect(opts: ConnectOptions): Promise<KvStore> {
  return KvStore.connect(opts);
}

/**
 * A connection to a cluster, made by {@link connect}. Every method throws
 * {@link KvStoreError} when the cluster refuses or cannot answer.
 *
 * @example
 * ```ts ignore
 * const kv = await connect({ nodes: ["127.0.0.1:8001"] });
 * await kv.put("session:42", JSON.stringify({ user: "ada" }), { ttlMs: 60_000 });
 * const e = await kv.get("session:42"); // { value, version, expiresAt } or null
 * kv.close();
 * ```
 */
export class KvStore {
  readonly #client: KvClient;

  private constructor(client: KvClient) {
    this.#client = client;
  }

  /**
   * The same as {@link connect}.
   *
   * @example
   * ```ts ignore
   * const kv = await KvStore.connect({ nodes: ["127.0.0.1:8001"] });
   * ```
   */
  static async connect(opts: ConnectOptions): Promise<KvStore> {
    if (!Array.isArray(opts?.nodes) || opts.nodes.length === 0) {
      throw new KvStoreError(3, "connect needs at least one node address in `nodes`");
    }
    const client = await translated(() =>
      KvClient.connect(opts.nodes, {
        tls: opts.tls ? clientTls(opts.tls) : undefined,
        clientToken: opts.token,
        timeoutMs: opts.timeoutMs,
      })
    );
    return new KvStore(client);
  }

  /**
   * Reads a key: null when it is absent, deleted or expired.
   *
   * @example
   * ```ts ignore
   * const e = await kv.get("k");
   * if (e) console.log(e.value, e.version, e.expiresAt);
   * ```
   */
  async get(key: string): Promise<Entry | null> {
    return entryOf(await translated(() => this.#client.get(key)));
  }

  /**
   * Reads a key's value as UTF-8 text: null when absent.
   *
   * @example
   * ```ts ignore
   * const name = await kv.getText("user:1:name");
   * ```
   */
  async getText(key: string): Promise<string | null> {
    const e = await this.get(key);
    return e ? new TextDecoder().decode(e.value) : null;
  }

  /**
   * Stores a value, optionally with a time to live, or only if the key is
   * absent (`ifAbsent`) or at a given version (`ifVersion`). A condition that
   * does not hold answers `applied: false` (and the key's current version).
   *
   * @example
   * ```ts ignore
   * const { version } = await kv.put("k", "v", { ttlMs: 10_000 });
   * const again = await kv.put("k", "w", { ifVersion: version }); // applied: true
   * ```
   */
  async put(key: string, value: Value, opts: PutOptions = {}): Promise<WriteOutcome> {
    const condition = conditionOf(opts);
    if (condition) {
      return await translated(() => conditionalPut(this.#client, key, value, condition, opts.ttlMs));
    }
    return outcomeOf(await translated(() => this.#client.put(key, value, { ttlMs: opts.ttlMs })));
  }

  /**
   * Deletes a key, optionally only if it is at a given version.
   *
   * @example
   * ```ts ignore
   * await kv.delete("k");
   * ```
   */
  async delete(key: string, opts: DeleteOptions = {}): Promise<WriteOutcome> {
    const condition = conditionOf(opts);
    if (condition) return await translated(() => conditionalDelete(this.#client, key, condition));
    return outcomeOf(await translated(() => this.#client.delete(key)));
  }

  /**
   * Adds `delta` (default 1) to the integer stored at `key` (absent: 0), as
   * Redis's INCRBY does (a signed 64-bit integer stored as decimal text), and
   * returns the new value as a bigint. The key keeps its expiry.
   *
   * @example
   * ```ts ignore
   * const hits = await kv.increment("hits:today"); // 1n, then 2n, ...
   * ```
   */
  async increment(key: string, delta: bigint | number = 1): Promise<bigint> {
    return await translated(() => increment(this.#client, key, delta));
  }

  /**
   * Reads many keys at once: one entry or null per key, in order.
   *
   * @example
   * ```ts ignore
   * const [a, b] = await kv.getMany(["a", "b"]);
   * ```
   */
  async getMany(keys: readonly string[]): Promise<(Entry | null)[]> {
    return (await translated(() => this.#client.multiGet(keys))).map(entryOf);
  }

  /**
   * Stores many values (each item may have a ttl). Throws for the first item
   * that failed, after all were tried: the others may be stored.
   *
   * @example
   * ```ts ignore
   * await kv.putMany([{ key: "a", value: "1" }, { key: "b", value: "2", ttlMs: 5000 }]);
   * ```
   */
  async putMany(items: readonly PutManyItem[]): Promise<WriteOutcome[]> {
    return (await translated(() => this.#client.multiPut(items))).map(outcomeOf);
  }

  /**
   * Deletes many keys (as putMany for failures).
   *
   * @example
   * ```ts ignore
   * await kv.deleteMany(["a", "b"]);
   * ```
   */
  async deleteMany(keys: readonly string[]): Promise<WriteOutcome[]> {
    return (await translated(() => this.#client.multiDelete(keys))).map(outcomeOf);
  }

  /**
   * The cluster's keys: `await` it for one page, or iterate it for every key
   * (following pages). Each key is listed once while the membership does not
   * change; during a change a key may be listed twice or missed.
   *
   * @example
   * ```ts ignore
   * const page = await kv.list({ prefix: "session:", limit: 50 });
   * for await (const key of kv.list({ prefix: "session:" })) console.log(key);
   * ```
   */
  list(opts: ListOptions = {}): KeyListing {
    return new KeyListing((o) => translated(() => listPage(this.#client, o)), opts);
  }

  /**
   * Closes the connections; calls after this fail.
   *
   * @example
   * ```ts ignore
   * kv.close();
   * ```
   */
  close(): void {
    this.#client.close();
  }
}

/**
 * What {@link KvStore.list} returns: a promise of one page and an async
 * iterator over all the keys from that page on.
 *
 * @example
 * ```ts ignore
 * const { keys, cursor } = await kv.list({ limit: 10 });
 * for await (const key of kv.list({ prefix: "user:" })) console.log(key);
 * ```
 */
export class KeyListing implements PromiseLike<ListPage>, AsyncIterable<string> {
  /** Made by {@link KvStore.list}. */
  constructor(readonly fetch: (opts: ListOptions) => Promise<ListPage>, readonly options: ListOptions) {}

  /** Resolves to the page `options` name. */
  then<A = ListPage, B = never>(
    onFulfilled?: ((page: ListPage) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.fetch(this.options).then(onFulfilled, onRejected);
  }

  /** Every key from the page `options` name on. */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    let cursor = this.options.cursor ?? "";
    do {
      const page = await this.fetch({ ...this.options, cursor });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== "");
  }
}

function entryOf(r: ReadResult): Entry | null {
  if (r.code !== 0) throw new KvStoreError(r.code, r.message);
  if (!r.found) return null;
  // A node with per-key consensus names the version's node; one without does not.
  const node = (r as ReadResult & { versionNode?: string }).versionNode ?? "";
  // A plain Uint8Array view of gRPC's Buffer (no copy): what the type says, under Deno and Node alike.
  const value = new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength);
  const e: Entry = { value, version: { timestamp: r.timestamp, node } };
  if (r.expiresAtMs) e.expiresAt = new Date(r.expiresAtMs);
  return e;
}

function outcomeOf(w: WriteResult): WriteOutcome {
  if (!w.ok) throw new KvStoreError(w.code || 13, w.message || `write of ${w.key} failed`);
  // A plain write is versioned by its coordinator's clock.
  return { applied: true, version: { timestamp: w.timestamp, node: w.nodeId } };
}

function clientTls(t: TlsOptions): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const buf = (v?: string | Uint8Array) => v === undefined ? undefined : Buffer.from(v);
  return { ca: buf(t.ca), cert: buf(t.cert), key: buf(t.key) };
}
