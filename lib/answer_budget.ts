/**
 * The byte budget of one answer: a read adds what it is about to hold and
 * is refused (RESOURCE_EXHAUSTED, naming the size) once the answer could no
 * longer be sent, before it is built. Without it a MultiGet copied every
 * value it named and only gRPC's send limit refused the result, after the
 * node had held and serialised all of it.
 *
 * `readBounded` reads records from local storage within a budget: with an
 * engine that knows its value sizes (memory) the sizes are checked before
 * any value is copied; otherwise keys are read in slices, so at most one
 * slice beyond the budget is ever held.
 */
import type { KvRecord } from "./record.ts";
import type { Storage } from "./storage/mod.ts";
import { Code, KvError } from "./errors.ts";

/** Bytes counted per item of an answer beside its key and value (fields, framing). */
export const ITEM_OVERHEAD = 32;

/** Keys read per storage call by engines that cannot tell sizes first. */
export const READ_SLICE_KEYS = 64;

/** How many bytes an answer may still take. */
export class AnswerBudget {
  #used = 0;

  /** `what` names the call in the refusal ("MultiGet"). */
  constructor(readonly limitBytes: number, private readonly what: string) {}

  get used(): number {
    return this.#used;
  }

  /** Counts `bytes` more; throws RESOURCE_EXHAUSTED once the answer would exceed the limit. */
  add(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.limitBytes) {
      throw new KvError(
        Code.RESOURCE_EXHAUSTED,
        `${this.what} answer would be at least ${this.#used} bytes; the limit is ${this.limitBytes} ` +
          `(limits.max_message_bytes): ask for fewer keys per call`,
      );
    }
  }

  /** Counts one item of `key` carrying `valueBytes`. */
  addItem(key: string, valueBytes: number): void {
    this.add(key.length + valueBytes + ITEM_OVERHEAD);
  }

  /** Throws as `add` would if these items were added, without counting them. */
  checkAhead(keys: readonly string[], sizes: readonly (number | undefined)[]): void {
    const before = this.#used;
    try {
      keys.forEach((key, i) => this.addItem(key, sizes[i] ?? 0));
    } finally {
      this.#used = before;
    }
  }
}

/** The records held for `keys`, in order, refused once their answer would exceed `budget`. */
export async function readBounded(
  storage: Storage,
  keys: readonly string[],
  budget: AnswerBudget,
): Promise<(KvRecord | undefined)[]> {
  if (storage.valueSizes) {
    const sizes = await storage.valueSizes(keys);
    keys.forEach((key, i) => budget.addItem(key, sizes[i] ?? 0));
    return await storage.get(keys);
  }
  const out: (KvRecord | undefined)[] = [];
  for (let i = 0; i < keys.length; i += READ_SLICE_KEYS) {
    const slice = keys.slice(i, i + READ_SLICE_KEYS);
    const records = await storage.get(slice);
    slice.forEach((key, j) => budget.addItem(key, records[j]?.value.length ?? 0));
    out.push(...records);
  }
  return out;
}
