/**
 * The memory engine's keys, outside V8's object heap: each slot's key bytes
 * live in slabs (`slab_values.ts`) and an open-addressing hash table (linear
 * probing, backward-shift deletion) maps a key to its slot. A Map of a
 * million string keys costs about 66 bytes a key on the collected heap, which
 * the collector traces and keeps room beside; this costs about 30 outside it.
 *
 * Keys are stored losslessly: one byte a character when every character is
 * ASCII, otherwise a 0xff marker and two bytes a UTF-16 code unit (so lone
 * surrogates survive too).
 */
import { SlabValues } from "./slab_values.ts";
import { grownArray } from "./slot_arrays.ts";

const EMPTY = -1;

export class KeyIndex {
  readonly #keys: SlabValues;
  #hashOf = new Uint32Array(1024);
  #table = new Int32Array(1024).fill(EMPTY);
  #count = 0;
  #scratch = new Uint8Array(256);
  #scratchLength = 0;

  constructor(slabSize?: number) {
    this.#keys = new SlabValues(slabSize);
  }

  /** The key's slot, or -1 when it is not held. */
  find(key: string): number {
    const hash = this.#encode(key);
    const mask = this.#table.length - 1;
    for (let i = hash & mask;; i = (i + 1) & mask) {
      const slot = this.#table[i];
      if (slot === EMPTY) return -1;
      if (this.#hashOf[slot] === hash && this.#keys.matches(slot, this.#scratch, this.#scratchLength)) {
        return slot;
      }
    }
  }

  /** Records `key` (not held) at `slot` (not in use). */
  add(key: string, slot: number): void {
    if ((this.#count + 1) * 2 > this.#table.length) this.#resize(this.#table.length * 2);
    const hash = this.#encode(key);
    if (slot >= this.#hashOf.length) this.#hashOf = grownArray(this.#hashOf, slot + 1);
    this.#hashOf[slot] = hash;
    this.#keys.write(slot, this.#scratch.subarray(0, this.#scratchLength));
    this.#place(slot);
    this.#count++;
  }

  /** Forgets the key held at `slot`. */
  delete(slot: number): void {
    const mask = this.#table.length - 1;
    let i = this.#hashOf[slot] & mask;
    while (this.#table[i] !== slot) i = (i + 1) & mask;
    // Backward shift: pull later entries of the probe run into the hole.
    for (let j = (i + 1) & mask; this.#table[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.#hashOf[this.#table[j]] & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      this.#table[i] = this.#table[j];
      i = j;
    }
    this.#table[i] = EMPTY;
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

  #place(slot: number): void {
    const mask = this.#table.length - 1;
    let i = this.#hashOf[slot] & mask;
    while (this.#table[i] !== EMPTY) i = (i + 1) & mask;
    this.#table[i] = slot;
  }

  #resize(size: number): void {
    const old = this.#table;
    this.#table = new Int32Array(size).fill(EMPTY);
    for (const slot of old) if (slot !== EMPTY) this.#place(slot);
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
