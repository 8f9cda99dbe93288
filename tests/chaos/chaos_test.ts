/**
 * The chaos suite: scenarios of (replication setting, nemesis) on a 3-node
 * cluster in network namespaces, each checked against the targets:
 * - no node dies by itself, and nothing is read or left that no write made;
 * - W = rf, or W >= 2 without clock skew: no acknowledged write lost (a
 *   write-once key missing at the end included) and no acknowledged delete
 *   undone;
 * - W + R > rf with strict quorums: no stale read (except under clock skew,
 *   which is measured); a sloppy quorum does not promise it, its stale reads
 *   are reported;
 * - a sloppy quorum with one node crashed and left down (`kill-9-memory`)
 *   stays available: at least 95 % of write-once puts acknowledged;
 * - conditional operations (increments, put-if-absent, compare-and-set by
 *   version), under every nemesis and setting: returned counter values
 *   distinct, acknowledged <= final <= attempted, at most one put-if-absent
 *   winner per key (its value is final), no two CAS over one version both
 *   applied, and every key with a short history linearizable (UNAVAILABLE is allowed:
 *   at rf 2 one replica down makes its keys' conditional operations fail);
 * - every (live) replica identical within two anti-entropy intervals of the heal;
 * - the checker, given the run's history with one acknowledged write-once key
 *   taken out of the final state, counts it lost (so a checker blind to
 *   missing keys fails every scenario instead of reporting 0 lost).
 *
 * By default a representative subset runs (every nemesis once, three per
 * setting, and `rf2-w2-sloppy/kill-9-memory`); CHAOS_ALL=1 runs every pair,
 * CHAOS_ONLY=setting/nemesis[,...] picks some, CHAOS_SEED=N replays a run's
 * operation choices. Without root
 * or `ip`/`iptables`, and outside CI, the scenarios are reported as ignored.
 */
import assert from "node:assert/strict";
import { NEMESES } from "./nemeses.ts";
import { runScenario, type ScenarioResult, type Setting, SETTINGS } from "./scenario.ts";
import { unavailableReason } from "./netns.ts";
import { withTimeout } from "../helpers/cluster.ts";
import { redisServerPath } from "../../lib/redis_server.ts";

/** Every nemesis once, spread so that each strict setting gets three and the sloppy one the case it is for. */
const DEFAULT_SUBSET = new Set([
  "rf2-w1/kill-9",
  "rf2-w1/loss-30",
  "rf2-w1/clock-ahead",
  "rf2-w2/cut-peers",
  "rf2-w2/sigstop",
  "rf2-w2/wipe",
  "rf3-w2-r2/isolate",
  "rf3-w2-r2/partial",
  "rf3-w2-r2/one-way",
  // The case a rewrite cannot hide: a memory node killed and left down, under a sloppy quorum.
  "rf2-w2-sloppy/kill-9-memory",
]);

const env = (name: string) => Deno.env.get(name);
const reason = await unavailableReason();
const ignore = reason !== undefined && !env("CI");
if (ignore) console.log(`chaos scenarios ignored: ${reason} (they run when CI is set)`);
const seed = env("CHAOS_SEED") ? Number(env("CHAOS_SEED")) : Math.floor(Math.random() * 1e6);
const only = env("CHAOS_ONLY")?.split(",");
const selected = (name: string) =>
  only ? only.includes(name) : env("CHAOS_ALL") ? true : DEFAULT_SUBSET.has(name);

for (const setting of SETTINGS) {
  for (const nemesis of NEMESES) {
    const name = `${setting.name}/${nemesis.name}`;
    if (!selected(name)) continue;
    const noRedis = nemesis.storage === "redis" && !redisServerPath() && !env("CI");
    if (noRedis && !ignore) console.log(`chaos ${name} ignored: no redis-server (it runs when CI is set)`);
    Deno.test({
      name: `chaos ${name}: ${nemesis.description}`,
      ignore: ignore || noRedis,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        console.log(`seed ${seed} (replay: CHAOS_SEED=${seed} CHAOS_ONLY=${name} deno task chaos)`);
        // A run bounds its own waits to 60 s (PHASES); this backstop leaves time for its cleanup.
        const r = await withTimeout(
          runScenario(setting, nemesis, seed),
          90_000,
          name,
        );
        console.log(summary(r));
        const out = env("CHAOS_RESULTS");
        if (out) await Deno.writeTextFile(out, JSON.stringify(r) + "\n", { append: true });
        assertTargets(setting, r);
      },
    });
  }
}

