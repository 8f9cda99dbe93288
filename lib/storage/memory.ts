/**
 * The in-memory storage engine, laid out compactly: a Map from key to slot
 * number, each slot's version in growable typed arrays (timestamp, interned
 * version node, tombstone flag), and value bytes in large shared slabs
 * (`slab_values.ts`). A record then costs V8 its key string and one Map entry
 * (the slot is a small integer), plus about 30 bytes of metadata and its value
 * outside the object heap, instead of a string or object per record that the
 * collector must trace. Nothing survives a restart: a node on this engine
 * gets its data back from its peers.
 */
import type { ScanPage, Storage, VersionPage } from "./mod.ts";
import { Code, KvError } from "../errors.ts";
import type { KvRecord, RecordVersion, Version } from "../record.ts";
import { SlabValues } from "./slab_values.ts";
import { NodeIds } from "./node_ids.ts";

/** Bytes counted per record besides key, version node id and value (the former packed header). */
const RECORD_OVERHEAD = 10;

/** How long an unfinished scan's position is kept. */
const CURSOR_IDLE_MS = 60_000;

interface OpenScan {
  iterator: MapIterator<[string, number]>;
  touched: number;
}

/** The in-memory engine. */
export class MemoryStorage implements Storage {
  readonly engine = "memory" as const;
  readonly #slots = new Map<string, number>();
  readonly #freeSlots: number[] = [];
  #timestamp = new Float64Array(1024);
  #node = new Uint32Array(1024);
  #tombstone = new Uint8Array(1024);
  readonly #ids = new NodeIds();
  readonly #values: SlabValues;
  readonly #scans = new Map<string, OpenScan>();
  #nextSlot = 0;
  #live = 0;
  #bytes = 0;
  #nextScanId = 1;

  /** `slabSize`: bytes per value slab (tests use small ones to exercise reuse). */
  constructor(options: { slabSize?: number } = {}) {
    this.#values = new SlabValues(options.slabSize);
  }

  get(keys: readonly string[]): Promise<(KvRecord | undefined)[]> {
    return Promise.resolve(keys.map((key) => {
      const slot = this.#slots.get(key);
      return slot === undefined ? undefined : this.#record(key, slot);
    }));
  }

  apply(records: readonly KvRecord[]): Promise<boolean[]> {
    return Promise.resolve(records.map((r) => this.#applyOne(r)));
  }

  #applyOne(r: KvRecord): boolean {
    let slot = this.#slots.get(r.key);
    if (slot !== undefined && !this.#isNewer(r, slot)) return false;
    if (slot === undefined) {
      slot = this.#newSlot();
      this.#slots.set(r.key, slot);
      this.#bytes += r.key.length + RECORD_OVERHEAD;
      this.#live += Number(!r.tombstone);
    } else {
      this.#bytes -= this.#ids.storedLength(this.#node[slot]) + this.#values.length(slot);
      this.#live += Number(!r.tombstone) - Number(this.#tombstone[slot] === 0);
      this.#ids.release(this.#node[slot]);
    }
    const node = this.#ids.acquire(r.versionNode);
    this.#timestamp[slot] = r.timestamp;
    this.#node[slot] = node;
    this.#tombstone[slot] = r.tombstone ? 1 : 0;
    this.#values.write(slot, r.tombstone ? EMPTY : r.value);
    this.#bytes += this.#ids.storedLength(node) + this.#values.length(slot);
    return true;
  }

  /** Last-write-wins against the slot's version, without building an object for it. */
  #isNewer(v: Version, slot: number): boolean {
    const held = this.#timestamp[slot];
    if (v.timestamp !== held) return v.timestamp > held;
    return v.versionNode > this.#ids.id(this.#node[slot]);
  }

  remove(key: string, version: Version): Promise<boolean> {
    const slot = this.#slots.get(key);
    if (
      slot === undefined || this.#timestamp[slot] !== version.timestamp ||
      this.#ids.id(this.#node[slot]) !== version.versionNode
    ) {
      return Promise.resolve(false);
    }
    this.#slots.delete(key);
    this.#live -= Number(this.#tombstone[slot] === 0);
    this.#bytes -= key.length + RECORD_OVERHEAD + this.#ids.storedLength(this.#node[slot]) +
      this.#values.length(slot);
    this.#ids.release(this.#node[slot]);
    this.#values.free(slot);
    this.#freeSlots.push(slot);
    return Promise.resolve(true);
  }

  async scan(cursor: string, limit: number): Promise<ScanPage> {
    const { items, nextCursor } = await this.#page(cursor, limit, (key, slot) => this.#record(key, slot));
    return { records: items, nextCursor };
  }

  async scanVersions(cursor: string, limit: number): Promise<VersionPage> {
    const { items, nextCursor } = await this.#page(cursor, limit, (key, slot) => this.#version(key, slot));
    return { versions: items, nextCursor };
  }

  /** One page of slots from an open scan (or a new one), each converted by `convert`. */
  #page<T>(cursor: string, limit: number, convert: (key: string, slot: number) => T) {
    const now = Date.now();
    this.#dropIdleScans(now);
    let id = cursor;
    let open = this.#scans.get(id);
    if (cursor === "") {
      id = String(this.#nextScanId++);
      open = { iterator: this.#slots.entries(), touched: now };
      this.#scans.set(id, open);
    } else if (!open) {
      return Promise.reject(
        new KvError(Code.INVALID_ARGUMENT, `scan cursor "${cursor}" is unknown or expired; start again`),
      );
    }
    open!.touched = now;
    const items: T[] = [];
    while (items.length < limit) {
      const next = open!.iterator.next();
      if (next.done) {
        this.#scans.delete(id);
        return Promise.resolve({ items, nextCursor: "" });
      }
      items.push(convert(next.value[0], next.value[1]));
    }
    return Promise.resolve({ items, nextCursor: id });
  }

  #dropIdleScans(now: number): void {
    for (const [id, s] of this.#scans) if (now - s.touched > CURSOR_IDLE_MS) this.#scans.delete(id);
  }

  #version(key: string, slot: number): RecordVersion {
    return {
      key,
      timestamp: this.#timestamp[slot],
      versionNode: this.#ids.id(this.#node[slot]),
      tombstone: this.#tombstone[slot] === 1,
    };
  }

  /** The slot's record; its value is a copy, so later writes never change it. */
  #record(key: string, slot: number): KvRecord {
    return { ...this.#version(key, slot), value: this.#values.read(slot) };
  }

  #newSlot(): number {
    const reused = this.#freeSlots.pop();
    if (reused !== undefined) return reused;
    const slot = this.#nextSlot++;
    if (slot >= this.#timestamp.length) this.#grow(slot + 1);
    return slot;
  }

  /** Grows the per-slot arrays by half (not double: at a million slots the slack is memory). */
  #grow(min: number): void {
    const size = Math.max(min, Math.ceil(this.#timestamp.length * 1.5));
    this.#timestamp = grown(this.#timestamp, new Float64Array(size));
    this.#node = grown(this.#node, new Uint32Array(size));
    this.#tombstone = grown(this.#tombstone, new Uint8Array(size));
  }

  healthy(): boolean {
    return true;
  }

  /** Key characters, version node ids and value bytes, plus 10 bytes per record. */
  bytesHeld(): number {
    return this.#bytes;
  }

  countLive(): Promise<number> {
    return Promise.resolve(this.#live);
  }

  close(): Promise<void> {
    this.#scans.clear();
    return Promise.resolve();
  }
}

const EMPTY = new Uint8Array(0);

function grown<T extends Float64Array | Uint32Array | Uint8Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
