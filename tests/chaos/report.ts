/** The chaos results as docs/chaos.md's Markdown table. */
import { NEMESES } from "./nemeses.ts";
import { type ScenarioResult, SETTINGS } from "./scenario.ts";

/** The results as a Markdown table, ordered by nemesis then setting. */
export function table(rows: ScenarioResult[]): string {
  const head = [
    "nemesis",
    "setting",
    "writes acked / attempted",
    "acked writes lost",
    "write-once keys lost / acked",
    "acked deletes undone",
    "stale reads",
    "unavailable",
    "identical after heal",
    "conditional acked / attempted",
    "conditional unavailable (in fault)",
    "counter / put-if-absent / CAS violations",
    "keys linearizable / searched (skipped)",
  ];
  const rank = (r: ScenarioResult) =>
    NEMESES.findIndex((n) => n.name === r.nemesis) * SETTINGS.length +
    SETTINGS.findIndex((x) => x.name === r.setting);
  const lines = [...rows].sort((a, b) => rank(a) - rank(b)).map((r) => {
    const c = r.check;
    return [
      r.nemesis,
      r.setting,
      `${c.writesAcknowledged} / ${c.writesAttempted}`,
      String(c.lostWrites.length),
      `${c.writeOnce.lost.length} / ${c.writeOnce.acknowledged}`,
      String(c.resurrections.length),
      `${c.staleReads.length} / ${c.readsOk}`,
      `${(c.unavailableShare * 100).toFixed(1)}%`,
      r.convergeMs === undefined ? "never" : `${(r.convergeMs / 1000).toFixed(1)} s`,
      ...conditionalCells(r),
    ];
  });
  const fmt = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [fmt(head), fmt(head.map(() => "---")), ...lines.map(fmt)].join("\n");
}

/** The conditional operations' cells (conditional_checker.ts). */
function conditionalCells(r: ScenarioResult): string[] {
  const k = r.check.conditional;
  const pct = (n: number, of: number) => `${of === 0 ? "0.0" : (n / of * 100).toFixed(1)}%`;
  const lin = k.linearizable;
  const f = r.conditionalInFault;
  return [
    `${k.acknowledged} / ${k.attempted}`,
    `${pct(k.unavailable, k.attempted)} (${f ? pct(f.unavailable, f.attempted) : "-"})`,
    `${k.counterViolations.length} / ${k.putIfAbsentViolations.length} / ${k.casViolations.length}`,
    `${lin.checked - lin.violations.length - lin.undecided} / ${lin.checked} (${lin.skipped})`,
  ];
}
