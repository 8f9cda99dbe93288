/**
 * Listing a node's own data a page at a time: ListKeys for clients,
 * GetSnapshot for operators and peers.
 *
 * A page stops at the asked (or configured) number of records or at half
 * the gRPC message limit in bytes, whichever comes first, so no answer can
 * exceed what gRPC carries. Callers never see the storage engine's cursors:
 * theirs are random, one page each, bound to their connection and
 * translated here (`security/client_scans.ts`), so no caller can steer the
 * node's own scans. `grpc/server.ts` registers both calls.
 *
 * Storage is read in chunks small enough that the next one cannot pass the
 * byte limit, so a page never holds more than that (ListKeys reads versions
 * only, where the engine can), and the loop yields to the event loop every
 * {@link YIELD_EVERY_RECORDS} records scanned: a page over a store of
 * tombstones scans far more than it answers.
 */
import type { KvNode } from "./node.ts";
import { isLive, type KvRecord, type RecordVersion } from "./record.ts";
import { Code, KvError } from "./errors.ts";
import { nextTurn } from "./async.ts";

/** Records read from storage per step of a page, at most. */
export const SCAN_CHUNK_RECORDS = 256;

/** A page lets other work run after this many records scanned. */
export const YIELD_EVERY_RECORDS = 1024;

/** Records scanned per page at most, in pages of the asked size: the rest (tombstones) waits for the next call. */
export const SCAN_PAGES_PER_PAGE = 4;

/** Bytes an item costs an answer beside its key (and value), for the page's byte bound. */
const ITEM_BYTES = 32;

/** Which page to read: where the previous page ended ("" first), and how many at most (0: the configured page). */
export interface PageRequest {
  cursor: string;
  limit: number;
  /** The connection the call came on (grpc-js `getPeer()`): only its own cursors are taken. */
  connection: string;
}

/** One page of a node's keys. */
export interface KeyPage {
  keys: string[];
  /** Live keys the node holds in all (not only in this page). */
  count: number;
  nodeId: string;
  /** "" when no keys follow. */
  nextCursor: string;
}

/** One page of a node's live records. */
export interface SnapshotPage {
  records: KvRecord[];
  /** Live keys the node holds in all (not only in this page). */
  total: number;
  provider: string;
  /** The node's clock when the page was read. */
  timestamp: number;
  /** "" when no records follow. */
  nextCursor: string;
  message: string;
}

/** ListKeys: a page of live keys, and how many this node holds. */
export async function listKeys(node: KvNode, req: PageRequest): Promise<KeyPage> {
  const { records, nextCursor } = await callerPage(node, req, false);
  return {
    keys: records.map((r) => r.key),
    count: await node.storage.countLive(),
    nodeId: node.id,
    nextCursor,
  };
}

/** GetSnapshot: a page of this node's live records, with the total and where to go on. */
export async function snapshot(node: KvNode, req: PageRequest): Promise<SnapshotPage> {
  const { records, nextCursor } = await callerPage(node, req, true) as {
    records: KvRecord[];
    nextCursor: string;
  };
  const total = await node.storage.countLive();
  return {
    records,
    total,
    provider: node.id,
    timestamp: node.clock.now(),
    nextCursor,
    message: nextCursor
      ? `page of ${records.length} of ${total} keys; call again with cursor for the rest`
      : `${records.length} keys`,
  };
}

/** The next page of the caller's scan: its cursor to storage's, and storage's next one back to a new cursor of its own. */
async function callerPage(node: KvNode, req: PageRequest, withValues: boolean) {
  const lease = node.clientScans.take(req.connection, req.cursor);
  try {
    const { records, nextCursor } = await readPage(node, lease.storageCursor, req.limit, withValues);
    return { records, nextCursor: node.clientScans.settle(lease, nextCursor) };
  } catch (err) {
    node.clientScans.abandon(lease);
    throw err;
  }
}

/**
 * One page of live records (`withValues`), or of live versions. The page
 * stops at `limit` records or at half the message limit in bytes, so an
 * answer never exceeds what gRPC carries, and it is read in chunks no larger
 * than the bytes left could take, so it never holds more either.
 */
async function readPage(node: KvNode, cursor: string, limit: number, withValues: boolean) {
  // Both engines' cursors are numbers; anything else was not handed out here.
  if (cursor !== "" && !/^\d+$/.test(cursor)) {
    throw new KvError(Code.INVALID_ARGUMENT, `cursor "${cursor}" was not returned by a previous page`);
  }
  if (limit < 0) throw new KvError(Code.INVALID_ARGUMENT, `limit must not be negative, got ${limit}`);
  const lim = node.config.limits;
  const max = Math.min(limit > 0 ? limit : lim.maxPageItems, lim.maxPageItems);
  const maxBytes = lim.maxMessageBytes / 2;
  // The most one record can add to the answer, and to what one chunk reads (an engine
  // without scanVersions reads values even for ListKeys, which drops them).
  const withValue = lim.maxKeyBytes + ITEM_BYTES + lim.maxValueBytes + lim.maxKeyBytes;
  const largest = withValues ? withValue : lim.maxKeyBytes + ITEM_BYTES;
  const readsValues = withValues || !node.storage.scanVersions;
  const perChunk = Math.max(1, Math.floor(maxBytes / (readsValues ? withValue : largest)));
  const records: RecordVersion[] = [];
  let bytes = 0;
  let scanned = 0;
  let sinceYield = 0;
  let next = cursor;
  do {
    const room = Math.floor((maxBytes - bytes) / largest);
    const chunk = Math.min(
      SCAN_CHUNK_RECORDS,
      perChunk,
      max - records.length,
      records.length === 0 ? Math.max(1, room) : room,
    );
    if (chunk <= 0) break;
    const page = await scanChunk(node, next, chunk, withValues);
    const nowMs = Date.now();
    for (const r of page.records) {
      if (!isLive(r, nowMs)) continue;
      records.push(r);
      bytes += r.key.length + ITEM_BYTES +
        ("value" in r ? (r as KvRecord).value.length + r.versionNode.length : 0);
    }
    next = page.nextCursor;
    scanned += page.records.length;
    sinceYield += page.records.length;
    if (sinceYield >= YIELD_EVERY_RECORDS) {
      sinceYield = 0;
      await nextTurn();
    }
  } while (next !== "" && records.length < max && scanned < SCAN_PAGES_PER_PAGE * max);
  return { records, nextCursor: next };
}

/** One chunk of a scan: records, or versions only where the engine can skip the values. */
async function scanChunk(
  node: KvNode,
  cursor: string,
  limit: number,
  withValues: boolean,
): Promise<{ records: RecordVersion[]; nextCursor: string }> {
  const s = node.storage;
  if (withValues || !s.scanVersions) return await s.scan(cursor, limit);
  const page = await s.scanVersions(cursor, limit);
  return { records: page.versions, nextCursor: page.nextCursor };
}
