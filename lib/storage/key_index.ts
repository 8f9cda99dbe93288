/**
 * The memory engine's keys, outside V8's object heap: each slot's key bytes
 * live in slabs (`slab_values.ts`) and an open-addressing hash table (linear
 * probing, backward-shift deletion) maps a key to its slot. A Map of a
 * million string keys costs about 66 bytes a key on the collected heap, which
 * the collector traces and keeps room beside; this costs about 30 outside it.
 *
 * The table grows incrementally: a full rehash of a million keys held the
 * event loop for about 35 ms in one write (longer on a busy machine), so the
 * old table is kept beside the doubled one and a few of its positions are
 * moved with each add until it is empty; lookups meanwhile try both.
 *
 * Keys are stored losslessly: one byte a character when every character is
 * ASCII, otherwise a 0xff marker and two bytes a UTF-16 code unit (so lone
 * surrogates survive too).
 */
import { SlabValues } from "./slab_values.ts";
import { SlotColumn } from "./slot_arrays.ts";

/**
 * Table entries hold slot + 1, so a new table is all EMPTY as allocated
 * (zeroed by the allocator, not filled by a loop). MOVED marks an entry of the
 * old table that left it (moved to the new table, or deleted): probes go past
 * it, as the old table's probe runs must stay unbroken until it is dropped.
 */
const EMPTY = 0, MOVED = -1;

/** Old-table positions moved per add while growing: the old table empties within 1/32 of its size in adds. */
const MOVE_PER_ADD = 32;

export class KeyIndex {
  readonly #keys: SlabValues;
  readonly #hashOf = new SlotColumn(Uint32Array);
  #table = new Int32Array(1024);
  /** The table before the last growth, until all its entries have moved. */
  #old: Int32Array | undefined;
  /** The old table's next position to move. */
  #moveAt = 0;
  #count = 0;
  #scratch = new Uint8Array(256);
  #scratchLength = 0;

  constructor(slabSize?: number) {
    this.#keys = new SlabValues(slabSize);
  }

  /** The key's slot, or -1 when it is not held. */
  find(key: string): number {
    const hash = this.#encode(key);
    const slot = this.#probe(this.#table, hash);
    return slot < 0 && this.#old ? this.#probe(this.#old, hash) : slot;
  }

  /** Records `key` (not held) at `slot` (not in use). */
  add(key: string, slot: number): void {
    if ((this.#count + 1) * 2 > this.#table.length) this.#startGrowth();
    const hash = this.#encode(key);
    this.#hashOf.ensure(slot + 1);
    this.#hashOf.set(slot, hash);
    this.#keys.write(slot, this.#scratch.subarray(0, this.#scratchLength));
    this.#place(slot);
    this.#count++;
    if (this.#old) this.#move(MOVE_PER_ADD);
  }

  /** Forgets the key held at `slot`. */
  delete(slot: number): void {
    const hash = this.#hashOf.get(slot);
    const at = this.#indexOf(this.#table, slot, hash);
    if (at >= 0) this.#shiftBack(at);
    else this.#old![this.#indexOf(this.#old!, slot, hash)] = MOVED;
    this.#keys.free(slot);
    this.#count--;
  }

  /** The key held at `slot` (a slot in use). */
  keyOf(slot: number): string {
    const key = this.#keys.text(slot, "latin1");
    return key.charCodeAt(0) === 0xff ? this.#keys.text(slot, "utf16le", 1) : key;
  }

  get size(): number {
    return this.#count;
  }

  /** Whether an old table is still being emptied (for tests). */
  get growing(): boolean {
    return this.#old !== undefined;
  }

  #probe(table: Int32Array, hash: number): number {
    const mask = table.length - 1;
    for (let i = hash & mask;; i = (i + 1) & mask) {
      const entry = table[i];
      if (entry === EMPTY) return -1;
      const slot = entry - 1;
      if (
        entry !== MOVED && this.#hashOf.get(slot) === hash &&
        this.#keys.matches(slot, this.#scratch, this.#scratchLength)
      ) {
        return slot;
      }
    }
  }

  /** Where `slot` sits in `table`, or -1. */
  #indexOf(table: Int32Array, slot: number, hash: number): number {
    const mask = table.length - 1;
    for (let i = hash & mask;; i = (i + 1) & mask) {
      if (table[i] === slot + 1) return i;
      if (table[i] === EMPTY) return -1;
    }
  }

  /** Empties position `i` of the current table, pulling later entries of its probe run into the hole. */
  #shiftBack(i: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    for (let j = (i + 1) & mask; table[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.#hashOf.get(table[j] - 1) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      table[i] = table[j];
      i = j;
    }
    table[i] = EMPTY;
  }

  #place(slot: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    let i = this.#hashOf.get(slot) & mask;
    while (table[i] !== EMPTY) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  #startGrowth(): void {
    // Never reached while growing (the old table empties long before), but kept exact if it were.
    if (this.#old) this.#move(this.#old.length);
    this.#old = this.#table;
    this.#moveAt = 0;
    this.#table = new Int32Array(this.#table.length * 2);
  }

  /** Moves the old table's next `positions` positions into the current one; drops it once empty. */
  #move(positions: number): void {
    const old = this.#old!;
    const end = Math.min(old.length, this.#moveAt + positions);
    for (let i = this.#moveAt; i < end; i++) {
      const entry = old[i];
      if (entry > 0) this.#place(entry - 1);
      if (entry !== EMPTY) old[i] = MOVED;
    }
    this.#moveAt = end;
    if (end === old.length) this.#old = undefined;
  }

  /** Encodes the key into the scratch buffer and returns its hash (FNV-1a). */
  #encode(key: string): number {
    let ascii = true;
    for (let i = 0; i < key.length; i++) {
      if (key.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    const length = ascii ? key.length : 1 + 2 * key.length;
    if (length > this.#scratch.length) {
      this.#scratch = new Uint8Array(Math.max(length, this.#scratch.length * 2));
    }
    const b = this.#scratch;
    if (ascii) {
      for (let i = 0; i < key.length; i++) b[i] = key.charCodeAt(i);
    } else {
      b[0] = 0xff;
      for (let i = 0; i < key.length; i++) {
        const c = key.charCodeAt(i);
        b[1 + 2 * i] = c & 0xff;
        b[2 + 2 * i] = c >>> 8;
      }
    }
    this.#scratchLength = length;
    let h = 0x811c9dc5;
    for (let i = 0; i < length; i++) h = Math.imul(h ^ b[i], 0x01000193);
    return h >>> 0;
  }
}
