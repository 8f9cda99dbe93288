/**
 * The in-memory storage engine, laid out compactly: a hash index from key to
 * slot number (`key_index.ts`), each slot's version in paged typed arrays
 * (`slot_arrays.ts`: timestamp, interned version node, state), and value bytes in large shared
 * slabs (`slab_values.ts`). A record then costs the collected heap nothing:
 * about 60 bytes of index and metadata plus its key and value bytes, instead
 * of a string or object per record that the collector must trace and keep
 * room beside. Expiries are rare beside the records, so they live in a
 * sparse index by slot (`expiry_index.ts`): a record without one costs nothing more. Nothing survives a restart: a node on this engine gets its
 * data back from its peers.
 */
import { CURSOR_IDLE_MS, type ScanPage, type Storage, type VersionPage } from "./mod.ts";
import { Code, KvError } from "../errors.ts";
import {
  type ExpiringVersion,
  expiryRank,
  type KvRecord,
  type RecordVersion,
  type Version,
} from "../record.ts";
import { SlabValues } from "./slab_values.ts";
import { NodeIds } from "./node_ids.ts";
import { KeyIndex } from "./key_index.ts";
import { SlotColumn } from "./slot_arrays.ts";
import { ExpiryIndex } from "./expiry_index.ts";

/** Bytes counted per record besides key, version node id and value (the former packed header). */
const RECORD_OVERHEAD = 10;

/** A slot's state: free (reusable), a live record, or a tombstone. */
const FREE = 0, LIVE = 1, TOMBSTONE = 2;

interface OpenScan {
  /** The next slot to look at: slots are scanned in order, and a key keeps its slot while held. */
  position: number;
  touched: number;
}

/** The in-memory engine. */
export class MemoryStorage implements Storage {
  readonly engine = "memory" as const;
  readonly #keys: KeyIndex;
  readonly #freeSlots: number[] = [];
  readonly #timestamp = new SlotColumn(Float64Array);
  readonly #node = new SlotColumn(Uint32Array);
  readonly #state = new SlotColumn(Uint8Array);
  /** Expiry (ms since the epoch) of the live records that have one, by slot. */
  readonly #expiry = new ExpiryIndex();
  readonly #ids = new NodeIds();
  readonly #values: SlabValues;
  readonly #scans = new Map<string, OpenScan>();
  #nextSlot = 0;
  #live = 0;
  #bytes = 0;
  #nextScanId = 1;

  /** `slabSize`: bytes per key and value slab (tests use small ones to exercise reuse). */
  constructor(options: { slabSize?: number } = {}) {
    this.#values = new SlabValues(options.slabSize);
    this.#keys = new KeyIndex(options.slabSize);
  }

  get(keys: readonly string[]): Promise<(KvRecord | undefined)[]> {
    return Promise.resolve(keys.map((key) => {
      const slot = this.#keys.find(key);
      return slot < 0 ? undefined : this.#record(key, slot);
    }));
  }

  valueSizes(keys: readonly string[]): Promise<(number | undefined)[]> {
    return Promise.resolve(keys.map((key) => {
      const slot = this.#keys.find(key);
      return slot < 0 ? undefined : this.#values.length(slot);
    }));
  }

