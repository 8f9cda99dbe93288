/**
 * The gateway's calls into the node: reads and writes through its
 * coordinator, exactly as the gRPC edge makes them (grpc/server.ts), so a
 * RESP command is forwarded, replicated, hinted and failed over like a gRPC
 * call and the keyspace is one. Results that failed become Redis errors.
 */
import type { KvNode } from "../node.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import { Code } from "../errors.ts";
import { deleteToWrite, putToWrite } from "../grpc/messages.ts";
import { err, type Reply } from "./reply.ts";

/** Reads distinct keys through their coordinators. */
export function readKeys(node: KvNode, keys: readonly string[]): Promise<ReadResult[]> {
  return node.coordinator.read(keys, false);
}

/** Stores values (distinct keys) with the cluster's timestamps. */
export function putKeys(
  node: KvNode,
  items: readonly { key: string; value: Uint8Array }[],
): Promise<WriteResult[]> {
  return node.coordinator.write(
    items.map((i) => putToWrite({ key: i.key, value: i.value, timestamp: 0 })),
    false,
  );
}

/** Deletes distinct keys (tombstones). */
export function deleteKeys(node: KvNode, keys: readonly string[]): Promise<WriteResult[]> {
  return node.coordinator.write(keys.map(deleteToWrite), false);
}

/** The error reply of a failed read, or undefined when it answered (found or not). */
export function readFailure(r: ReadResult): Reply | undefined {
  return r.code === Code.OK ? undefined : err(r.message);
}

/**
 * The error reply of a failed write, or undefined when it was stored. A write
 * "not applied" because the key holds a newer version lost to a later one,
 * as with Redis's last writer: it succeeded as far as the client can tell.
 */
export function writeFailure(r: WriteResult): Reply | undefined {
  return r.code === Code.OK || r.code === Code.FAILED_PRECONDITION ? undefined : err(r.message);
}

/** The first failure among results, if any. */
export function firstFailure<R>(rs: readonly R[], check: (r: R) => Reply | undefined): Reply | undefined {
  for (const r of rs) {
    const f = check(r);
    if (f) return f;
  }
}
