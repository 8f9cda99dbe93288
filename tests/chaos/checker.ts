/**
 * A Jepsen-style checker over the history of a chaos run.
 *
 * Every operation has an invocation time, a completion time and an outcome:
 * `ok` (acknowledged), `fail` (certainly not applied) or `unknown` (timed out
 * or errored: it may or may not have landed, now or later). Every put writes a
 * value no other put writes, so a value names the write that made it.
 *
 * Write `b` may be ordered after write `a` unless `b` completed before `a`
 * began; an unknown write may complete at any time. From that one rule:
 * - an acknowledged write is lost when the final state comes only from
 *   writes that completed before it began (an acknowledged delete that is
 *   lost this way is a key that came back);
 * - a read is stale when everything that could have produced its answer
 *   completed before some write that was acknowledged before the read began;
 * - a read or final state that no attempted write can explain is a phantom.
 *
 * Write-once keys (each put a new key, never rewritten) are checked by the
 * same rule, so an acknowledged one missing at the end is lost; they are
 * counted apart because they are the only losses a rewrite cannot hide.
 * Each key is checked on its own by the model of its operations
 * ({@link checkKey}): increments, put-if-absent and compare-and-set keys go
 * to conditional_checker.ts.
 */
import {
  checkConditionalKey,
  type ConditionalResult,
  emptyConditional,
  isConditional,
} from "./conditional_checker.ts";

/** What an operation did. */
export type OpKind = "put" | "delete" | "get" | "incr" | "putIfAbsent" | "cas";

/** How an operation ended. */
export type Outcome = "ok" | "fail" | "unknown";

/** One operation of the history. */
export interface Op {
  kind: OpKind;
  key: string;
  /** The value a put wrote, a get returned (when found), or an increment returned. */
  value?: string;
  /** Whether a get found the key. */
  found?: boolean;
  /** Milliseconds (any epoch shared by the whole history) when it was invoked and when it returned. */
  start: number;
  end: number;
  outcome: Outcome;
  /** Set on a put of a write-once key (a key no other operation touches). */
  once?: boolean;
  /** Which client issued it, and its error (with its gRPC code) if any. */
  process?: number;
  error?: string;
  code?: number;
  /** An answered put-if-absent or CAS: whether it won, and else the value it found (CAS: undefined, absent). */
  applied?: boolean;
  current?: string;
  /** A CAS: the value and version (`timestamp@node`, "" when absent) its read saw, its condition. */
  expected?: string;
  expectedVersion?: string;
}

/** A key's state: present with a value, or absent (never written, or deleted). */
export interface KeyState {
  found: boolean;
  value?: string;
}

/** One violation, with the operation that shows it. */
export interface Anomaly {
  key: string;
  op: Op;
  why: string;
}

/** What the checker found. */
export interface CheckResult {
  writesAttempted: number;
  writesAcknowledged: number;
  reads: number;
  readsOk: number;
  /** Acknowledged puts of rewritten keys whose value is gone without a later write that could explain it. */
  lostWrites: Anomaly[];
  /** Acknowledged deletes whose key is back with an older value. */
  resurrections: Anomaly[];
  staleReads: Anomaly[];
  /** Reads or final states no attempted write explains (or only a failed one). */
  phantoms: Anomaly[];
  /** Share of plain operations that did not succeed (fail or unknown). */
  unavailableShare: number;
  /** Increments, put-if-absent and compare-and-set (conditional_checker.ts). */
  conditional: ConditionalResult;
  /** Write-once keys: how many were acknowledged, and which of those are missing at the end. */
  writeOnce: { attempted: number; acknowledged: number; lost: Anomaly[] };
}

/** A write that could have produced a state, with the latest time it could have taken effect. */
interface Source {
  op?: Op;
  latestEnd: number;
}