function summary(r: ScenarioResult): string {
  const c = r.check;
  return [
    `${r.setting}/${r.nemesis}: ${r.ops} ops, writes ${c.writesAcknowledged}/${c.writesAttempted} acknowledged`,
    `lost ${c.lostWrites.length}, write-once keys lost ${c.writeOnce.lost.length} of ` +
    `${c.writeOnce.acknowledged} acknowledged (${c.writeOnce.attempted} attempted)`,
    `resurrected ${c.resurrections.length}, stale reads ${c.staleReads.length}`,
    `phantoms ${c.phantoms.length}, unavailable ${(c.unavailableShare * 100).toFixed(1)}%`,
    conditionalSummary(c),
    `conditional UNAVAILABLE during the fault ${r.conditionalInFault.unavailable}/${r.conditionalInFault.attempted}`,
    `identical ${r.convergeMs === undefined ? "never" : `${r.convergeMs} ms`} after heal`,
  ].join(", ");
}

/** The conditional operations' figures (conditional_checker.ts). */
function conditionalSummary(c: ScenarioResult["check"]): string {
  const k = c.conditional;
  const share = (n: number) => `${k.attempted === 0 ? 0 : (n / k.attempted * 100).toFixed(1)}%`;
  return `conditional ${k.acknowledged}/${k.attempted} acknowledged (unavailable ${share(k.unavailable)}, ` +
    `unknown ${
      share(k.unknown)
    }), counter violations ${k.counterViolations.length} on ${k.counterKeys} keys, ` +
    `put-if-absent violations ${k.putIfAbsentViolations.length} on ${k.putIfAbsentKeys} keys, ` +
    `CAS violations ${k.casViolations.length} on ${k.casKeys} keys, ` +
    `non-linearizable ${k.linearizable.violations.length} of ${k.linearizable.checked} keys searched ` +
    `(${k.linearizable.skipped} longer skipped, ${k.linearizable.undecided} undecided)`;
}

function assertTargets(s: Setting, r: ScenarioResult): void {
  const c = r.check;
  const show = (a: { why: string }[]) => a.slice(0, 5).map((x) => x.why).join("\n");
  assert.deepEqual(r.unexpectedExits, [], "a node died by itself");
  assert.ok(c.writesAcknowledged > 0, "the workload got no write acknowledged");
  assert.equal(c.phantoms.length, 0, show(c.phantoms));
  assert.ok(c.writeOnce.acknowledged > 0, "the workload got no write-once key acknowledged");
  assert.equal(r.seesMissingKey, true, "the checker does not count a missing write-once key as lost");
  // W = rf: nothing acknowledged may be lost. W >= 2 keeps every write on two
  // nodes, so one faulty node must not lose one either, except by clock skew
  // (a coordinator missing the newest copy versions below it).
  if (s.writeQuorum >= s.replicationFactor || (s.writeQuorum >= 2 && r.nemesis !== "clock-ahead")) {
    assert.equal(
      c.lostWrites.length,
      0,
      `W = ${s.writeQuorum} lost acknowledged writes:\n${show(c.lostWrites)}`,
    );
    assert.equal(
      c.writeOnce.lost.length,
      0,
      `W = ${s.writeQuorum} lost acknowledged write-once keys:\n${show(c.writeOnce.lost)}`,
    );
    assert.equal(
      c.resurrections.length,
      0,
      `W = ${s.writeQuorum} undid acknowledged deletes:\n${show(c.resurrections)}`,
    );
  }
  if (s.writeQuorum + s.readQuorum > s.replicationFactor && !s.sloppyQuorum && r.nemesis !== "clock-ahead") {
    assert.equal(c.staleReads.length, 0, `W + R > rf gave stale reads:\n${show(c.staleReads)}`);
  }
  if (s.sloppyQuorum && r.nemesis === "kill-9-memory") {
    const share = c.writeOnce.acknowledged / c.writeOnce.attempted;
    assert.ok(
      share >= 0.95,
      `a sloppy quorum acknowledged only ${(share * 100).toFixed(1)} % of write-once puts with one node down`,
    );
  }
  // Per-key consensus promises these under every nemesis and setting (UNAVAILABLE is allowed, not a violation).
  assertConditional(r);
  const limit = 2 * s.antiEntropyMs;
  assert.ok(r.convergeMs !== undefined, `replicas still differ on ${r.differing.join(", ")}`);
  assert.ok(r.convergeMs <= limit, `replicas identical after ${r.convergeMs} ms, more than ${limit} ms`);
}

/** The conditional operations' targets (see conditional_checker.ts). */
function assertConditional(r: ScenarioResult): void {
  const show = (a: { why: string }[]) => a.slice(0, 5).map((x) => x.why).join("\n");
  const k = r.check.conditional;
  assert.ok(k.acknowledged > 0, "no conditional operation was acknowledged");
  assert.equal(k.counterViolations.length, 0, `counter invariant broken:\n${show(k.counterViolations)}`);
  assert.equal(
    k.putIfAbsentViolations.length,
    0,
    `put-if-absent invariant broken:\n${show(k.putIfAbsentViolations)}`,
  );
  assert.equal(k.casViolations.length, 0, `CAS invariant broken:\n${show(k.casViolations)}`);
  assert.equal(k.linearizable.violations.length, 0, `not linearizable:\n${show(k.linearizable.violations)}`);
  assert.ok(k.linearizable.checked > 0, "the linearizability search covered no key");
}
