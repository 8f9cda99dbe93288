/**
 * The Redis storage engine: each node keeps its records in its own Redis.
 *
 * Layout, all under the configured prefix P:
 * - `P k:<key>` is a hash per store key with fields `t` (timestamp, decimal
 *   string), `n` (versionNode), `d` ("1" for a tombstone, "0" otherwise) and
 *   `v` (the value bytes, empty for a tombstone), and `e` (the expiry, ms
 *   since the epoch, only on a live record that has one). A hash rather than one
 *   packed string because the scripts compare versions with HMGET of the
 *   three small fields and never copy a value (up to 1 MB) into Lua, and the
 *   fields stay readable with redis-cli. Memory is the same as a packed
 *   string while the hash is listpack encoded: Redis's default allows that
 *   for values up to 64 bytes; the node configs raise it to 4096
 *   (`hash-max-listpack-value`), beyond which a hashtable adds ~200 bytes.
 * - `P meta:live` counts live (non-tombstone) keys; the same scripts that
 *   write a record adjust it, so `countLive()` is one GET.
 * - `P meta:expiries` is a sorted set of the live records that have an
 *   expiry, scored by it: `countLive()` subtracts those already expired
 *   (one ZCOUNT). Redis's own EXPIRE is never used: it would erase a record
 *   on Redis's clock, and before the purge (expiry + tombstone grace), taking
 *   with it the version that keeps older copies from coming back.
 * - `P meta:<name>` holds node metadata (the member list), outside the
 *   `P k:` records, so it never shows up as user data.
 *
 * Every write is a Lua script, so the version check and the write happen
 * atomically in Redis; a batch is a few script calls (one per chunk of
 * records) in one pipeline, one round trip. Timestamps travel as the
 * decimal strings JavaScript prints and are compared in Lua with tonumber:
 * both sides are IEEE doubles, exact to 2^53, and Redis stores the string
 * it was given rather than formatting a number itself.
 *
 * Faults never hang a caller: commands fail at once while disconnected (no
 * offline queue), time out after `commandTimeoutMs` while connected, and the
 * client reconnects forever in the background with a capped backoff. Every
 * failure surfaces as {@link StorageUnavailableError} naming host:port. A
 * write that timed out may still reach Redis later (it was already on the
 * wire); that is harmless, since applying a record is idempotent under
 * last-write-wins.
 */
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { type ScanPage, type Storage, StorageUnavailableError } from "./mod.ts";
import type { KvRecord, Version } from "../record.ts";
import type { Logger } from "../log.ts";

