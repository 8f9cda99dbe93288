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
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { Code, KvError } from "./errors.ts";

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
  const { records, nextCursor } = await callerPage(node, req, (r) => !r.tombstone);
  return {
    keys: records.map((r) => r.key),
    count: await node.storage.countLive(),
    nodeId: node.id,
    nextCursor,
  };
}

/** GetSnapshot: a page of this node's live records, with the total and where to go on. */
export async function snapshot(node: KvNode, req: PageRequest): Promise<SnapshotPage> {
  const { records, nextCursor } = await callerPage(node, req, (r) => !r.tombstone);
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
async function callerPage(node: KvNode, req: PageRequest, accept: (r: KvRecord) => boolean) {
  const lease = node.clientScans.take(req.connection, req.cursor);
  try {
    const { records, nextCursor } = await readPage(node, lease.storageCursor, req.limit, accept);
    return { records, nextCursor: node.clientScans.settle(lease, nextCursor) };
  } catch (err) {
    node.clientScans.abandon(lease);
    throw err;
  }
}

/**
 * One page of live records. The page stops at `limit` records or at half
 * the message limit in bytes, so an answer never exceeds what gRPC carries.
 */
async function readPage(node: KvNode, cursor: string, limit: number, accept: (r: KvRecord) => boolean) {
  // Both engines' cursors are numbers; anything else was not handed out here.
  if (cursor !== "" && !/^\d+$/.test(cursor)) {
    throw new KvError(Code.INVALID_ARGUMENT, `cursor "${cursor}" was not returned by a previous page`);
  }
  if (limit < 0) throw new KvError(Code.INVALID_ARGUMENT, `limit must not be negative, got ${limit}`);
  const max = Math.min(
    limit > 0 ? limit : node.config.limits.maxPageItems,
    node.config.limits.maxPageItems,
  );
  const maxBytes = node.config.limits.maxMessageBytes / 2;
  const records: KvRecord[] = [];
  let bytes = 0;
  let next = cursor;
  do {
    const page = await node.storage.scan(next, max - records.length);
    for (const r of page.records) {
      if (!accept(r)) continue;
      records.push(r);
      bytes += r.key.length + r.value.length + 32;
    }
    next = page.nextCursor;
  } while (next !== "" && records.length < max && bytes < maxBytes);
  return { records, nextCursor: next };
}
