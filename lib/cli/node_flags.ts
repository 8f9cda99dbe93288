/**
 * The Deno flags a node process is started with (by `main.ts cluster`, the
 * `server` and `compile` tasks of deno.json, and the benchmark), kept in one
 * place.
 *
 * `--max-semi-space-size=8` caps V8's young generation at 8 MB a semi-space
 * instead of 16. A node holds its records outside V8's heap, so the young
 * generation, grown to its cap by bursts of garbage (loading, anti-entropy
 * digests, recovery streams), is much of what a node's memory rises by in those
 * phases: with 1M records of 100 B a node, peaks of 342-387 MB loading, 333-366
 * MB over an anti-entropy round and 333 MB recovering, against 379-440, 334-440
 * and 345-351 MB with V8's default. It cost no server CPU measurable here
 * (batched puts 2 097 / 1 694 against 2 141 / 2 069 us a call with the
 * default); 4 MB did (18-35% more for batched puts), so 8 it is.
 *
 * `--memory-saver-mode` was tried too: 20-70 MB less in every phase of the 1M
 * benchmark, but recovery took 11-13 s instead of 4-7 and loading up to twice
 * as long, so it is not used.
 */
export const NODE_V8_FLAGS = ["--v8-flags=--max-semi-space-size=8"];

/** `flags` with the node's V8 flags in front, unless they set V8 flags of their own. */
export function withNodeFlags(flags: readonly string[]): string[] {
  return flags.some((f) => f.startsWith("--v8-flags")) ? [...flags] : [...NODE_V8_FLAGS, ...flags];
}
