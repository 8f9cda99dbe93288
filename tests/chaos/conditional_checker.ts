/**
 * Checks of the conditional operations of a chaos history (increments and
 * put-if-absent), one key at a time, for checker.ts:
 * - counter: the values increments returned are distinct, and the final value
 *   lies between the acknowledged and the attempted (not certainly failed)
 *   increments (no acknowledged increment lost, none applied twice);
 * - put-if-absent: at most one call wins a key, its value is the final one,
 *   and every losing call saw that value;
 * - compare-and-set (a read of the key's version, then a put on that version):
 *   no two acknowledged CAS over one version both applied;
 * - per key, a linearizability search (tests/helpers/linearizability.ts) over
 *   histories of at most LINEARIZABLE_MAX_OPS operations; longer keys are
 *   skipped and counted, so a report says how many keys the search covered.
 * A call that certainly changed nothing (`fail`) is left out of every model.
 */
import {
  type CasInput,
  casModel,
  type CasOutput,
  checkLinearizable,
  counterModel,
  type HistoryOp,
  putIfAbsentModel,
} from "../helpers/linearizability.ts";
import type { Anomaly, KeyState, Op } from "./checker.ts";

/** Keys with more operations than this (a final read included) are not searched. */
export const LINEARIZABLE_MAX_OPS = 12;

/** What the conditional checks found. */
export interface ConditionalResult {
  attempted: number;
  acknowledged: number;
  /** Calls the store refused UNAVAILABLE (too few of the key's replicas reachable; nothing changed). */
  unavailable: number;
  unknown: number;
  counterKeys: number;
  putIfAbsentKeys: number;
  casKeys: number;
  counterViolations: Anomaly[];
  putIfAbsentViolations: Anomaly[];
  casViolations: Anomaly[];
  linearizable: { checked: number; skipped: number; undecided: number; violations: Anomaly[] };
}

export function emptyConditional(): ConditionalResult {
  return {
    attempted: 0,
    acknowledged: 0,
    unavailable: 0,
    unknown: 0,
    counterKeys: 0,
    putIfAbsentKeys: 0,
    casKeys: 0,
    counterViolations: [],
    putIfAbsentViolations: [],
    casViolations: [],
    linearizable: { checked: 0, skipped: 0, undecided: 0, violations: [] },
  };
}

/** Whether an operation is a conditional one (this module's). */
export function isConditionalOp(o: Op): boolean {
  return o.kind === "incr" || o.kind === "putIfAbsent" || o.kind === "cas";
}

/** Whether a key's operations are conditional ones. */
export function isConditional(ops: readonly Op[]): boolean {
  return ops.some(isConditionalOp);
}

/** Checks one key's conditional operations; `state` undefined: the key could not be read at the end. */
export function checkConditionalKey(
  key: string,
  ops: Op[],
  state: KeyState | undefined,
  r: ConditionalResult,
): void {
  r.attempted += ops.length;
  r.acknowledged += ops.filter((o) => o.outcome === "ok").length;
  r.unknown += ops.filter((o) => o.outcome === "unknown").length;
  r.unavailable += ops.filter((o) => o.code === UNAVAILABLE && o.outcome === "fail").length;
  const live = ops.filter((o) => o.outcome !== "fail");
  if (ops[0].kind === "incr") {
    r.counterKeys++;
    checkCounter(key, live, state, r);
  } else if (ops[0].kind === "cas") {
    r.casKeys++;
    checkCas(key, live, r);
  } else {
    r.putIfAbsentKeys++;
    checkPutIfAbsent(key, live, state, r);
  }
  searchKey(key, live, state, r);
}

/** gRPC's UNAVAILABLE (lib/errors.ts Code), kept here so this module stays pure. */
const UNAVAILABLE = 14;

function checkCounter(key: string, ops: Op[], state: KeyState | undefined, r: ConditionalResult): void {
  const acked = ops.filter((o) => o.outcome === "ok");
  const seen = new Map<string, Op>();
  for (const o of acked) {
    const twin = seen.get(o.value!);
    if (twin) r.counterViolations.push({ key, op: o, why: `two increments both returned ${o.value}` });
    seen.set(o.value!, o);
  }
  if (!state) return;
  const final = state.found ? BigInt(state.value!) : 0n;
  const last = ops.length === 0 ? undefined : ops[ops.length - 1];
  const op = last ?? { kind: "incr", key, start: 0, end: 0, outcome: "ok" } as Op;
  if (final < BigInt(acked.length)) {
    r.counterViolations.push({ key, op, why: `final ${final} < ${acked.length} acknowledged increments` });
  }
  if (final > BigInt(ops.length)) {
    r.counterViolations.push({ key, op, why: `final ${final} > ${ops.length} attempted increments` });
  }
}

