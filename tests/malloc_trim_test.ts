/** Tests of lib/malloc_trim.ts: freed C heap goes back to the system, in real processes. */
import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";
import { openMallocTrim, TRIM_INTERVAL_MS, trimMallocPeriodically } from "../lib/malloc_trim.ts";
import { logLines, TestCluster } from "./helpers/cluster.ts";

const MODULE = new URL("../lib/malloc_trim.ts", import.meta.url).href;
const glibc = Deno.build.os === "linux" && Deno.build.env === "gnu";

/** Runs `source` as a script of its own with `flags`; its stdout. */
async function runScript(source: string, flags: string[]): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, source);
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", ...flags, file], stderr: "inherit" })
      .output();
    assert.equal(out.code, 0, "the script exits 0");
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(file);
  }
}

// 1500 buffers of 64 KiB (below glibc's mmap threshold, so inside its heap), each
// followed by a small one that stays: the big ones, once freed, are holes glibc
// does not give back by itself.
const FRAGMENT = `
import { openMallocTrim } from "${MODULE}";
const rssMB = () => Number(/^VmRSS:\\s+(\\d+)/m.exec(Deno.readTextFileSync("/proc/self/status"))[1]) / 1024;
let big = [];
const pins = [];
for (let i = 0; i < 1500; i++) {
  big.push(new Uint8Array(64 * 1024).fill(1));
  pins.push(new Uint8Array(2048).fill(2));
}
const loaded = rssMB();
big = [];
for (let i = 0; i < 3; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 200));
}
const freed = rssMB();
const trim = openMallocTrim();
trim();
console.log(JSON.stringify({ loaded, freed, trimmed: rssMB(), pins: pins.length }));
`;

Deno.test({
  name: "openMallocTrim: ~94 MB of freed 64 KiB buffers stay resident until malloc_trim gives them back",
  ignore: !glibc,
  fn: async () => {
    const r = JSON.parse(await runScript(FRAGMENT, ["-A", "--v8-flags=--expose-gc"]));
    console.log(`RSS MB: loaded ${r.loaded}, after freeing ${r.freed}, after malloc_trim ${r.trimmed}`);
    assert.ok(r.freed - r.trimmed >= 50, `malloc_trim released at least 50 MB: ${JSON.stringify(r)}`);
  },
});

Deno.test({
  name: "openMallocTrim: without FFI permission there is nothing to call, and no error",
  ignore: !glibc,
  fn: async () => {
    const out = await runScript(
      `import { openMallocTrim } from "${MODULE}"; console.log(openMallocTrim() === undefined);`,
      ["--allow-read"],
    );
    assert.equal(out.trim(), "true");
  },
});

Deno.test({
  name: "trimMallocPeriodically: trims every interval, logs each at debug, and stops when told",
  ignore: !glibc,
  fn: async () => {
    const lines: string[] = [];
    const log = new Logger({ level: "debug", format: "text", write: (l) => lines.push(l) });
    const stop = trimMallocPeriodically(log, { intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 150));
    stop();
    const count = lines.length;
    assert.ok(count >= 2, `at least 2 trims in 150 ms at 20 ms: ${lines.join("; ")}`);
    assert.ok(lines.every((l) => /DEBUG .*malloc trim released=[01] ms=/.test(l)), lines.join("\n"));
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(lines.length, count, "no trim after stop");
  },
});

Deno.test("openMallocTrim: a callable trim on glibc Linux, none elsewhere", () => {
  const trim = openMallocTrim();
  assert.equal(trim !== undefined, glibc);
  if (trim) assert.ok([0, 1].includes(trim()));
});

Deno.test({
  name: "a node (main.ts server) trims its C heap every interval: debug lines while it runs",
  ignore: !glibc,
  fn: async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1, logLevel: "debug" });
    try {
      const started = performance.now();
      // Two trims: the first after one interval, the next one interval later; three intervals at most.
      while (logLines(cluster, "node1", "malloc trim released=").length < 2) {
        assert.ok(
          performance.now() - started < 3 * TRIM_INTERVAL_MS,
          `no two trims in 3 intervals:\n${cluster.logs("node1")}`,
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      console.log(`two trims logged after ${Math.round(performance.now() - started)} ms`);
    } finally {
      await cluster.stop();
    }
  },
});
