/**
 * Listing the whole cluster's keys, each once, a page at a time.
 *
 * ListKeys answers one node's own copies, so every key shows up on each of
 * its replicas. The library walks the active nodes in id order and keeps a
 * key only from the node that lists it for the cluster: the first active
 * node of its preference list (its owner while that is up). The cursor names
 * the node being walked and that node's own cursor; node cursors are bound to
 * the connection, so a cursor is good for the same KvStore only. While the
 * membership changes (a join, a removal, a node failing) a key can be listed
 * twice or missed, as with Redis's SCAN during a resize.
 */
import { Buffer } from "node:buffer";
import type { KvClient, Membership } from "../grpc/kv_client.ts";
import { HashRing } from "../ring.ts";
import { KvStoreError } from "./errors.ts";
import type { ListOptions, ListPage } from "./types.ts";

/** Keys per page when the caller gives no limit. */
const DEFAULT_LIMIT = 1000;

/** Who lists which key: the active nodes in walking order, and the ring to place keys on. */
interface Listers {
  order: string[];
  addressOf: Map<string, string>;
  listerOf(key: string): string | undefined;
}

function listers(m: Membership): Listers {
  const serving = m.members.filter((n) => n.memberState !== "JOINING");
  const ring = new HashRing(serving.map((n) => n.id), m.virtualNodes);
  const active = new Set(serving.filter((n) => n.status === "ACTIVE").map((n) => n.id));
  const copies = Math.max(1, m.replicationFactor);
  return {
    order: [...active].sort(),
    addressOf: new Map(m.members.map((n) => [n.id, n.address])),
    listerOf: (key) => ring.preferenceList(key, copies, (id) => active.has(id))[0],
  };
}

interface Position {
  node: string;
  cursor: string;
}

function encode(p: Position): string {
  return Buffer.from(JSON.stringify(p), "utf8").toString("base64url");
}

function decode(cursor: string): Position {
  try {
    const p = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (typeof p?.node === "string" && typeof p?.cursor === "string") return p;
  } catch { /* reported below */ }
  throw new KvStoreError(3, "not a cursor this library returned");
}

/** One page of the cluster's keys (see the module's notes on what "each once" means). */
export async function listPage(client: KvClient, opts: ListOptions): Promise<ListPage> {
  const limit = opts.limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new KvStoreError(3, `limit must be a positive integer`);
  }
  const m = client.lastMembership ?? await client.membership();
  const l = listers(m);
  const from = opts.cursor ? decode(opts.cursor) : undefined;
  // A node gone since the cursor was made: go on with the next one in order.
  let idx = from ? l.order.findIndex((id) => id >= from.node) : 0;
  if (idx < 0) idx = l.order.length;
  let nodeCursor = from && l.order[idx] === from.node ? from.cursor : "";
  const prefix = opts.prefix ?? "";
  const keys: string[] = [];
  while (keys.length < limit && idx < l.order.length) {
    const id = l.order[idx];
    const page = await client.listKeys(l.addressOf.get(id)!, {
      limit: limit - keys.length,
      cursor: nodeCursor,
    });
    for (const k of page.keys) if (k.startsWith(prefix) && l.listerOf(k) === id) keys.push(k);
    nodeCursor = page.nextCursor;
    if (nodeCursor === "") idx++;
  }
  return { keys, cursor: idx < l.order.length ? encode({ node: l.order[idx], cursor: nodeCursor }) : "" };
}
