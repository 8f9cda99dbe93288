/**
 * Value bytes of the memory engine, by slot number, packed into large shared
 * slabs instead of one ArrayBuffer per value: a per-value buffer costs a JS
 * object pair on V8's heap plus a malloc'd backing store and its bookkeeping
 * outside it, more than the 100 bytes of a typical value.
 *
 * Each value is appended to the current slab behind a header naming its slot
 * and length, so a slab can be walked on its own. Overwritten and freed
 * values become garbage counted per slab; a slab that is all garbage is
 * dropped, and one whose garbage passes a third of what it holds has its
 * live values moved to the current slab and is dropped, so space held stays
 * within about 1.5 times the live bytes plus one slab. Values are read out as
 * copies, so moving or reusing slab bytes never changes what a caller holds.
 */
import { Buffer } from "node:buffer";
import { SlotColumn } from "./slot_arrays.ts";

/** Bytes before each value in a slab: its slot (u32) and length (u32). */
const HEADER = 8;
const NONE = -1;

interface Slab {
  /** A Buffer, so text is decoded straight from it (`toString` with bounds copies nothing). */
  bytes: Buffer;
  /** Bytes written from the start, headers included. */
  used: number;
  /** Bytes of `used` no slot points at any more. */
  garbage: number;
}

/** Values held by slot number; a slot holds at most one value. */
export class SlabValues {
  readonly #slabSize: number;
  readonly #slabs: (Slab | undefined)[] = [];
  readonly #freeSlabIds: number[] = [];
  #current: number;
  /** Per slot: the slab holding its value (NONE for an empty one) and the header's offset. */
  readonly #slabOf = new SlotColumn(Int32Array, NONE);
  readonly #offsetOf = new SlotColumn(Uint32Array);

  /** `slabSize` bytes per slab; a value over a quarter of it gets a slab of its own. */
  constructor(slabSize = 1 << 20) {
    this.#slabSize = slabSize;
    this.#current = this.#newSlab(slabSize);
  }

  /** Stores `value` for `slot`, replacing what the slot held. */
  write(slot: number, value: Uint8Array): void {
    this.#grow(slot);
    this.free(slot);
    if (value.byteLength > 0) this.#append(slot, value);
  }

  /** A copy of the slot's value (empty when it holds none). */
  read(slot: number): Uint8Array {
    const id = slot < this.#slabOf.capacity ? this.#slabOf.get(slot) : NONE;
    if (id === NONE) return Buffer.alloc(0);
    const bytes = this.#slabs[id]!.bytes;
    const at = this.#offsetOf.get(slot) + HEADER;
    // allocUnsafe takes small copies from a shared pool: far cheaper than an ArrayBuffer each.
    const copy = Buffer.allocUnsafe(readU32(bytes, at - 4));
    copy.set(bytes.subarray(at, at + copy.length));
    return copy;
  }

  /** The slot's value decoded as text, from byte `skip` on, without copying the bytes first. */
  text(slot: number, encoding: "latin1" | "utf16le", skip = 0): string {
    const id = slot < this.#slabOf.capacity ? this.#slabOf.get(slot) : NONE;
    if (id === NONE) return "";
    const bytes = this.#slabs[id]!.bytes;
    const at = this.#offsetOf.get(slot) + HEADER;
    return bytes.toString(encoding, at + skip, at + readU32(bytes, at - 4));
  }

