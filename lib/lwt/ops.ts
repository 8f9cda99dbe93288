/**
 * What a conditional operation does to a key's current record: pure
 * functions, so the rules are tested without a cluster.
 *
 * The per-key Paxos round (`proposer.ts`) reads the key's newest record at a
 * majority of its replicas and hands it here: a conditional put or delete
 * checks its condition, an increment parses the value as Redis does (a
 * decimal-string signed 64-bit integer, computed with BigInt so nothing is
 * lost above 2^53; INCRBYFLOAT as a double) and says the new value. The
 * errors carry Redis's own words, so the Redis gateway can pass them on.
 * A condition is a tagged union so that an expiry test (`expiresAt`) can
 * join it later without changing the others.
 *
 * Expiry, as Redis has it: an expired key does not exist. A record past its
 * `expiresAtMs` (at the deciding node's clock) counts as absent for every
 * condition (ifAbsent holds, ifExists and ifVersion of its version fail) and
 * an increment of it starts from 0 without an expiry. A conditional put
 * stores the absolute expiry its op carries (fixed once by the leader, see
 * service.ts) or none; an increment keeps the live record's expiry, as
 * Redis's INCR keeps the key's TTL.
 */
import { Code, KvError } from "../errors.ts";
import { isExpired, type KvRecord, type Version } from "../record.ts";

/** What a conditional write requires of the key's current state. */
export type Condition =
  | { kind: "none" }
  | { kind: "absent" }
  | { kind: "exists" }
  | { kind: "version"; version: Version };

/** A write's expiry as a client asks it: a ttl, or an absolute one (ms since the epoch). */
export interface ExpiryRequest {
  ttlMs?: number;
  expiresAtMs?: number;
}

/**
 * One operation run through per-key consensus. A put's `expiry` is what the
 * client asked; the leader turns a ttl into `expiresAtMs` once (fixExpiry)
 * before its first round, so every retry and every replica gets the same.
 */
export type LwtOp =
  | {
    kind: "put";
    key: string;
    value: Uint8Array;
    tombstone: boolean;
    condition: Condition;
    expiry?: ExpiryRequest;
  }
  | { kind: "incr"; key: string; delta: bigint }
  | { kind: "incrFloat"; key: string; delta: number };

/** What an operation decided against the current record. */
export type Decision =
  | { apply: true; value: Uint8Array; tombstone: boolean; expiresAtMs?: number }
  /** `current`: the key's live record, undefined when absent (deleted or expired). */
  | { apply: false; current?: KvRecord };

export const INT_ERROR = "value is not an integer or out of range";
export const OVERFLOW_ERROR = "increment or decrement would overflow";
export const FLOAT_ERROR = "value is not a valid float";
export const FLOAT_RANGE_ERROR = "increment would produce NaN or Infinity";

const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether a record holds a live value at `nowMs` (not absent, not deleted, not expired). */
export function isLive(r: KvRecord | undefined, nowMs = Date.now()): r is KvRecord {
  return r !== undefined && !r.tombstone && !isExpired(r, nowMs);
}

/** Whether the condition holds against the current record at `nowMs`. */
export function holds(c: Condition, current: KvRecord | undefined, nowMs = Date.now()): boolean {
  switch (c.kind) {
    case "none":
      return true;
    case "absent":
      return !isLive(current, nowMs);
    case "exists":
      return isLive(current, nowMs);
    case "version":
      return isLive(current, nowMs) && current.timestamp === c.version.timestamp &&
        current.versionNode === c.version.versionNode;
  }
}

/**
 * Decides an operation against the key's current record at `nowMs` (the
 * deciding node's wall clock); throws Redis's errors for bad values.
 */
export function decide(op: LwtOp, current: KvRecord | undefined, nowMs = Date.now()): Decision {
  const live = isLive(current, nowMs) ? current : undefined;
  if (op.kind === "put") {
    if (!holds(op.condition, current, nowMs)) return { apply: false, current: live };
    if (op.tombstone) return { apply: true, value: new Uint8Array(0), tombstone: true };
    return withExpiry({ apply: true, value: op.value, tombstone: false }, op.expiry?.expiresAtMs);
  }
  const text = live ? decoder.decode(live.value) : undefined;
  const next = op.kind === "incr" ? addInt(text, op.delta) : addFloat(text, op.delta);
  // INCR keeps the key's TTL; an expired counter starts over from 0 without one.
  return withExpiry({ apply: true, value: encoder.encode(next), tombstone: false }, live?.expiresAtMs);
}