/** Options of {@link RedisStorage.connect}. */
export interface RedisStorageOptions {
  host: string;
  port: number;
  /** Prepended to every Redis key this store owns (e.g. "kvstore:"). */
  keyPrefix: string;
  log: Logger;
  /** How long `connect` waits for a first ready connection (default 5000). */
  connectTimeoutMs?: number;
  /** How long one command may wait for its reply (default 2000). */
  commandTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
/** Reconnect backoff cap: an outage is noticed within this of Redis's return. */
const RECONNECT_MAX_DELAY_MS = 1000;

/**
 * Orders two strings byte by byte. Lua's `<` uses strcoll, and Redis sets
 * LC_COLLATE from the environment, so under e.g. en_US.UTF-8 "a" < "B"
 * while JavaScript says "B" < "a". Byte order of UTF-8 is code-point order,
 * which matches `compareVersions` for every node id (ASCII by config).
 */
const LUA_BYTECMP = `
local function bytecmp(a, b)
  if a == b then return 0 end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  return #a < #b and -1 or 1
end
`;

/**
 * KEYS: the live counter, the expiry set, then one record key per record.
 * ARGV: five per record: timestamp, versionNode, tombstone ("1"/"0"), expiry
 * ("" for none), value. Applies the records in order, each only if newer
 * than what is held (equal versions: an earlier expiry wins, as in
 * record.ts), and returns 1 or 0 for each. The counter moves with each record rather than once at the
 * end, so a record the script fails on (a foreign key of the wrong type)
 * cannot leave it out of step with the records already written.
 */
const APPLY_LUA = LUA_BYTECMP + `
local function rank(e)
  if not e or e == '' then return math.huge end
  return tonumber(e)
end
local applied = {}
for i = 3, #KEYS do
  local a = (i - 3) * 5
  local ts, node, tomb, exp = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local held = redis.call('HMGET', KEYS[i], 't', 'n', 'd', 'e')
  local newer, was_live = true, 0
  if held[1] then
    local its, hts = tonumber(ts), tonumber(held[1])
    if its ~= hts then
      newer = its > hts
    else
      local c = bytecmp(node, held[2] or '')
      newer = c > 0 or (c == 0 and rank(exp) < rank(held[4]))
    end
    if held[3] == '0' then was_live = 1 end
  end
  if newer then
    redis.call('HSET', KEYS[i], 't', ts, 'n', node, 'd', tomb, 'v', ARGV[a + 5])
    if exp ~= '' and tomb == '0' then
      redis.call('HSET', KEYS[i], 'e', exp)
      redis.call('ZADD', KEYS[2], exp, KEYS[i])
    elseif held[4] then
      redis.call('HDEL', KEYS[i], 'e')
      redis.call('ZREM', KEYS[2], KEYS[i])
    end
    local delta = (tomb == '0' and 1 or 0) - was_live
    if delta ~= 0 then redis.call('INCRBY', KEYS[1], delta) end
    applied[#applied + 1] = 1
  else
    applied[#applied + 1] = 0
  end
end
return applied
`;

/**
 * KEYS: record keys. Returns [t, n, d, v, e] for each (all nil if absent): one
 * command for any number of keys, cheaper for the client than a pipeline of
 * HMGETs.
 */
const GET_LUA = `
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HMGET', KEYS[i], 't', 'n', 'd', 'v', 'e') end
return out
`;

/**
 * KEYS: record, live counter, expiry set. ARGV: timestamp, versionNode.
 * Erases the record only if it holds exactly that version; returns 1 if it did.
 */
const REMOVE_LUA = `
local held = redis.call('HMGET', KEYS[1], 't', 'n', 'd')
if not held[1] or tonumber(held[1]) ~= tonumber(ARGV[1]) or held[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
if held[3] == '0' then redis.call('DECRBY', KEYS[2], 1) end
return 1
`;

/** The scripts `defineCommand` adds; ioredis's own types do not know them. */
interface ScriptCommands {
  /** numberOfKeys, the live counter, the expiry set, the record keys, then five ARGV per record. */
  kvApply(...args: (string | number | Buffer)[]): unknown;
  kvGetBuffer(...args: (string | number)[]): Promise<(Buffer | null)[][]>;
  kvRemove(
    recordKey: string,
    liveKey: string,
    expiryKey: string,
    timestamp: string,
    versionNode: string,
  ): Promise<number>;
}

/**
 * Records per apply-script call. One call runs atomically and blocks Redis
 * meanwhile; a hundred records take well under a millisecond there, and cost
 * far less client work than a call per record (measured on a 1000-record
 * batch: about 6 ms against 19 ms; the chunk size itself barely matters).
 */
const APPLY_CHUNK = 128;

/** A store in one Redis server (see the module comment for the layout). */
export class RedisStorage implements Storage {
  readonly engine = "redis" as const;
  readonly #redis: Redis;
  readonly #addr: string;
  readonly #log: Logger;
  readonly #recordPrefix: string;
  readonly #liveKey: string;
  readonly #expiryKey: string;
  readonly #scanPattern: string;
  /** Connected and ready at least once since the last loss was logged. */
  #up = false;
  #lostAt = 0;
  #lastError = "";
  #closing = false;

