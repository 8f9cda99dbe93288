/** Tests of lib/cli/node_flags.ts: the V8 flags node processes start with, and where they go on the command line. */
import assert from "node:assert/strict";
import { NODE_V8_FLAGS, withNodeFlags } from "../lib/cli/node_flags.ts";
import { selfCommand } from "../lib/cli/common.ts";

Deno.test("node flags are added in front of other deno flags, unless those set V8 flags themselves", () => {
  assert.deepEqual(withNodeFlags([]), NODE_V8_FLAGS);
  assert.deepEqual(withNodeFlags(["--cpu-prof"]), [...NODE_V8_FLAGS, "--cpu-prof"]);
  assert.deepEqual(withNodeFlags(["--v8-flags=--max-semi-space-size=2"]), [
    "--v8-flags=--max-semi-space-size=2",
  ]);
  assert.ok(NODE_V8_FLAGS.every((f) => f.startsWith("--v8-flags=")));
});

Deno.test("a node started again through selfCommand gets the deno flags before the program, the arguments after", () => {
  const { args } = selfCommand(["server", "--id", "node1"], NODE_V8_FLAGS);
  const main = args.findIndex((a) => a.endsWith(".ts"));
  assert.ok(main > 0, args.join(" "));
  assert.deepEqual(args.slice(0, 3), ["run", "-A", "--quiet"]);
  assert.deepEqual(args.slice(3, main), NODE_V8_FLAGS);
  assert.deepEqual(args.slice(main + 1), ["server", "--id", "node1"]);
});
