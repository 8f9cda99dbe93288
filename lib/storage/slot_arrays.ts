/**
 * Growth of the memory engine's per-slot typed arrays. They grow by a quarter,
 * not double: at a million slots every byte of slack per slot is a megabyte,
 * and copying still costs a constant amount per slot over time.
 */

type SlotArray = Float64Array | Int32Array | Uint32Array | Uint8Array;

/** A copy of `from` with room for at least `min` slots; new slots hold `fill`. */
export function grownArray<T extends SlotArray>(from: T, min: number, fill = 0): T {
  const size = Math.max(min, Math.ceil(from.length * 1.25));
  const to = new (from.constructor as new (n: number) => T)(size);
  to.set(from as never);
  if (fill !== 0) to.fill(fill, from.length);
  return to;
}