  private constructor(redis: Redis, opts: RedisStorageOptions) {
    this.#redis = redis;
    this.#addr = `${opts.host}:${opts.port}`;
    this.#log = opts.log;
    this.#recordPrefix = `${opts.keyPrefix}k:`;
    this.#liveKey = `${opts.keyPrefix}meta:live`;
    this.#expiryKey = `${opts.keyPrefix}meta:expiries`;
    this.#scanPattern = `${escapeGlob(this.#recordPrefix)}*`;
    redis.defineCommand("kvApply", { lua: APPLY_LUA });
    redis.defineCommand("kvGet", { lua: GET_LUA, readOnly: true });
    redis.defineCommand("kvRemove", { numberOfKeys: 3, lua: REMOVE_LUA });
    redis.on("error", (err: Error) => this.#lastError = err.message.replace(/\.$/, ""));
    redis.on("ready", () => this.#onReady());
    redis.on("close", () => this.#onClose());
    // One debug line per attempt: the warning above is logged once per outage.
    redis.on("reconnecting", (delayMs: number) => {
      this.#log.debug(`redis ${this.#addr} reconnect attempt`, { delayMs });
    });
  }

  /**
   * Connects to Redis, waiting up to `connectTimeoutMs` for it to be ready
   * (Redis still loading its AOF counts as not ready yet).
   * @throws StorageUnavailableError if it is not ready in time.
   */
  static async connect(opts: RedisStorageOptions): Promise<RedisStorage> {
    const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const redis = new Redis({
      host: opts.host,
      port: opts.port,
      lazyConnect: true,
      connectionName: "kvstore",
      // Fail fast while disconnected instead of queueing without bound.
      enableOfflineQueue: false,
      commandTimeout,
      // A Redis that accepts connections but stops answering counts as down.
      socketTimeout: commandTimeout * 2,
      connectTimeout: commandTimeout,
      // Commands in flight when the connection drops fail at once and are
      // not resent later: the caller has already been told they failed.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), RECONNECT_MAX_DELAY_MS),
    });
    const storage = new RedisStorage(redis, opts);
    await storage.#waitReady(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    return storage;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onReady: (() => void) | undefined;
    const ready = new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      this.#redis.once("ready", onReady);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    // Failed attempts are retried by retryStrategy; only the deadline counts.
    this.#redis.connect().catch(() => {});
    const ok = await ready;
    clearTimeout(timer);
    this.#redis.off("ready", onReady!);
    if (ok) return;
    this.#closing = true;
    this.#redis.disconnect();
    throw new StorageUnavailableError(
      `redis ${this.#addr} not reachable within ${timeoutMs} ms: ${this.#lastError || "no answer"}`,
    );
  }

  #onReady(): void {
    if (this.#lostAt > 0) {
      this.#log.info(`redis ${this.#addr} reachable again`, { downMs: Date.now() - this.#lostAt });
      this.#lostAt = 0;
    }
    this.#up = true;
    this.#lastError = "";
  }

  #onClose(): void {
    if (!this.#up || this.#closing) return;
    this.#up = false;
    this.#lostAt = Date.now();
    this.#log.warn(
      `redis ${this.#addr} unreachable: ${this.#lastError || "connection closed"}, reconnecting`,
    );
  }

  /** Whether the connection is up and Redis is ready for commands. */
  healthy(): boolean {
    return this.#redis.status === "ready";
  }

  async get(keys: readonly string[]): Promise<(KvRecord | undefined)[]> {
    if (keys.length === 0) return [];
    const scripts = this.#redis as unknown as ScriptCommands;
    const replies = await this.#call(
      "get",
      () => scripts.kvGetBuffer(keys.length, ...keys.map((k) => this.#recordPrefix + k)),
    );
    return keys.map((key, i) => toRecord(key, replies[i]));
  }

  /**
   * Applies the records in chunks of {@link APPLY_CHUNK}, one script call
   * each, all sent as one pipeline: one round trip per batch.
   */
  async apply(records: readonly KvRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    for (const r of records) checkTimestamp(r.timestamp), checkTimestamp(r.expiresAtMs ?? 0);
    const replies = await this.#pipeline("apply", (p) => {
      const scripts = p as unknown as ScriptCommands;
      for (let i = 0; i < records.length; i += APPLY_CHUNK) {
        scripts.kvApply(...this.#applyArgs(records.slice(i, i + APPLY_CHUNK)));
      }
    });
    return (replies as number[][]).flat().map((n) => n === 1);
  }

  #applyArgs(chunk: readonly KvRecord[]): (string | number | Buffer)[] {
    const keys: string[] = [this.#liveKey, this.#expiryKey];
    const argv: (string | Buffer)[] = [];
    for (const r of chunk) {
      keys.push(this.#recordPrefix + r.key);
      argv.push(
        String(r.timestamp),
        r.versionNode,
        r.tombstone ? "1" : "0",
        r.expiresAtMs ? String(r.expiresAtMs) : "",
        r.tombstone ? EMPTY : asBuffer(r.value),
      );
    }
    return [keys.length, ...keys, ...argv];
  }

  async remove(key: string, version: Version): Promise<boolean> {
    checkTimestamp(version.timestamp);
    const scripts = this.#redis as unknown as ScriptCommands;
    const n = await this.#call(
      "remove",
      () =>
        scripts.kvRemove(
          this.#recordPrefix + key,
          this.#liveKey,
          this.#expiryKey,
          String(version.timestamp),
          version.versionNode,
        ),
    );
    return n === 1;
  }

  /**
   * One SCAN step over this store's keys; the cursor is Redis's own. A page
   * may hold more or fewer than `limit` records (COUNT is a hint), even none
   * while the scan goes on.
   */
  async scan(cursor: string, limit: number): Promise<ScanPage> {
    const [next, redisKeys] = await this.#call(
      "scan",
      () =>
        this.#redis.scan(
          cursor === "" ? "0" : cursor,
          "MATCH",
          this.#scanPattern,
          "COUNT",
          Math.max(1, limit),
        ),
    );
    const keys = redisKeys.map((k) => k.slice(this.#recordPrefix.length));
    const found = await this.get(keys);
    // A key erased between SCAN and HMGET is simply left out.
    const records = found.filter((r): r is KvRecord => r !== undefined);
    return { records, nextCursor: next === "0" ? "" : next };
  }

  async loadMeta(name: string): Promise<string | undefined> {
    const v = await this.#call("loadMeta", () => this.#redis.get(this.#metaKey(name)));
    return v ?? undefined;
  }

  async saveMeta(name: string, value: string): Promise<void> {
    await this.#call("saveMeta", () => this.#redis.set(this.#metaKey(name), value));
  }

  async deleteMeta(name: string): Promise<void> {
    await this.#call("deleteMeta", () => this.#redis.del(this.#metaKey(name)));
  }

  #metaKey(name: string): string {
    if (name === "live" || name === "expiries") {
      throw new RangeError(`"${name}" holds the record counters, not metadata`);
    }
    return `${this.#liveKey.slice(0, -"live".length)}${name}`;
  }

