/**
 * A per-key linearizability check by search (Wing & Gong, with the
 * memoisation of Lowe's WGL, as Knossos and Porcupine do): is there an
 * order of the operations, each placed between its call and its return,
 * in which a sequential model gives every answered operation the result it
 * got? An operation whose outcome is unknown (it failed or timed out) has
 * no return: it may be placed anywhere after its call, or nowhere.
 * Exponential in the worst case; histories of one key with a few
 * concurrent callers are cheap, and the search gives up past `maxSteps`.
 */

/** One operation of a history. */
export interface HistoryOp<I, O> {
  input: I;
  /** Result, or undefined when the outcome is unknown. */
  output?: O;
  call: number;
  /** Infinity when the outcome is unknown. */
  ret: number;
}

/** A sequential model: the next state and the output an input gives. */
export interface Model<S, I, O> {
  init: S;
  step(state: S, input: I): { state: S; output: O };
  equal(a: O, b: O): boolean;
  key(state: S): string;
  /**
   * A string naming an input, for inputs that are not strings or numbers:
   * unknown-outcome operations with equal names are taken as interchangeable.
   */
  inputKey?(input: I): string;
}

/** The verdict: linearizable, not (with the longest prefix found), or undecided past the step cap. */
export type Verdict = { ok: true; steps: number } | {
  ok: false;
  undecided: boolean;
  linearized: number;
  steps: number;
};

export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly HistoryOp<I, O>[],
  maxSteps = 2_000_000,
): Verdict {
  const ops = [...history].sort((a, b) => a.call - b.call);
  const n = ops.length;
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  let steps = 0;
  let best = 0;
  const known = ops.map((o) => o.output !== undefined);
  let pendingKnown = known.filter(Boolean).length;

  // Unknown-outcome operations with the same input are interchangeable:
  // only the earliest called one not yet placed is tried, so the search
  // does not branch over which of them were applied (a kill leaves many).
  const inputKey = ops.map((o) => model.inputKey ? model.inputKey(o.input) : String(o.input));
  const used = new Map<string, number>();
  const memoKey = (state: S) => {
    let bits = "";
    for (let i = 0; i < n; i++) if (known[i]) bits += done[i];
    return `${model.key(state)}|${bits}|${[...used].sort().join(",")}`;
  };
  const search = (state: S, count: number): boolean | undefined => {
    if (pendingKnown === 0) return true;
    if (++steps > maxSteps) return undefined;
    const memo = memoKey(state);
    if (seen.has(memo)) return false;
    seen.add(memo);
    best = Math.max(best, count);
    // Only an operation called before every pending answered one returned can go next.
    let horizon = Infinity;
    for (let i = 0; i < n; i++) if (!done[i] && ops[i].ret < horizon) horizon = ops[i].ret;
    // Answered operations first: the search then meets a history without
    // anomalies in one pass, and tries unknown ones only where it must.
    const candidates: number[] = [];
    const triedUnknown = new Set<string>();
    for (let i = 0; i < n && ops[i].call <= horizon; i++) if (!done[i] && known[i]) candidates.push(i);
    for (let i = 0; i < n && ops[i].call <= horizon; i++) {
      if (done[i] || known[i] || triedUnknown.has(inputKey[i])) continue;
      triedUnknown.add(inputKey[i]);
      candidates.push(i);
    }
    for (const i of candidates) {
      const next = model.step(state, ops[i].input);
      if (known[i] && !model.equal(next.output, ops[i].output as O)) continue;
      done[i] = 1;
      if (known[i]) pendingKnown--;
      else used.set(inputKey[i], (used.get(inputKey[i]) ?? 0) + 1);
      const r = search(next.state, count + 1);
      done[i] = 0;
      if (known[i]) pendingKnown++;
      else used.set(inputKey[i], used.get(inputKey[i])! - 1);
      if (r !== false) return r;
    }
    return false;
  };
  const r = search(model.init, 0);
  if (r === true) return { ok: true, steps };
  return { ok: false, undecided: r === undefined, linearized: best, steps };
}

/** A counter: increments by delta (0 reads), each answering the new value. */
export const counterModel: Model<bigint, bigint, bigint> = {
  init: 0n,
  step: (s, delta) => ({ state: s + delta, output: s + delta }),
  equal: (a, b) => a === b,
  key: (s) => s.toString(),
};

/** A register under put-if-absent: answers whether it applied and the value held after. */
export const putIfAbsentModel: Model<string | undefined, string, { applied: boolean; value: string }> = {
  init: undefined,
  step: (s, v) =>
    s === undefined
      ? { state: v, output: { applied: true, value: v } }
      : { state: s, output: { applied: false, value: s } },
  equal: (a, b) => a.applied === b.applied && a.value === b.value,
  key: (s) => s ?? "",
};

/** A compare-and-set: write `value` if the register holds `expected` (undefined: the key is absent). */
export interface CasInput {
  expected?: string;
  value: string;
}

/** A compare-and-set's answer: applied, or not with the value held (undefined: absent). */
export type CasOutput = { applied: true } | { applied: false; current?: string };

/**
 * A register written only by compare-and-set. The store compares versions;
 * every write of a key writes a value no other write does, so a version names
 * one value and comparing the value read with the value held is the same test.
 */
export const casModel: Model<string | undefined, CasInput, CasOutput> = {
  init: undefined,
  step: (s, i) =>
    s === i.expected
      ? { state: i.value, output: { applied: true } }
      : { state: s, output: { applied: false, current: s } },
  equal: (a, b) =>
    a.applied === b.applied && (a.applied || a.current === (b as { current?: string }).current),
  key: (s) => (s === undefined ? "absent" : `=${s}`),
  inputKey: (i) => `${i.expected === undefined ? "absent" : `=${i.expected}`}->${i.value}`,
};
