/**
 * `client expire` racing conditional puts, on real processes: three nodes
 * (replication factor 2), a writer that chains conditional puts on one key
 * (each on the version it last saw), and two CLI processes running `expire`
 * on that key at the same time, several times each.
 *
 * What must hold: every expire is applied (a lost race is retried, not
 * answered "not applied"), the value an expire writes is never an older
 * one, and no acknowledged expire is undone by a put conditioned on the
 * version before it: a put applied on version X at version V means no
 * acknowledged expire has a version between X and V. A read followed by a
 * plain put at the version read plus one (the CLI's former path) breaks the
 * last rule when its put lands while a conditional put is between its
 * prepare and its commit. Figures are printed, not compared with speeds.
 */
import assert from "node:assert/strict";
import { clusterTest, type MainRun, runMain, sleep, TestCluster, text } from "./helpers/cluster.ts";
import type { Version } from "../lib/record.ts";
import { formatVersion, parseVersion } from "../lib/lwt/ops.ts";

const KEY = "race:expire";
/** CLI processes running expire at once, and the expires each runs in turn. */
const CLIS = 2;
const RUNS = 4;
/** The writer's conditional puts at most (it stops once the expires are done), and its pause between them. */
const MAX_PUTS = 3000;
const PAUSE_MS = 10;

/** Memory nodes vote on ballots 2 × max_clock_skew_ms after their start (docs/conditional-writes.md): 2 s. */
const LIMITS = { limits: { max_clock_skew_ms: 1000 } };

/** A conditional put of the writer that applied: the version it was conditioned on and the one written. */
interface Applied {
  on: Version;
  at: Version;
}

function show(r: MainRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

clusterTest(
  "CLI expires racing a chain of conditional puts: each applies, none writes an older value, none is undone",
  async () => {
    const cluster = await TestCluster.start({ nodes: 3, replicationFactor: 2, extra: LIMITS });
    const cwd = await Deno.makeTempDir({ prefix: "kvstore-cli-race-" });
    let expires: Promise<MainRun[][]> | undefined;
    try {
      const client = await cluster.client();
      // Fresh memory replicas vote only after their floor; an increment by 0 tells when they do.
      await cluster.waitFor(() => client.increment(KEY, 0).then(() => true, () => false), 10_000, "votes");
      assert.ok((await client.put(KEY, "w0")).ok);
      const first = await client.get(KEY);
      let last: Version = { timestamp: first.timestamp, versionNode: first.versionNode ?? "" };
      let value = "w0";
      const applied: Applied[] = [];
      let lost = 0;
      let done = false;

      expires = Promise.all(Array.from({ length: CLIS }, async () => {
        const runs: MainRun[] = [];
        for (let i = 0; i < RUNS; i++) {
          const addr = cluster.node(`node${1 + (i % 3)}`).address;
          runs.push(await runMain(cwd, "client", "expire", KEY, "10m", "--addr", addr, "--json"));
        }
        return runs;
      })).finally(() => done = true);

      const started = Date.now();
      for (let i = 1; i <= MAX_PUTS && !done; i++) {
        if (i > 1) await sleep(PAUSE_MS);
        const w = await client.putIf(KEY, `w${i}`, { kind: "version", version: last });
        if (w.applied) {
          applied.push({ on: last, at: w.version! });
          last = w.version!;
          value = `w${i}`;
          continue;
        }
        lost++;
        assert.ok(w.current, "the key never disappears");
        // Only expires wrote in between, and they write back the value they found: the writer's own.
        assert.equal(text.decode(w.current.value), value, "an expire wrote back an older value");
        last = w.current.version;
      }
      const runs = (await expires).flat();

      const acked: Version[] = [];
      let attempts = 0;
      for (const r of runs) {
        assert.equal(r.code, 0, show(r));
        const answer = JSON.parse(r.stdout);
        assert.equal(answer.applied, true, show(r));
        acked.push(parseVersion(answer.version));
        attempts += answer.attempts;
      }
      console.log(
        `${applied.length} conditional puts applied, ${lost} lost to an expire, in ${
          Date.now() - started
        } ms; ` +
          `${runs.length} CLI expires applied in ${attempts} conditional writes`,
      );
      for (const put of applied) {
        const undone = acked.filter((e) => e.timestamp > put.on.timestamp && e.timestamp < put.at.timestamp);
        assert.deepEqual(
          undone.map(formatVersion),
          [],
          `the put on ${formatVersion(put.on)} at ${formatVersion(put.at)} undid acknowledged expires`,
        );
      }
      const end = await client.get(KEY);
      assert.equal(text.decode(end.value), value, "the last conditional put's value is the key's");
      const newest = Math.max(last.timestamp, ...acked.map((e) => e.timestamp));
      assert.equal(end.timestamp, newest, "the key holds the newest acknowledged version");
      assert.equal(
        end.expiresAtMs !== undefined,
        acked.some((e) => e.timestamp === newest),
        "TTL iff an expire was last",
      );
    } finally {
      await expires?.catch(() => {});
      await cluster.stop();
      await Deno.remove(cwd, { recursive: true });
    }
  },
);
