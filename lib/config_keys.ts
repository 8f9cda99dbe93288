/**
 * Which keys of a cluster file the loader knows, and the ones it does not.
 *
 * A key the loader never reads used to be dropped without a word, so a typo
 * (`write_quorom`) or a setting of another version silently ran the cluster
 * on a default. The known keys are not listed here: `config.ts` records every
 * path its readers touch, so a setting is known as soon as it is read.
 */
import { nearest } from "./nearest.ts";

/** A key path with node indexes dropped: `nodes[2].port` is `nodes[].port`. */
export function settingPath(path: string): string {
  return path.replace(/\[\d+\]/g, "[]");
}

/** A key the loader does not know, and the known one it most likely meant. */
export interface UnknownSetting {
  path: string;
  suggestion?: string;
}

/**
 * Every key of `raw` (a parsed cluster file or settings object) that is not in
 * `known` (paths as {@link settingPath} writes them, sections included);
 * the keys inside an unknown one are not listed again.
 */
export function unknownSettings(raw: unknown, known: ReadonlySet<string>): UnknownSetting[] {
  const out: UnknownSetting[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) return v.forEach((e, i) => walk(e, `${path}[${i}]`));
    if (typeof v !== "object" || v === null) return;
    for (const [k, child] of Object.entries(v)) {
      const p = path === "" ? k : `${path}.${k}`;
      if (known.has(settingPath(p))) walk(child, p);
      else out.push({ path: p, suggestion: suggestion(p, known) });
    }
  };
  walk(raw, "");
  return out;
}

/** The nearest known path, or one with the same last key in another section. */
function suggestion(path: string, known: ReadonlySet<string>): string | undefined {
  const generic = settingPath(path);
  const last = generic.slice(generic.lastIndexOf(".") + 1);
  const found = nearest(generic, known) ??
    [...known].find((k) => k.endsWith(`.${last}`) || k === last);
  // Name the node the key was in, not nodes[].
  const node = /^nodes\[\d+\]/.exec(path)?.[0];
  return node && found?.startsWith("nodes[]") ? node + found.slice("nodes[]".length) : found;
}

/** One line per unknown key: "unknown setting X; did you mean Y?". */
export function describeUnknown(unknown: UnknownSetting[]): string {
  return unknown.map((u) =>
    `unknown setting ${u.path}${u.suggestion ? `; did you mean ${u.suggestion}?` : ""}`
  )
    .join("\n");
}

/** Every key path of a plain object, sections included (`replication`, `replication.writeQuorum`). */
export function objectPaths(value: unknown, path = "", out = new Set<string>()): Set<string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return out;
  for (const [k, child] of Object.entries(value)) {
    const p = path === "" ? k : `${path}.${k}`;
    out.add(p);
    objectPaths(child, p, out);
  }
  return out;
}