  /** Bytes of the slot's value. */
  length(slot: number): number {
    const id = slot < this.#slabOf.capacity ? this.#slabOf.get(slot) : NONE;
    return id === NONE ? 0 : readU32(this.#slabs[id]!.bytes, this.#offsetOf.get(slot) + 4);
  }

  /** Whether the slot's value is exactly the first `length` bytes of `bytes`, without copying it. */
  matches(slot: number, bytes: Uint8Array, length: number): boolean {
    if (this.length(slot) !== length) return false;
    if (length === 0) return true;
    const held = this.#slabs[this.#slabOf.get(slot)]!.bytes;
    const at = this.#offsetOf.get(slot) + HEADER;
    for (let i = 0; i < length; i++) if (held[at + i] !== bytes[i]) return false;
    return true;
  }

  /** Drops the slot's value; its bytes become garbage of their slab. */
  free(slot: number): void {
    if (slot >= this.#slabOf.capacity) return;
    const id = this.#slabOf.get(slot);
    if (id === NONE) return;
    const slab = this.#slabs[id]!;
    slab.garbage += HEADER + readU32(slab.bytes, this.#offsetOf.get(slot) + 4);
    this.#slabOf.set(slot, NONE);
    this.#reclaim(id);
  }

  /** Slabs held and their total size in bytes (for tests and measurements). */
  stats(): { slabs: number; bytes: number; used: number; garbage: number } {
    let slabs = 0, bytes = 0, used = 0, garbage = 0;
    for (const s of this.#slabs) {
      if (!s) continue;
      slabs++;
      bytes += s.bytes.byteLength;
      used += s.used;
      garbage += s.garbage;
    }
    return { slabs, bytes, used, garbage };
  }

  #append(slot: number, value: Uint8Array): void {
    const need = HEADER + value.byteLength;
    let id = this.#current;
    if (need > this.#slabSize / 4) {
      id = this.#newSlab(need);
    } else if (this.#slabs[id]!.used + need > this.#slabSize) {
      id = this.#current = this.#newSlab(this.#slabSize);
      // The slab just left is no longer appended to: it may now be reclaimed.
      this.#reclaimAll(id);
    }
    const slab = this.#slabs[id]!;
    const at = slab.used;
    writeU32(slab.bytes, at, slot);
    writeU32(slab.bytes, at + 4, value.byteLength);
    slab.bytes.set(value, at + HEADER);
    slab.used += need;
    this.#slabOf.set(slot, id);
    this.#offsetOf.set(slot, at);
  }

  /** Reclaims every slab but the current one that qualifies (after the current one changed). */
  #reclaimAll(current: number): void {
    for (let id = 0; id < this.#slabs.length; id++) if (id !== current && this.#slabs[id]) this.#reclaim(id);
  }

  #reclaim(id: number): void {
    const slab = this.#slabs[id];
    if (!slab) return;
    if (id === this.#current) {
      if (slab.garbage === slab.used) slab.used = slab.garbage = 0;
      return;
    }
    if (slab.garbage === slab.used) this.#drop(id);
    else if (slab.garbage * 3 > slab.used) this.#compact(id);
  }

  /** Moves a slab's live values to the current slab and drops it. */
  #compact(id: number): void {
    const slab = this.#slabs[id]!;
    // Taken out first so that appends below never pick it or reclaim it again.
    this.#slabs[id] = undefined;
    for (let at = 0; at < slab.used;) {
      const slot = readU32(slab.bytes, at);
      const len = readU32(slab.bytes, at + 4);
      if (this.#slabOf.get(slot) === id && this.#offsetOf.get(slot) === at) {
        this.#append(slot, slab.bytes.subarray(at + HEADER, at + HEADER + len));
      }
      at += HEADER + len;
    }
    this.#freeSlabIds.push(id);
  }

  #drop(id: number): void {
    this.#slabs[id] = undefined;
    this.#freeSlabIds.push(id);
  }

  #newSlab(size: number): number {
    const slab = { bytes: Buffer.alloc(size), used: 0, garbage: 0 };
    const id = this.#freeSlabIds.pop();
    if (id !== undefined) {
      this.#slabs[id] = slab;
      return id;
    }
    this.#slabs.push(slab);
    return this.#slabs.length - 1;
  }

  #grow(slot: number): void {
    if (slot < this.#slabOf.capacity) return;
    this.#slabOf.ensure(slot + 1);
    this.#offsetOf.ensure(slot + 1);
  }
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, n: number): void {
  b[at] = n & 0xff;
  b[at + 1] = (n >>> 8) & 0xff;
  b[at + 2] = (n >>> 16) & 0xff;
  b[at + 3] = (n >>> 24) & 0xff;
}
