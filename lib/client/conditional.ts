/**
 * Conditional writes and counters, as the library reaches them.
 *
 * They run through per-key consensus (branch per-key-paxos), whose client
 * calls are `KvClient.putIf`, `deleteIf` and `increment`. This build's
 * KvClient may not have them yet: the library looks for them at run time and
 * answers UNIMPLEMENTED with a clear message when they are missing, rather
 * than writing unconditionally, so a program never believes a condition held
 * when it was not checked.
 */
import type { KvClient } from "../grpc/kv_client.ts";
import { KvStoreError } from "./errors.ts";
import type { Value, Version, WriteOutcome } from "./types.ts";

/** A version as KvClient speaks it. */
interface WireVersion {
  timestamp: number;
  versionNode: string;
}

/** A condition as KvClient's putIf / deleteIf take it. */
export type WireCondition = { kind: "absent" } | { kind: "version"; version: WireVersion };

/** A conditional write's answer from KvClient. */
interface ConditionalAnswer {
  applied: boolean;
  version?: WireVersion;
  current?: { value: Uint8Array; version: WireVersion };
}

/** The calls of a KvClient that has per-key consensus. */
interface ConditionalCalls {
  putIf(
    key: string,
    value: Value,
    condition: WireCondition,
    expiry?: { ttlMs?: number },
  ): Promise<ConditionalAnswer>;
  deleteIf(key: string, condition: WireCondition): Promise<ConditionalAnswer>;
  increment(key: string, delta: bigint | number): Promise<{ value: string }>;
}

/** The client's conditional calls, or an UNIMPLEMENTED error naming what is missing. */
function calls(client: KvClient, what: string): ConditionalCalls {
  const c = client as unknown as Partial<ConditionalCalls>;
  if (
    typeof c.putIf === "function" && typeof c.deleteIf === "function" && typeof c.increment === "function"
  ) {
    return c as ConditionalCalls;
  }
  throw new KvStoreError(12, `${what} needs per-key consensus, which this build of kvstore does not have`);
}

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

/** A put applied only if `condition` holds. */
export async function conditionalPut(
  client: KvClient,
  key: string,
  value: Value,
  condition: WireCondition,
  ttlMs: number | undefined,
): Promise<WriteOutcome> {
  const c = calls(client, "a conditional put");
  // An older putIf takes no expiry: refuse rather than drop the ttl silently.
  if (ttlMs && c.putIf.length < 4) {
    throw new KvStoreError(12, "a conditional put with ttlMs is not supported by this build of kvstore");
  }
  return outcome(await c.putIf(key, value, condition, ttlMs ? { ttlMs } : undefined));
}

/** A delete applied only if `condition` holds. */
export async function conditionalDelete(
  client: KvClient,
  key: string,
  condition: WireCondition,
): Promise<WriteOutcome> {
  return outcome(await calls(client, "a conditional delete").deleteIf(key, condition));
}

/** INCRBY: the new value. */
export async function increment(client: KvClient, key: string, delta: bigint | number): Promise<bigint> {
  if (typeof delta === "number" && !Number.isSafeInteger(delta)) {
    throw new KvStoreError(3, `increment takes an integer delta, not ${delta}`);
  }
  const r = await calls(client, "increment").increment(key, delta);
  return BigInt(r.value);
}

function outcome(a: ConditionalAnswer): WriteOutcome {
  const v = a.applied ? a.version : a.current?.version;
  return { applied: a.applied, version: v ? { timestamp: v.timestamp, node: v.versionNode } : undefined };
}
