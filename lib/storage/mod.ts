/**
 * The storage interface every engine implements, and the engine factory.
 *
 * Engines hold versioned records (see `record.ts`) and apply a write only if
 * it is newer than what they hold, atomically per key, so concurrent client
 * writes, forwards, replication, hints and recovery can arrive in any order
 * and copies still converge. Deletes are tombstones written through `apply`;
 * `remove` erases a record physically, and only the exact version given.
 */
import type { ClusterConfig, NodeConfig, StorageEngine } from "../config.ts";
import { type KvRecord, recordSize, type RecordVersion, type Version } from "../record.ts";
import type { Logger } from "../log.ts";
import { Code, KvError } from "../errors.ts";
import { pauser } from "../async.ts";

/** How long an unfinished scan's position is kept (engines' and callers' cursors alike). */
export const CURSOR_IDLE_MS = 60_000;

/** One page of a scan. */
export interface ScanPage {
  records: KvRecord[];
  /** "" when the scan is complete. */
  nextCursor: string;
}

/** One page of a versions-only scan. */
export interface VersionPage {
  versions: RecordVersion[];
  /** "" when the scan is complete. */
  nextCursor: string;
}

/** A node's local store of versioned records. */
export interface Storage {
  readonly engine: StorageEngine;
  /** The records held for these keys (tombstones included), in order. */
  get(keys: readonly string[]): Promise<(KvRecord | undefined)[]>;
  /** Stores each record that is newer than the one held; says which were. */
  apply(records: readonly KvRecord[]): Promise<boolean[]>;
  /** Erases a key only if it still holds exactly this version. */
  remove(key: string, version: Version): Promise<boolean>;
  /**
   * One page of records, tombstones included, starting at `cursor` ("" for
   * the first page). `limit` is a hint: an engine may return somewhat more or
   * fewer (Redis's SCAN COUNT), even an empty page before the end. Keys
   * present for the whole scan are returned at least once; keys written
   * during it may or may not be.
   */
  scan(cursor: string, limit: number): Promise<ScanPage>;
  /**
   * Like `scan`, without the values: whole-store passes (anti-entropy
   * digests, recovery and repair filters) then allocate nothing per value.
   * Engines without it are scanned with `scan`.
   */
  scanVersions?(cursor: string, limit: number): Promise<VersionPage>;
  /**
   * The value sizes held for these keys (0 for a tombstone, undefined when
   * absent), without copying the values: a read can then refuse an answer
   * too large before building it. Engines without it are read in slices.
   */
  valueSizes?(keys: readonly string[]): Promise<(number | undefined)[]>;
  /**
   * Ends an unfinished scan (a caller gave up on it). Engines whose scans
   * hold nothing between pages (Redis) leave it out.
   */
  closeScan?(cursor: string): void;
  /** Whether the engine can take calls now (Redis connected, say). */
  healthy(): boolean;
  /** Live (not deleted) keys held. */
  countLive(): Promise<number>;
  /**
   * Bytes of the keys and records held (tombstones included), for engines
   * that track it cheaply (memory); undefined otherwise (Redis).
   */
  bytesHeld?(): number;
  close(): Promise<void>;
  /**
   * Node metadata kept beside the records but never among them (not in
   * scans or counts): the member list. Engines that do not outlive the
   * process leave these out.
   */
  loadMeta?(name: string): Promise<string | undefined>;
  saveMeta?(name: string, value: string): Promise<void>;
  /** Erases a metadata entry (per-key consensus votes once settled). */
  deleteMeta?(name: string): Promise<void>;
}

/** Storage failed (for example Redis is down); the node answers UNAVAILABLE. */
export class StorageUnavailableError extends KvError {
  constructor(message: string) {
    super(Code.UNAVAILABLE, message);
    this.name = "StorageUnavailableError";
  }
}

/**
 * How long a scan may hold the event loop before it lets other work run: a
 * full scan of a million records takes seconds, and a node that answers
 * nothing meanwhile misses heartbeats and stalls every call it holds.
 */
const SCAN_SLICE_MS = 10;

