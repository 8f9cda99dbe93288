/**
 * bench/forward_cost.ts runs as documented (its own process, a real node2)
 * and reports a round trip and both ends' CPU for each kind of forward:
 * that it measures, not how fast.
 */
import assert from "node:assert/strict";
import { clusterTest } from "./helpers/cluster.ts";

const SCRIPT = new URL("../bench/forward_cost.ts", import.meta.url).pathname;

clusterTest("forward_cost reports a round trip and both ends' CPU per get and per put forward", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--count", "50", "--rounds", "1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  console.log(text.trim());
  const line = /^(get|put): (\d+) us per forward; CPU per forward: owner (\d+) us, sender (\d+) us$/;
  const rows = text.trim().split("\n").map((l) => line.exec(l));
  assert.deepEqual(rows.map((m) => m?.[1]), ["get", "put"], text);
  for (const m of rows) assert.ok(Number(m![2]) > 0 && Number(m![4]) > 0, m![0]);
});