function checkPutIfAbsent(key: string, ops: Op[], state: KeyState | undefined, r: ConditionalResult): void {
  const answered = ops.filter((o) => o.outcome === "ok");
  const winners = answered.filter((o) => o.applied);
  for (const w of winners.slice(1)) {
    r.putIfAbsentViolations.push({
      key,
      op: w,
      why: `put-if-absent won twice: "${winners[0].value}", "${w.value}"`,
    });
  }
  const winner = winners[0];
  if (winner && state && (!state.found || state.value !== winner.value)) {
    const now = state.found ? `"${state.value}"` : "absent";
    r.putIfAbsentViolations.push({
      key,
      op: winner,
      why: `winner "${winner.value}" but the key is ${now} at the end`,
    });
  }
  for (const loser of answered.filter((o) => !o.applied)) {
    const explained = winner
      ? loser.current === winner.value
      : ops.some((o) => o !== loser && o.value === loser.current);
    if (!explained) {
      r.putIfAbsentViolations.push({
        key,
        op: loser,
        why: `lost to "${loser.current}", which no winner wrote`,
      });
    }
  }
}

/** No two acknowledged CAS over one version (or both over the key's absence) both applied. */
function checkCas(key: string, ops: Op[], r: ConditionalResult): void {
  const winners = new Map<string, Op>();
  for (const o of ops.filter((o) => o.outcome === "ok" && o.applied)) {
    const over = o.expectedVersion ?? "";
    const first = winners.get(over);
    if (first) {
      r.casViolations.push({
        key,
        op: o,
        why: `two CAS over ${over === "" ? "the key's absence" : `version ${over}`} both applied: ` +
          `"${first.value}", "${o.value}"`,
      });
    } else winners.set(over, o);
  }
}

/** The per-key linearizability search, with the final read as one more (last) operation. */
function searchKey(key: string, ops: Op[], state: KeyState | undefined, r: ConditionalResult): void {
  const lin = r.linearizable;
  if (ops.length + 1 > LINEARIZABLE_MAX_OPS) {
    lin.skipped++;
    return;
  }
  const after = Math.max(0, ...ops.map((o) => o.end)) + 1;
  const ret = (o: Op) => (o.outcome === "ok" ? o.end : Infinity);
  let verdict;
  if (ops.length > 0 && ops[0].kind === "cas") {
    verdict = checkLinearizable(casModel, casHistory(ops, state, after), 200_000);
  } else if (ops.length === 0 || ops[0].kind === "incr") {
    const history: HistoryOp<bigint, bigint>[] = ops.map((o) => ({
      input: 1n,
      output: o.outcome === "ok" ? BigInt(o.value!) : undefined,
      call: o.start,
      ret: ret(o),
    }));
    if (state) {
      history.push({ input: 0n, output: state.found ? BigInt(state.value!) : 0n, call: after, ret: after });
    }
    verdict = checkLinearizable(counterModel, history, 200_000);
  } else {
    const history: HistoryOp<string, { applied: boolean; value: string }>[] = ops.map((o) => ({
      input: o.value!,
      output: o.outcome === "ok"
        ? { applied: o.applied!, value: o.applied ? o.value! : o.current ?? "" }
        : undefined,
      call: o.start,
      ret: ret(o),
    }));
    // The final read as a losing put-if-absent of a value nobody writes: it answers the value held.
    if (state?.found) {
      history.push({
        input: "\u0000final",
        output: { applied: false, value: state.value! },
        call: after,
        ret: after,
      });
    }
    verdict = checkLinearizable(putIfAbsentModel, history, 200_000);
  }
  lin.checked++;
  if (verdict.ok) return;
  if (verdict.undecided) {
    lin.undecided++;
    return;
  }
  lin.violations.push({ key, op: ops[0], why: `no linearization of ${ops.length} operations on ${key}` });
}

/** A key's CAS as the search's history, with the final read as a CAS over a value nobody writes. */
function casHistory(ops: Op[], state: KeyState | undefined, after: number): HistoryOp<CasInput, CasOutput>[] {
  const history: HistoryOp<CasInput, CasOutput>[] = ops.map((o) => ({
    input: { expected: o.expectedVersion ? o.expected : undefined, value: o.value! },
    output: o.outcome !== "ok"
      ? undefined
      : o.applied
      ? { applied: true }
      : { applied: false, current: o.current },
    call: o.start,
    ret: o.outcome === "ok" ? o.end : Infinity,
  }));
  if (state) {
    history.push({
      input: { expected: "\u0000never", value: "\u0000final" },
      output: { applied: false, current: state.found ? state.value : undefined },
      call: after,
      ret: after,
    });
  }
  return history;
}