  /** Live records less those expired (on this node's clock): one GET and one ZCOUNT. */
  async countLive(): Promise<number> {
    const [n, expired] = await this.#pipeline("countLive", (p) => {
      p.get(this.#liveKey);
      p.zcount(this.#expiryKey, "-inf", Date.now());
    }) as [string | null, number];
    return (n === null ? 0 : Number(n)) - Number(expired);
  }

  /** Quits cleanly, waiting (briefly) for the connection to end. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#redis.status === "end") return;
    const ended = new Promise<void>((resolve) => this.#redis.once("end", resolve));
    if (this.#redis.status === "ready") {
      try {
        await this.#redis.quit();
      } catch {
        this.#redis.disconnect();
      }
    } else {
      this.#redis.disconnect();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, 1000));
    await Promise.race([ended, late]);
    clearTimeout(timer);
    // A quit that never completed leaves the socket open; cut it.
    if ((this.#redis.status as string) !== "end") this.#redis.disconnect();
  }

  /** Runs one command, turning any failure into StorageUnavailableError. */
  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.#checkReady(what);
    try {
      return await fn();
    } catch (err) {
      throw this.#unavailable(what, err);
    }
  }

  /** Sends the commands `fill` queues as one pipeline; returns the replies. */
  async #pipeline(what: string, fill: (p: ReturnType<Redis["pipeline"]>) => void): Promise<unknown[]> {
    this.#checkReady(what);
    const pipeline = this.#redis.pipeline();
    fill(pipeline);
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      throw this.#unavailable(what, err);
    }
    if (results === null) throw this.#unavailable(what, new Error("pipeline discarded"));
    const failed = results.find(([err]) => err !== null);
    if (failed) throw this.#unavailable(what, failed[0]);
    return results.map(([, reply]) => reply);
  }

  #checkReady(what: string): void {
    if (this.#redis.status === "ready") return;
    const why = this.#closing ? "storage closed" : this.#lastError || `connection ${this.#redis.status}`;
    throw new StorageUnavailableError(`redis ${this.#addr} unreachable (${what}): ${why}`);
  }

  #unavailable(what: string, err: unknown): StorageUnavailableError {
    const msg = err instanceof Error ? err.message : String(err);
    return new StorageUnavailableError(`redis ${this.#addr} ${what} failed: ${msg}`);
  }
}

const EMPTY = Buffer.alloc(0);

/** A Buffer view of the bytes, without copying. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** NaN or Infinity would print as words Lua's tonumber cannot compare. */
function checkTimestamp(ts: number): void {
  if (!Number.isFinite(ts)) throw new RangeError(`record timestamp must be a finite number, got ${ts}`);
}

function toRecord(key: string, fields: (Buffer | null)[]): KvRecord | undefined {
  const [t, n, d, v, e] = fields;
  if (t === null) return undefined;
  const record: KvRecord = {
    key,
    value: v ?? EMPTY,
    timestamp: Number(t.toString("latin1")),
    versionNode: n === null ? "" : n.toString("utf8"),
    tombstone: d !== null && d.length === 1 && d[0] === 0x31,
  };
  if (e) record.expiresAtMs = Number(e.toString("latin1"));
  return record;
}

/** Escapes a literal for a SCAN MATCH glob (the prefix may hold * ? [ ] \). */
function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
