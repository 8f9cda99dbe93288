/**
 * The conditional part of the chaos workload: workers that increment counters,
 * race put-if-absent on fresh keys and compare-and-set keys by version,
 * through per-key consensus (KvClient.increment / putIf), recording each call
 * and its outcome for the checker's counter, put-if-absent, CAS and
 * linearizability checks.
 *
 * Three "hot" counters take many increments (the counter invariant over a long
 * run); "short" counters take a few increments each from whichever workers come
 * by, so their histories stay short enough for the linearizability search; each
 * put-if-absent key is raced by two calls from different workers; each CAS
 * key takes a few CAS from whichever workers come by (a read of the key's
 * value and version, then a put on that version, or on its absence when the
 * read found none), so they race on one version. Outcomes:
 * an answer is `ok`; UNAVAILABLE (too few of the key's replicas: nothing
 * changed) and a refused condition are `fail`; anything else, a timeout
 * included, is `unknown` (the call is never resent, it may have been applied).
 */
import { KvClient } from "../../lib/grpc/kv_client.ts";
import { Code, KvError } from "../../lib/errors.ts";
import { sleep } from "../../lib/async.ts";
import type { Condition } from "../../lib/lwt/ops.ts";
import type { KeyState, Op } from "./checker.ts";
import { isConditionalOp } from "./conditional_checker.ts";

/** Hot counters, and how many increments each short counter takes. */
const HOT_COUNTERS = 3;
const SHORT_COUNTER_OPS = 8;
/** CAS per CAS key: with the final read, short enough for the linearizability search. */
const CAS_KEY_OPS = 8;
/** A refused call answers at once: a pause keeps a worker from flooding the history while a replica is down. */
const REFUSED_PAUSE_MS = 50;

/** Key choices shared by the conditional workers, so several race on one key. */
export interface ConditionalKeys {
  seed: number;
  shortSeq: number;
  absentSeq: number;
  casSeq: number;
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
    if (dice >= 0.8) {
      await casOnce(client, id, seq, opts);
    } else if (dice < 0.55) {
      const key = dice < 0.3
        ? `ctr-s${k.seed}-hot-${Math.floor(opts.rand() * HOT_COUNTERS)}`
        : `ctr-s${k.seed}-short-${Math.floor(k.shortSeq++ / SHORT_COUNTER_OPS)}`;
      const start = now();
      const r = await outcomeOf(async () => (await client.increment(key, 1)).value);
      opts.history.push({ kind: "incr", key, start, end: now(), process: id, ...r.op, value: r.answer });
      if (r.op.outcome !== "ok") await sleep(REFUSED_PAUSE_MS);
    } else {
      const key = `pia-s${k.seed}-${Math.floor(k.absentSeq++ / 2)}`;
      const op = { kind: "putIfAbsent" as const, key, value: `s${k.seed}-c${id}-${seq}`, process: id };
      await conditionalPut(client, op, { kind: "absent" }, opts.history);
    }
  }
}

/**
 * One compare-and-set: reads the key's value and version (a plain read: a
 * stale one makes the CAS lose, which is a correct answer), then puts a new
 * value on that version (on the key's absence when the read found none). A
 * failed read records nothing.
 */
async function casOnce(
  client: KvClient,
  id: number,
  seq: number,
  opts: { keys: ConditionalKeys; history: Op[] },
): Promise<void> {
  const k = opts.keys;
  const key = `cas-s${k.seed}-${Math.floor(k.casSeq++ / CAS_KEY_OPS)}`;
  const read = await client.get(key).catch(() => undefined);
  if (!read) return void await sleep(REFUSED_PAUSE_MS);
  const version = { timestamp: read.timestamp, versionNode: read.versionNode ?? "" };
  const op = {
    kind: "cas" as const,
    key,
    value: `s${k.seed}-c${id}-${seq}`,
    process: id,
    expected: read.found ? new TextDecoder().decode(read.value) : undefined,
    expectedVersion: read.found ? `${version.timestamp}@${version.versionNode}` : "",
  };
  await conditionalPut(
    client,
    op,
    read.found ? { kind: "version", version } : { kind: "absent" },
    opts.history,
  );
}

/** Runs a conditional put and records it (with whether it applied, and else the value it found). */
async function conditionalPut(
  client: KvClient,
  op: Pick<Op, "kind" | "key" | "value" | "process" | "expected" | "expectedVersion">,
  condition: Condition,
  history: Op[],
): Promise<void> {
  const start = now();
  const r = await outcomeOf(() => client.putIf(op.key, op.value!, condition));
  const current = r.answer?.current ? new TextDecoder().decode(r.answer.current.value) : undefined;
  history.push({
    ...op,
    start,
    end: now(),
    ...r.op,
    ...(r.answer ? { applied: r.answer.applied, current } : {}),
  });
  if (r.op.outcome !== "ok") await sleep(REFUSED_PAUSE_MS);
}

/**
 * UNAVAILABLE answers that changed nothing: the store's own refusals of a
 * conditional operation (lib/lwt/), and gRPC's when no connection to the
 * node could be made (the call never went out). gRPC also says UNAVAILABLE
 * when a connection drops after the call went out (a node killed mid-call):
 * that outcome is unknown.
 */
const REFUSED = new RegExp(
  "not applied|nothing was changed|started without peer calls|storage unavailable|No connection established",
);

async function outcomeOf<T>(
  fn: () => Promise<T>,
): Promise<{ op: Pick<Op, "outcome" | "error" | "code">; answer?: T }> {
  try {
    return { op: { outcome: "ok" }, answer: await fn() };
  } catch (err) {
    const code = err instanceof KvError ? err.code : -1;
    const message = err instanceof Error ? err.message : String(err);
    const noEffect = ([Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT] as number[]).includes(code) ||
      (code === Code.UNAVAILABLE && REFUSED.test(message));
    return {
      op: {
        outcome: noEffect ? "fail" : "unknown",
        code,
        error: message,
      },
    };
  }
}

/**
 * The final value of every key a conditional operation touched, read through
 * the key's consensus, as the workload's operations were (a plain read at R = 1
 * may meet a replica a commit did not reach): an increment by 0 for a counter,
 * and for a put-if-absent key a delete on a version no write has, which is
 * never applied and answers the current value (so for a CAS key). A key that cannot be read
 * (UNAVAILABLE: a replica left down) is left out, and its final checks skipped.
 */
export async function readConditional(client: KvClient, history: Op[]): Promise<Record<string, KeyState>> {
  const kinds = new Map(
    history.filter(isConditionalOp).map((o) => [o.key, o.kind]),
  );
  const final: Record<string, KeyState> = {};
  const never = { kind: "version" as const, version: { timestamp: 1, versionNode: "none" } };
  await Promise.all([...kinds].map(async ([key, kind]) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (kind === "incr") {
          final[key] = { found: true, value: (await client.increment(key, 0)).value };
        } else {
          const r = await client.deleteIf(key, never);
          if (r.applied) throw new Error(`${key}: a delete on version 1 applied`);
          final[key] = r.current
            ? { found: true, value: new TextDecoder().decode(r.current.value) }
            : { found: false };
        }
        return;
      } catch (err) {
        if (err instanceof KvError && err.code === Code.UNAVAILABLE && attempt === 2) return;
        await sleep(300);
      }
    }
  }));
  return final;
}