/** Checks a history against the final state of every key (keys missing from `final` are absent). */
export function check(history: readonly Op[], final: ReadonlyMap<string, KeyState>): CheckResult {
  const byKey = new Map<string, Op[]>();
  for (const op of history) {
    let ops = byKey.get(op.key);
    if (!ops) byKey.set(op.key, ops = []);
    ops.push(op);
  }
  for (const key of final.keys()) if (!byKey.has(key)) byKey.set(key, []);
  const result: CheckResult = {
    writesAttempted: 0,
    writesAcknowledged: 0,
    reads: 0,
    readsOk: 0,
    lostWrites: [],
    resurrections: [],
    staleReads: [],
    phantoms: [],
    unavailableShare: 0,
    writeOnce: { attempted: 0, acknowledged: 0, lost: [] },
    conditional: emptyConditional(),
  };
  let failed = 0;
  let plain = 0;
  for (const [key, ops] of byKey) {
    if (isConditional(ops)) {
      checkConditionalKey(key, ops, final.get(key), result.conditional);
      continue;
    }
    plain += ops.length;
    failed += ops.filter((o) => o.outcome !== "ok").length;
    checkKey(key, ops, final.get(key) ?? { found: false }, result);
  }
  result.unavailableShare = plain === 0 ? 0 : failed / plain;
  return result;
}

/** Checks one key's operations as a register (puts, deletes and gets of one value at a time). */
function checkKey(key: string, ops: Op[], state: KeyState, result: CheckResult): void {
  const writes = ops.filter((o) => o.kind !== "get");
  const acked = writes.filter((o) => o.outcome === "ok");
  result.writesAttempted += writes.length;
  result.writesAcknowledged += acked.length;
  const once = writes.filter((o) => o.once);
  result.writeOnce.attempted += once.length;
  result.writeOnce.acknowledged += once.filter((o) => o.outcome === "ok").length;
  for (const read of ops.filter((o) => o.kind === "get")) {
    result.reads++;
    if (read.outcome !== "ok") continue;
    result.readsOk++;
    checkRead(key, read, writes, acked, result);
  }
  checkFinal(key, state, writes, acked, result);
}

function checkRead(key: string, read: Op, writes: Op[], acked: Op[], result: CheckResult): void {
  const sources = sourcesOf({ found: read.found ?? false, value: read.value }, writes)
    .filter((s) => !s.op || s.op.start <= read.end);
  if (sources.length === 0) {
    result.phantoms.push({ key, op: read, why: `read ${describe(read)}, which no write before it explains` });
    return;
  }
  const newest = Math.max(...sources.map((s) => s.latestEnd));
  const before = acked.filter((w) => w.end < read.start && newest < w.start);
  if (before.length > 0) {
    const w = before.reduce((a, b) => (b.start > a.start ? b : a));
    result.staleReads.push({
      key,
      op: read,
      why: `read ${describe(read)} after ${describe(w)} was acknowledged (at ${w.end.toFixed(1)}, ` +
        `read began ${read.start.toFixed(1)})`,
    });
  }
}

function checkFinal(key: string, state: KeyState, writes: Op[], acked: Op[], result: CheckResult): void {
  const sources = sourcesOf(state, writes);
  if (sources.length === 0) {
    result.phantoms.push({
      key,
      op: { kind: "get", key, ...state, start: Infinity, end: Infinity, outcome: "ok" },
      why: `final state ${state.found ? `"${state.value}"` : "absent"} is explained by no attempted write`,
    });
    return;
  }
  const newest = Math.max(...sources.map((s) => s.latestEnd));
  for (const w of acked) {
    if (newest >= w.start) continue;
    const now = state.found ? `"${state.value}"` : "absent";
    const anomaly = { key, op: w, why: `acknowledged ${describe(w)} is gone: the key is ${now} at the end` };
    const into = w.kind === "delete"
      ? result.resurrections
      : w.once
      ? result.writeOnce.lost
      : result.lostWrites;
    into.push(anomaly);
  }
}

/** The attempted writes (and the initial absence) that could have produced a state. */
function sourcesOf(state: KeyState, writes: Op[]): Source[] {
  const possible = writes.filter((w) => w.outcome !== "fail");
  if (state.found) {
    return possible.filter((w) => w.kind === "put" && w.value === state.value).map(source);
  }
  return [{ latestEnd: -Infinity }, ...possible.filter((w) => w.kind === "delete").map(source)];
}

function source(op: Op): Source {
  return { op, latestEnd: op.outcome === "unknown" ? Infinity : op.end };
}

function describe(op: Op): string {
  if (op.kind === "get") return op.found ? `"${op.value}"` : "absent";
  return op.kind === "put" ? `put "${op.value}"` : "delete";
}
