/**
 * Summarizes a V8 `.cpuprofile` (as written by `deno run --cpu-prof`): the
 * functions with the most self time, and the time under each source file.
 *
 *   deno run -A bench/cpuprofile_top.ts FILE.cpuprofile [--top N] [--match TEXT]
 *
 * `--match TEXT` also prints the inclusive (total) time of every function
 * whose name or file contains TEXT.
 */
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self and total microseconds per function, and self time per file. */
export function summarize(p: Profile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const file = n.callFrame.url.replace(/^.*\/(node_modules\/\.deno\/|work\/main\/)/, "");
    return `${n.callFrame.functionName || "(anonymous)"} ${file}:${n.callFrame.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    self.set(label(n), (self.get(label(n)) ?? 0) + us);
    const file = n.callFrame.url
      ? n.callFrame.url.replace(/^.*\/(node_modules\/\.deno\/|work\/main\/)/, "")
      : n.callFrame.functionName;
    files.set(file, (files.get(file) ?? 0) + us);
    // Inclusive time: each distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + us);
    }
  }
  const all = [...selfUs.values()].reduce((a, b) => a + b, 0);
  return { all, self, total, files };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string" }, match: { type: "string", multiple: true } },
  });
  const top = Number(values.top ?? 30);
  for (const file of positionals) {
    const { all, self, total, files } = summarize(JSON.parse(await Deno.readTextFile(file)));
    const pct = (us: number) => `${((us / all) * 100).toFixed(1).padStart(5)}%`;
    const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
    console.log(`${file}: ${(all / 1e6).toFixed(1)} s sampled`);
    console.log("\nself time by function:");
    for (const [k, v] of sorted(self).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
    console.log("\nself time by file:");
    for (const [k, v] of sorted(files).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
    for (const m of values.match ?? []) {
      console.log(`\ntotal time of functions matching "${m}":`);
      for (const [k, v] of sorted(total).filter(([k]) => k.includes(m)).slice(0, top)) {
        console.log(`  ${pct(v)}  ${k}`);
      }
    }
  }
}
