/**
 * The messages of conditional writes, counters and per-key Paxos, and their
 * conversions to the typed records of `lib/lwt/`. Kept apart from
 * `messages.ts` so the consensus wire stays in one place.
 *
 * A conditional Put or Delete that is not applied is answered like a write
 * that lost to a newer version: success = false with error_code
 * FAILED_PRECONDITION (the call itself succeeds, so the answer can carry
 * the current value), and its `conditional` outcome says applied = false
 * with the key's current live value and version (current_found false: absent).
 */
import { Code, KvError, type StatusCode } from "../errors.ts";
import type { KvRecord } from "../record.ts";
import { checkKey, checkValue, type Limits } from "../validate.ts";
import type { PaxosVote } from "../lwt/acceptor.ts";
import type { LwtResult } from "../lwt/proposer.ts";
import { type Condition, type ExpiryRequest, type LwtOp, parseDelta, parseFloatDelta } from "../lwt/ops.ts";
import { checkExpiry } from "../expiry.ts";
import {
  ballotFromMsg,
  type BallotMsg,
  ballotToMsg,
  type KeyValuePairMsg,
  pairToRecord,
  recordToPair,
} from "./messages.ts";

export interface ConditionMsg {
  if_absent: boolean;
  if_exists: boolean;
  if_version_timestamp: number;
  if_version_node: string;
}

export interface ConditionalOutcomeMsg {
  applied: boolean;
  version_node: string;
  current_found: boolean;
  current_value: Uint8Array;
  current_timestamp: number;
  current_version_node: string;
}

/** A PutResponse or DeleteResponse of a conditional write. */
export interface ConditionalAnswerMsg {
  success: boolean;
  message: string;
  node_id: string;
  replicas_count: number;
  error_code: number;
  timestamp: number;
  conditional: ConditionalOutcomeMsg | null;
}

export interface IncrementRequestMsg {
  key: string;
  delta: string;
  float_delta: string;
}

export interface IncrementResponseMsg {
  value: string;
  timestamp: number;
  version_node: string;
  node_id: string;
}

export interface PaxosVoteMsg {
  refusal: string;
  promised: BallotMsg | null;
  has_accepted: boolean;
  accepted_ballot: BallotMsg | null;
  accepted: KeyValuePairMsg | null;
  has_current: boolean;
  current: KeyValuePairMsg | null;
  message: string;
}

export interface PaxosPrepareMsg {
  key: string;
  ballot: BallotMsg | null;
}

export interface PaxosAcceptMsg {
  key: string;
  ballot: BallotMsg | null;
  record: KeyValuePairMsg | null;
}

export interface PaxosCommitMsg {
  record: KeyValuePairMsg | null;
}

export interface ConditionalOpMsg {
  kind: "COND_PUT" | "COND_DELETE" | "COND_INCR" | "COND_INCR_FLOAT";
  key: string;
  value: Uint8Array;
  condition: ConditionMsg | null;
  delta: string;
  origin_node_id: string;
  ttl_ms?: number;
  expires_at_ms?: number;
}

export interface ConditionalResultMsg {
  applied: boolean;
  has_record: boolean;
  record: KeyValuePairMsg | null;
  /** Absent or 0 from older nodes. */
  refused_code?: number;
  refused_message?: string;
}

/** Whether a Put or Delete names a condition (an empty Condition names none). */
export function hasCondition(m: ConditionMsg | null | undefined): m is ConditionMsg {
  return !!m && (m.if_absent || m.if_exists || m.if_version_timestamp !== 0 || m.if_version_node !== "");
}

/** A Condition message as a condition; INVALID_ARGUMENT when it names more than one or half a version. */
export function conditionFromMsg(m: ConditionMsg | null | undefined): Condition {
  if (!hasCondition(m)) return { kind: "none" };
  const version = m.if_version_timestamp !== 0 || m.if_version_node !== "";
  if ([m.if_absent, m.if_exists, version].filter(Boolean).length > 1) {
    throw new KvError(Code.INVALID_ARGUMENT, "a condition names one of if_absent, if_exists, if_version");
  }
  if (m.if_absent) return { kind: "absent" };
  if (m.if_exists) return { kind: "exists" };
  if (m.if_version_timestamp <= 0 || m.if_version_node === "") {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      "if_version needs both if_version_timestamp and if_version_node",
    );
  }
  return { kind: "version", version: { timestamp: m.if_version_timestamp, versionNode: m.if_version_node } };
}

