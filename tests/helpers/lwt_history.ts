/**
 * Checks of conditional-operation histories that need no search: a
 * counter's acknowledged results are distinct and acknowledged <= final <=
 * attempted. Returns the violations found (none: an empty list).
 */
export function checkCounter(values: readonly bigint[], final: bigint, attempted: number): string[] {
  const out: string[] = [];
  const seen = new Set<bigint>();
  for (const v of values) {
    if (seen.has(v)) out.push(`value ${v} returned twice`);
    seen.add(v);
    if (v > final) out.push(`value ${v} returned, above the final ${final}`);
    if (v < 1n) out.push(`value ${v} is not an increment's result`);
  }
  if (BigInt(values.length) > final) out.push(`${values.length} acknowledged > final ${final}`);
  if (final > BigInt(attempted)) out.push(`final ${final} > ${attempted} attempted`);
  return out.slice(0, 10);
}
