/**
 * The gateway's calls into the node: reads and writes through its
 * coordinator, exactly as the gRPC edge makes them (grpc/server.ts), so a
 * RESP command is forwarded, replicated, hinted and failed over like a gRPC
 * call and the keyspace is one. Results that failed become Redis errors.
 */
import type { KvNode } from "../node.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import { Code, KvError } from "../errors.ts";
import { AnswerBudget } from "../answer_budget.ts";
import { checkBatch } from "../validate.ts";
import { RespError } from "./args.ts";
import { deleteToWrite, putToWrite } from "../grpc/messages.ts";
import { err, type Reply } from "./reply.ts";

/**
 * Reads distinct keys through their coordinators. The answer is bounded as a
 * MultiGet's is (limits.max_message_bytes): a part that would pass it fails
 * RESOURCE_EXHAUSTED before its values are gathered, so no MGET or pipelined
 * run of GETs makes the node build an unbounded reply.
 */
export function readKeys(node: KvNode, keys: readonly string[], what = "GET"): Promise<ReadResult[]> {
  return node.coordinator.read(keys, false, new AnswerBudget(node.config.limits.maxMessageBytes, what));
}

/** Refuses a command naming more keys than a batch may hold (limits.max_batch_items). */
export function checkKeyCount(node: KvNode, count: number): void {
  try {
    checkBatch(count, node.config.limits);
  } catch (e) {
    if (e instanceof KvError) throw new RespError(err(e.message));
    throw e;
  }
}

/** A value to store, with its expiry when it has one (checked beforehand: expiry_args.ts). */
export interface PutItem {
  key: string;
  value: Uint8Array;
  ttlMs?: number;
  expiresAtMs?: number;
}

/** Stores values (distinct keys) with the cluster's timestamps. */
export function putKeys(node: KvNode, items: readonly PutItem[]): Promise<WriteResult[]> {
  return node.coordinator.write(
    items.map((i) =>
      putToWrite({ key: i.key, value: i.value, timestamp: 0, ttl_ms: i.ttlMs, expires_at_ms: i.expiresAtMs })
    ),
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