/** A condition as a message. */
export function conditionToMsg(c: Condition): ConditionMsg {
  return {
    if_absent: c.kind === "absent",
    if_exists: c.kind === "exists",
    if_version_timestamp: c.kind === "version" ? c.version.timestamp : 0,
    if_version_node: c.kind === "version" ? c.version.versionNode : "",
  };
}

/** A conditional write's outcome as a PutResponse / DeleteResponse. */
export function resultToAnswer(r: LwtResult, nodeId: string, replicas: number): ConditionalAnswerMsg {
  const written = r.applied ? r.record : undefined;
  const current = r.applied ? undefined : r.current;
  return {
    success: r.applied,
    message: written
      ? (written.tombstone ? "deleted" : "stored")
      : `condition not met: the key ${current ? "holds another version" : "is absent"}`,
    node_id: nodeId,
    replicas_count: written ? replicas : 0,
    error_code: written ? Code.OK : Code.FAILED_PRECONDITION,
    timestamp: written?.timestamp ?? 0,
    conditional: {
      applied: r.applied,
      version_node: written?.versionNode ?? "",
      current_found: current !== undefined,
      current_value: current?.value ?? new Uint8Array(0),
      current_timestamp: current?.timestamp ?? 0,
      current_version_node: current?.versionNode ?? "",
    },
  };
}

/** A client's Increment as an operation (INVALID_ARGUMENT for a bad key or delta). */
export function incrementFromMsg(m: IncrementRequestMsg, limits: Limits): LwtOp {
  checkKey(m.key, limits);
  if (m.float_delta !== "") {
    if (m.delta !== "") throw new KvError(Code.INVALID_ARGUMENT, "set delta or float_delta, not both");
    return { kind: "incrFloat", key: m.key, delta: parseFloatDelta(m.float_delta) };
  }
  return { kind: "incr", key: m.key, delta: parseDelta(m.delta) };
}

/** An operation as the message a node forwards to the key's leader. */
export function opToMsg(op: LwtOp, origin: string): ConditionalOpMsg {
  const base = { key: op.key, value: new Uint8Array(0), condition: null, delta: "", origin_node_id: origin };
  switch (op.kind) {
    case "put":
      return {
        ...base,
        kind: op.tombstone ? "COND_DELETE" : "COND_PUT",
        value: op.value,
        condition: conditionToMsg(op.condition),
        ttl_ms: op.expiry?.ttlMs ?? 0,
        expires_at_ms: op.expiry?.expiresAtMs ?? 0,
      };
    case "incr":
      return { ...base, kind: "COND_INCR", delta: op.delta.toString() };
    case "incrFloat":
      return { ...base, kind: "COND_INCR_FLOAT", delta: String(op.delta) };
  }
}

/** A forwarded operation, checked as a client's would be. */
export function opFromMsg(m: ConditionalOpMsg, limits: Limits): LwtOp {
  checkKey(m.key, limits);
  switch (m.kind) {
    case "COND_INCR":
      return { kind: "incr", key: m.key, delta: parseDelta(m.delta) };
    case "COND_INCR_FLOAT":
      return { kind: "incrFloat", key: m.key, delta: parseFloatDelta(m.delta) };
    case "COND_PUT":
      checkValue(m.value, limits);
      break;
    case "COND_DELETE":
      break;
    default:
      throw new KvError(
        Code.INVALID_ARGUMENT,
        `unknown conditional operation ${String(m.kind).slice(0, 32)}`,
      );
  }
  const tombstone = m.kind === "COND_DELETE";
  const op: LwtOp = {
    kind: "put",
    key: m.key,
    value: tombstone ? new Uint8Array(0) : m.value,
    tombstone,
    condition: conditionFromMsg(m.condition),
  };
  const expiry = tombstone ? {} : expiryFromMsg(m);
  if (expiry.ttlMs || expiry.expiresAtMs) op.expiry = expiry;
  return op;
}