/**
 * The op with its ttl turned into an absolute expiry at `nowMs` (the
 * leader's clock), once, so every round and every replica stores the same.
 */
export function fixExpiry(op: LwtOp, nowMs: number): LwtOp {
  if (op.kind !== "put" || !op.expiry?.ttlMs) return op;
  return { ...op, expiry: { expiresAtMs: nowMs + op.expiry.ttlMs } };
}

function withExpiry(d: Decision & { apply: true }, expiresAtMs: number | undefined): Decision {
  if (expiresAtMs) d.expiresAtMs = expiresAtMs;
  return d;
}

/** Parses a signed 64-bit decimal integer exactly as Redis's string2ll accepts it; undefined otherwise. */
export function parseInt64(text: string): bigint | undefined {
  if (!/^(0|-?[1-9][0-9]{0,19})$/.test(text)) return undefined;
  const n = BigInt(text);
  return n < MIN || n > MAX ? undefined : n;
}

/** INCRBY: the new value as Redis prints it. */
export function addInt(current: string | undefined, delta: bigint): string {
  const held = current === undefined ? 0n : parseInt64(current);
  if (held === undefined) throw new KvError(Code.FAILED_PRECONDITION, INT_ERROR);
  const sum = held + delta;
  if (sum < MIN || sum > MAX) throw new KvError(Code.FAILED_PRECONDITION, OVERFLOW_ERROR);
  return sum.toString();
}

/** INCRBYFLOAT: the new value, printed without exponent or trailing zeros. */
export function addFloat(current: string | undefined, delta: number): string {
  const held = current === undefined ? 0 : parseFloatStrict(current);
  if (held === undefined) throw new KvError(Code.FAILED_PRECONDITION, FLOAT_ERROR);
  const sum = held + delta;
  if (!Number.isFinite(sum)) throw new KvError(Code.FAILED_PRECONDITION, FLOAT_RANGE_ERROR);
  return formatFloat(sum);
}

/** A finite number written as Redis accepts it (no spaces, no hex, no "inf"); undefined otherwise. */
export function parseFloatStrict(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Shortest round-trip digits, in plain notation (Redis never prints an exponent here). */
export function formatFloat(n: number): string {
  if (Object.is(n, -0)) return "0";
  const s = String(n);
  if (!/e/i.test(s)) return s;
  return Math.abs(n) >= 1 ? BigInt(n).toString() : n.toFixed(20).replace(/0+$/, "").replace(/\.$/, "");
}

/** A client's delta: "" is 1 (INCR); anything else must be a 64-bit integer. */
export function parseDelta(text: string): bigint {
  if (text === "") return 1n;
  const n = parseInt64(text);
  if (n === undefined) throw new KvError(Code.INVALID_ARGUMENT, INT_ERROR);
  return n;
}

/** A client's float delta. */
export function parseFloatDelta(text: string): number {
  const n = parseFloatStrict(text);
  if (n === undefined) throw new KvError(Code.INVALID_ARGUMENT, FLOAT_ERROR);
  return n;
}

/** A version as the CLI and messages print it: `timestamp@node`. */
export function formatVersion(v: Version): string {
  return `${v.timestamp}@${v.versionNode}`;
}

/** Reads `timestamp@node`; INVALID_ARGUMENT otherwise. */
export function parseVersion(text: string): Version {
  const at = text.indexOf("@");
  const ts = Number(text.slice(0, at));
  if (at <= 0 || !Number.isSafeInteger(ts) || ts <= 0 || at === text.length - 1) {
    throw new KvError(Code.INVALID_ARGUMENT, `version "${text.slice(0, 80)}" is not TIMESTAMP@NODE`);
  }
  return { timestamp: ts, versionNode: text.slice(at + 1) };
}