/** Every record of a store, a page at a time. */
export async function* scanAll(storage: Storage, pageSize: number): AsyncGenerator<KvRecord[]> {
  const pause = pauser(SCAN_SLICE_MS);
  let cursor = "";
  do {
    const page = await storage.scan(cursor, pageSize);
    if (page.records.length > 0) yield page.records;
    cursor = page.nextCursor;
    await pause();
  } while (cursor !== "");
}

/** Every record's version, a page at a time, without values where the engine can. */
export async function* scanAllVersions(storage: Storage, pageSize: number): AsyncGenerator<RecordVersion[]> {
  if (!storage.scanVersions) {
    yield* scanAll(storage, pageSize);
    return;
  }
  const pause = pauser(SCAN_SLICE_MS);
  let cursor = "";
  do {
    const page = await storage.scanVersions(cursor, pageSize);
    if (page.versions.length > 0) yield page.versions;
    cursor = page.nextCursor;
    await pause();
  } while (cursor !== "");
}

/** Limits of one chunk of records sent over the network. */
export interface ChunkLimits {
  maxRecords: number;
  maxBytes: number;
}

/**
 * The records of a store that pass a filter, in chunks bounded in count and
 * bytes, so a stream of any size holds only one chunk in memory at a time.
 * The filter sees versions only; values are read for the accepted keys
 * alone (a key deleted in between is left out, one rewritten is sent as it
 * is now: both are what a later scan would see).
 */
export async function* scanChunks(
  storage: Storage,
  accept: (version: RecordVersion) => boolean,
  limits: ChunkLimits,
): AsyncGenerator<KvRecord[]> {
  let chunk: KvRecord[] = [];
  let bytes = 0;
  for await (
    const page of acceptedRecords(storage, accept, Math.max(100, limits.maxRecords), limits.maxBytes)
  ) {
    for (const r of page) {
      const size = recordSize(r);
      if (chunk.length > 0 && (chunk.length >= limits.maxRecords || bytes + size > limits.maxBytes)) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push(r);
      bytes += size;
    }
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * The records whose versions pass `accept`, a page at a time; values are
 * read in slices of about `maxBytes` where the engine tells sizes first (a
 * page of 100 versions of 1 MiB values would otherwise be read at once).
 */
async function* acceptedRecords(
  storage: Storage,
  accept: (version: RecordVersion) => boolean,
  pageSize: number,
  maxBytes: number,
): AsyncGenerator<KvRecord[]> {
  if (!storage.scanVersions) {
    for await (const page of scanAll(storage, pageSize)) yield page.filter(accept);
    return;
  }
  for await (const page of scanAllVersions(storage, pageSize)) {
    const keys = page.filter(accept).map((v) => v.key);
    for (const slice of await byteSlices(storage, keys, maxBytes)) {
      yield (await storage.get(slice)).filter((r): r is KvRecord => r !== undefined);
    }
  }
}

/** `keys` in runs whose values add up to about `maxBytes` (one run when sizes are unknown). */
async function byteSlices(storage: Storage, keys: string[], maxBytes: number): Promise<string[][]> {
  if (keys.length === 0) return [];
  if (!storage.valueSizes) return [keys];
  const sizes = await storage.valueSizes(keys);
  const slices: string[][] = [[]];
  let bytes = 0;
  keys.forEach((key, i) => {
    const size = key.length + (sizes[i] ?? 0);
    if (slices.at(-1)!.length > 0 && bytes + size > maxBytes) slices.push([]), bytes = 0;
    slices.at(-1)!.push(key);
    bytes += size;
  });
  return slices;
}

/** Opens the engine the configuration (or `--storage`) chose for a node. */
export async function openStorage(
  config: ClusterConfig,
  node: NodeConfig,
  log: Logger,
  engine: StorageEngine = config.storage.engine,
): Promise<Storage> {
  if (engine === "memory") {
    const { MemoryStorage } = await import("./memory.ts");
    return new MemoryStorage();
  }
  const { RedisStorage } = await import("./redis.ts");
  return await RedisStorage.connect({
    host: node.redisHost,
    port: node.redisPort,
    keyPrefix: config.storage.redisKeyPrefix,
    commandTimeoutMs: config.failureDetection.rpcTimeoutMs,
    log,
  });
}
