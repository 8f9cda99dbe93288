/**
 * `deno task chaos [--all] [--seed N] [--only setting/nemesis,...]`: runs the
 * chaos suite (tests/chaos/) with Deno's test runner and prints the results
 * as docs/chaos.md's table, one row per nemesis and setting.
 */
import { parseArgs } from "node:util";
import type { ScenarioResult } from "./scenario.ts";
import { table } from "./report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    all: { type: "boolean" },
    seed: { type: "string" },
    only: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("deno task chaos [--all] [--seed N] [--only rf2-w2/cut-peers,...]");
  Deno.exit(0);
}
const results = await Deno.makeTempFile({ prefix: "kvstore-chaos-", suffix: ".jsonl" });
const env: Record<string, string> = { CHAOS_RESULTS: results };
if (values.all) env.CHAOS_ALL = "1";
if (values.seed) env.CHAOS_SEED = values.seed;
if (values.only) env.CHAOS_ONLY = values.only;
const dir = new URL(".", import.meta.url).pathname;
const status = await new Deno.Command(Deno.execPath(), { args: ["test", "-A", dir], env }).spawn().status;
const rows = (await Deno.readTextFile(results)).split("\n").filter((l) => l).map((l) =>
  JSON.parse(l) as ScenarioResult
);
await Deno.remove(results);
console.log(table(rows));
Deno.exit(status.code);