/**
 * A Put's or forwarded op's expiry fields, checked (INVALID_ARGUMENT for a
 * bad one); `{}` when none.
 */
export function expiryFromMsg(m: { ttl_ms?: number; expires_at_ms?: number }): ExpiryRequest {
  const ttlMs = Number(m.ttl_ms ?? 0);
  const expiresAtMs = Number(m.expires_at_ms ?? 0);
  checkExpiry(ttlMs, expiresAtMs);
  if (ttlMs) return { ttlMs };
  return expiresAtMs ? { expiresAtMs } : {};
}

/** A leader's refusal as an answer (see ConditionalResult in the proto for why not a status). */
export function refusalToMsg(err: KvError): ConditionalResultMsg {
  return {
    applied: false,
    has_record: false,
    record: null,
    refused_code: err.code,
    refused_message: err.message,
  };
}

export function resultToMsg(r: LwtResult): ConditionalResultMsg {
  const record = r.applied ? r.record : r.current;
  return {
    applied: r.applied,
    has_record: record !== undefined,
    record: record ? recordToPair(record) : null,
  };
}

export function resultFromMsg(m: ConditionalResultMsg): LwtResult {
  if (m.refused_code) throw new KvError(m.refused_code as StatusCode, m.refused_message ?? "refused");
  const record = m.has_record && m.record ? pairToRecord(m.record) : undefined;
  if (m.applied) {
    if (!record) {
      throw new KvError(Code.INTERNAL, "an applied conditional operation came back without its record");
    }
    return { applied: true, record };
  }
  return { applied: false, current: record };
}

export function paxosVoteToMsg(v: PaxosVote): PaxosVoteMsg {
  const msg: PaxosVoteMsg = {
    refusal: "VOTE_OK",
    promised: null,
    has_accepted: false,
    accepted_ballot: null,
    accepted: null,
    has_current: false,
    current: null,
    message: "",
  };
  if (v.ok) {
    if (v.accepted) {
      Object.assign(msg, {
        has_accepted: true,
        accepted_ballot: ballotToMsg(v.accepted.ballot),
        accepted: recordToPair(v.accepted.record),
      });
    }
    if (v.current) Object.assign(msg, { has_current: true, current: recordToPair(v.current) });
    return msg;
  }
  if (v.refusal === "outbid") {
    return { ...msg, refusal: "VOTE_OUTBID", promised: ballotToMsg(v.promised), message: v.message };
  }
  return { ...msg, refusal: "VOTE_NOT_VOTING", message: v.message };
}

export function paxosVoteFromMsg(m: PaxosVoteMsg): PaxosVote {
  if (m.refusal === "VOTE_OK") {
    const accepted = m.has_accepted && m.accepted
      ? { ballot: ballotFromMsg(m.accepted_ballot), record: pairToRecord(m.accepted) }
      : undefined;
    const current = m.has_current && m.current ? pairToRecord(m.current) : undefined;
    return { ok: true, accepted, current };
  }
  if (m.refusal === "VOTE_OUTBID") {
    return { ok: false, refusal: "outbid", promised: ballotFromMsg(m.promised), message: m.message };
  }
  return { ok: false, refusal: "not_voting", message: m.message || `unknown vote ${m.refusal}` };
}

/** A record sent in a Paxos phase, checked like a replicated one would be. */
export function checkedRecord(m: KeyValuePairMsg | null, key: string | undefined, limits: Limits): KvRecord {
  if (!m) throw new KvError(Code.INVALID_ARGUMENT, "the record is missing");
  checkKey(m.key, limits);
  checkValue(m.value, limits);
  if (key !== undefined && m.key !== key) {
    throw new KvError(Code.INVALID_ARGUMENT, "the record is of another key");
  }
  return pairToRecord(m);
}
