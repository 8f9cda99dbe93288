/**
 * Conditional writes and counters, as the library reaches them: ifAbsent /
 * ifVersion and increment, translated to KvClient's putIf, deleteIf and
 * increment, which run through per-key consensus on the key's replicas.
 * A conditional put may carry a ttl: the key's leader fixes its absolute
 * expiry once, so every copy expires at the same instant.
 */
import type { ConditionalWrite, KvClient } from "../grpc/kv_client.ts";
import type { Condition } from "../lwt/ops.ts";
import { KvStoreError } from "./errors.ts";
import type { Value, Version, WriteOutcome } from "./types.ts";

/** A condition as KvClient's putIf / deleteIf take it. */
export type WireCondition = Extract<Condition, { kind: "absent" } | { kind: "version" }>;

/** The condition of ifAbsent / ifVersion (validated: not both). */
export function conditionOf(opts: { ifAbsent?: boolean; ifVersion?: Version }): WireCondition | undefined {
  if (opts.ifAbsent && opts.ifVersion) throw new KvStoreError(3, "give ifAbsent or ifVersion, not both");
  if (opts.ifAbsent) return { kind: "absent" };
  if (opts.ifVersion) {
    return {
      kind: "version",
      version: { timestamp: opts.ifVersion.timestamp, versionNode: opts.ifVersion.node },
    };
  }
  return undefined;
}

/** A put applied only if `condition` holds, expiring `ttlMs` after it is applied when given. */
export async function conditionalPut(
  client: KvClient,
  key: string,
  value: Value,
  condition: WireCondition,
  ttlMs: number | undefined,
): Promise<WriteOutcome> {
  return outcome(await client.putIf(key, value, condition, ttlMs ? { ttlMs } : {}));
}

/** A delete applied only if `condition` holds. */
export async function conditionalDelete(
  client: KvClient,
  key: string,
  condition: WireCondition,
): Promise<WriteOutcome> {
  return outcome(await client.deleteIf(key, condition));
}

/** INCRBY: the new value. */
export async function increment(client: KvClient, key: string, delta: bigint | number): Promise<bigint> {
  if (typeof delta === "number" && !Number.isSafeInteger(delta)) {
    throw new KvStoreError(3, `increment takes an integer delta, not ${delta}`);
  }
  const r = await client.increment(key, delta);
  return BigInt(r.value);
}

function outcome(a: ConditionalWrite): WriteOutcome {
  const v = a.applied ? a.version : a.current?.version;
  return { applied: a.applied, version: v ? { timestamp: v.timestamp, node: v.versionNode } : undefined };
}