  apply(records: readonly KvRecord[]): Promise<boolean[]> {
    return Promise.resolve(records.map((r) => this.#applyOne(r)));
  }

  #applyOne(r: KvRecord): boolean {
    let slot = this.#keys.find(r.key);
    if (slot >= 0 && !this.#isNewer(r, slot)) return false;
    if (slot < 0) {
      slot = this.#newSlot();
      this.#keys.add(r.key, slot);
      this.#bytes += r.key.length + RECORD_OVERHEAD;
      this.#live += Number(!r.tombstone);
    } else {
      this.#bytes -= this.#ids.storedLength(this.#node.get(slot)) + this.#values.length(slot);
      this.#live += Number(!r.tombstone) - Number(this.#state.get(slot) === LIVE);
      this.#ids.release(this.#node.get(slot));
    }
    const node = this.#ids.acquire(r.versionNode);
    this.#timestamp.set(slot, r.timestamp);
    this.#node.set(slot, node);
    this.#state.set(slot, r.tombstone ? TOMBSTONE : LIVE);
    this.#values.write(slot, r.tombstone ? EMPTY : r.value);
    if (!r.tombstone && r.expiresAtMs) this.#expiry.set(slot, r.expiresAtMs);
    else this.#expiry.delete(slot);
    this.#bytes += this.#ids.storedLength(node) + this.#values.length(slot);
    return true;
  }

  /** Last-write-wins against the slot's version, without building an object for it. */
  #isNewer(v: ExpiringVersion, slot: number): boolean {
    const held = this.#timestamp.get(slot);
    if (v.timestamp !== held) return v.timestamp > held;
    const node = this.#ids.id(this.#node.get(slot));
    if (v.versionNode !== node) return v.versionNode > node;
    // The same write: only an earlier expiry replaces it (see record.ts isNewer).
    return expiryRank(v.expiresAtMs) < expiryRank(this.#expiry.get(slot));
  }

  remove(key: string, version: Version): Promise<boolean> {
    const slot = this.#keys.find(key);
    if (
      slot < 0 || this.#timestamp.get(slot) !== version.timestamp ||
      this.#ids.id(this.#node.get(slot)) !== version.versionNode
    ) {
      return Promise.resolve(false);
    }
    this.#keys.delete(slot);
    this.#live -= Number(this.#state.get(slot) === LIVE);
    this.#state.set(slot, FREE);
    this.#expiry.delete(slot);
    this.#bytes -= key.length + RECORD_OVERHEAD + this.#ids.storedLength(this.#node.get(slot)) +
      this.#values.length(slot);
    this.#ids.release(this.#node.get(slot));
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
      open = { position: 0, touched: now };
      this.#scans.set(id, open);
    } else if (!open) {
      return Promise.reject(
        new KvError(Code.INVALID_ARGUMENT, `scan cursor "${cursor}" is unknown or expired; start again`),
      );
    }
    open!.touched = now;
    const items: T[] = [];
    while (items.length < limit) {
      const slot = open!.position++;
      if (slot >= this.#nextSlot) {
        this.#scans.delete(id);
        return Promise.resolve({ items, nextCursor: "" });
      }
      if (this.#state.get(slot) !== FREE) items.push(convert(this.#keys.keyOf(slot), slot));
    }
    return Promise.resolve({ items, nextCursor: id });
  }

  /** Ends a scan no one will go on with, so new keys may take freed slots again. */
  closeScan(cursor: string): void {
    this.#scans.delete(cursor);
  }

  #dropIdleScans(now: number): void {
    for (const [id, s] of this.#scans) if (now - s.touched > CURSOR_IDLE_MS) this.#scans.delete(id);
  }

  #version(key: string, slot: number): RecordVersion {
    const v: RecordVersion = {
      key,
      timestamp: this.#timestamp.get(slot),
      versionNode: this.#ids.id(this.#node.get(slot)),
      tombstone: this.#state.get(slot) === TOMBSTONE,
    };
    const expiresAtMs = this.#expiry.get(slot);
    if (expiresAtMs !== undefined) v.expiresAtMs = expiresAtMs;
    return v;
  }

  /** The slot's record; its value is a copy, so later writes never change it. */
  #record(key: string, slot: number): KvRecord {
    return { ...this.#version(key, slot), value: this.#values.read(slot) };
  }

  /**
   * A slot for a new key. While a scan is open new keys go after every slot,
   * never into a freed one behind its position: a scan then returns every key
   * added during it, as iterating a Map does (recovery and range streams
   * rely on catching what is written while they run).
   */
  #newSlot(): number {
    if (this.#scans.size > 0) this.#dropIdleScans(Date.now());
    const reused = this.#scans.size === 0 ? this.#freeSlots.pop() : undefined;
    if (reused !== undefined) return reused;
    const slot = this.#nextSlot++;
    if (slot >= this.#timestamp.capacity) {
      for (const column of [this.#timestamp, this.#node, this.#state]) column.ensure(slot + 1);
    }
    return slot;
  }

  healthy(): boolean {
    return true;
  }

  /** Key characters, version node ids and value bytes, plus 10 bytes per record (expiry map not counted). */
  bytesHeld(): number {
    return this.#bytes;
  }

  /** Records neither deleted nor expired. */
  countLive(): Promise<number> {
    return Promise.resolve(this.#live - this.#expiry.expiredCount(Date.now()));
  }

  close(): Promise<void> {
    this.#scans.clear();
    return Promise.resolve();
  }
}

const EMPTY = new Uint8Array(0);
