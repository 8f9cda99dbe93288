/**
 * Listing a node's own data a page at a time: ListKeys for clients,
 * GetSnapshot for operators and peers.
 *
 * A page stops at the asked (or configured) number of records or at half
 * the gRPC message limit in bytes, whichever comes first, so no answer can
 * exceed what gRPC carries; cursors are the storage engine's, and one not
 * handed out here is refused. `grpc/server.ts` registers both calls.
 */
import type { KvNode } from "./node.ts";
import type { KvRecord } from "./record.ts";
import { Code, KvError } from "./errors.ts";
import {
  type ListKeysRequestMsg,
  type ListKeysResponseMsg,
  recordToPair,
  type SnapshotRequestMsg,
} from "./grpc/messages.ts";

/** ListKeys: a page of live keys, and how many this node holds. */
export async function listKeys(node: KvNode, req: ListKeysRequestMsg): Promise<ListKeysResponseMsg> {
  const { records, nextCursor } = await readPage(node, req.cursor, req.limit, (r) => !r.tombstone);
  return {
    keys: records.map((r) => r.key),
    count: await node.storage.countLive(),
    node_id: node.id,
    next_cursor: nextCursor,
  };
}

/** GetSnapshot: a page of this node's live records, with the total and where to go on. */
export async function snapshot(node: KvNode, req: SnapshotRequestMsg) {
  const { records, nextCursor } = await readPage(node, req.cursor, req.limit, (r) => !r.tombstone);
  const total = await node.storage.countLive();
  return {
    data: records.map(recordToPair),
    total_keys: total,
    provider_node_id: node.id,
    snapshot_timestamp: node.clock.now(),
    next_cursor: nextCursor,
    message: nextCursor
      ? `page of ${records.length} of ${total} keys; call again with cursor for the rest`
      : `${records.length} keys`,
  };
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
