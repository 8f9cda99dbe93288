/**
 * The conditional part of the chaos workload: workers that increment counters
 * and race put-if-absent on fresh keys, through per-key consensus
 * (KvClient.increment / putIf), recording each call and its outcome for the
 * checker's counter, put-if-absent and linearizability checks.
 *
 * Three "hot" counters take many increments (the counter invariant over a long
 * run); "short" counters take a few increments each from whichever workers come
 * by, so their histories stay short enough for the linearizability search; each
 * put-if-absent key is raced by two calls from different workers. Outcomes:
 * an answer is `ok`; UNAVAILABLE (too few of the key's replicas: nothing
 * changed) and a refused condition are `fail`; anything else, a timeout
 * included, is `unknown` (the call is never resent, it may have been applied).
 */
import { KvClient } from "../../lib/grpc/kv_client.ts";
import { Code, KvError } from "../../lib/errors.ts";
import { sleep } from "../../lib/async.ts";
import type { KeyState, Op } from "./checker.ts";

/** Hot counters, and how many increments each short counter takes. */
const HOT_COUNTERS = 3;
const SHORT_COUNTER_OPS = 8;

/** Key choices shared by the conditional workers, so several race on one key. */
export interface ConditionalKeys {
  seed: number;
  shortSeq: number;
  absentSeq: number;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * Waits until increments of a few probe keys (not in the history) all succeed:
 * on the memory engine a node votes on conditional operations only
 * 2 × limits.max_clock_skew_ms after its start (the vote floor, tests/helpers/lwt.ts).
 */
export async function waitConditionalReady(client: KvClient, seed: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(Array.from({ length: 6 }, (_, i) => `probe-s${seed}-${i}`));
  while (true) {
    for (const key of [...pending]) {
      await client.increment(key, 0).then(() => pending.delete(key), () => {});
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) throw new Error(`conditional operations still refused after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Runs one conditional worker until told to stop. */
export async function conditionalWorker(
  client: KvClient,
  id: number,
  opts: { keys: ConditionalKeys; rand: () => number; stop: () => boolean; history: Op[] },
): Promise<void> {
  const k = opts.keys;
  for (let seq = 0; !opts.stop(); seq++) {
    const dice = opts.rand();
    if (dice < 0.7) {
      const key = dice < 0.35
        ? `ctr-s${k.seed}-hot-${Math.floor(opts.rand() * HOT_COUNTERS)}`
        : `ctr-s${k.seed}-short-${Math.floor(k.shortSeq++ / SHORT_COUNTER_OPS)}`;
      const start = now();
      const r = await outcomeOf(async () => (await client.increment(key, 1)).value);
      opts.history.push({ kind: "incr", key, start, end: now(), process: id, ...r.op, value: r.answer });
    } else {
      const key = `pia-s${k.seed}-${Math.floor(k.absentSeq++ / 2)}`;
      const value = `s${k.seed}-c${id}-${seq}`;
      const start = now();
      const r = await outcomeOf(() => client.putIf(key, value, { kind: "absent" }));
      const current = r.answer?.current ? new TextDecoder().decode(r.answer.current.value) : undefined;
      opts.history.push({
        kind: "putIfAbsent",
        key,
        value,
        start,
        end: now(),
        process: id,
        ...r.op,
        ...(r.answer ? { applied: r.answer.applied, current } : {}),
      });
    }
  }
}

async function outcomeOf<T>(
  fn: () => Promise<T>,
): Promise<{ op: Pick<Op, "outcome" | "error" | "code">; answer?: T }> {
  try {
    return { op: { outcome: "ok" }, answer: await fn() };
  } catch (err) {
    const code = err instanceof KvError ? err.code : -1;
    const noEffect = ([Code.UNAVAILABLE, Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT] as number[])
      .includes(code);
    return {
      op: {
        outcome: noEffect ? "fail" : "unknown",
        code,
        error: err instanceof Error ? err.message : String(err),
      },
    };
  }
}

/** The final value of every key a conditional operation touched (a key that cannot be read is left out). */
export async function readConditional(client: KvClient, history: Op[]): Promise<Record<string, KeyState>> {
  const keys = [
    ...new Set(history.filter((o) => o.kind === "incr" || o.kind === "putIfAbsent").map((o) => o.key)),
  ];
  const final: Record<string, KeyState> = {};
  await Promise.all(keys.map(async (key) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const r = await client.get(key);
        final[key] = r.found ? { found: true, value: new TextDecoder().decode(r.value) } : { found: false };
        return;
      } catch {
        await sleep(200);
      }
    }
  }));
  return final;
}
