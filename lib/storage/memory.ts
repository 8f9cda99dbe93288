/**
 * The in-memory storage engine: a Map from key to versioned entry.
 *
 * Values are kept as Latin-1 strings, one byte per character, because a
 * short string costs V8 far less memory than a Uint8Array with its backing
 * store; the conversion is lossless for any bytes. Nothing survives a
 * restart: a node on this engine gets its data back from its peers.
 */
import { Buffer } from "node:buffer";
import type { ScanPage, Storage } from "./mod.ts";
import { isNewer, type KvRecord, type Version } from "../record.ts";

class Entry {
  constructor(
    public value: string,
    public timestamp: number,
    public versionNode: string,
    public tombstone: boolean,
  ) {}
}

/** How long an unfinished scan's position is kept. */
const CURSOR_IDLE_MS = 60_000;

interface OpenScan {
  iterator: MapIterator<[string, Entry]>;
  touched: number;
}

/** The in-memory engine. */
export class MemoryStorage implements Storage {
  readonly engine = "memory" as const;
  readonly #entries = new Map<string, Entry>();
  readonly #scans = new Map<string, OpenScan>();
  #live = 0;
  #nextScanId = 1;

  get(keys: readonly string[]): Promise<(KvRecord | undefined)[]> {
    return Promise.resolve(keys.map((key) => {
      const e = this.#entries.get(key);
      return e && toRecord(key, e);
    }));
  }

  apply(records: readonly KvRecord[]): Promise<boolean[]> {
    return Promise.resolve(records.map((r) => this.#applyOne(r)));
  }

  #applyOne(r: KvRecord): boolean {
    const held = this.#entries.get(r.key);
    if (!isNewer(r, held)) return false;
    const value = r.tombstone ? "" : latin1(r.value);
    if (held) {
      this.#live += Number(!r.tombstone) - Number(!held.tombstone);
      held.value = value;
      held.timestamp = r.timestamp;
      held.versionNode = r.versionNode;
      held.tombstone = r.tombstone;
    } else {
      this.#live += Number(!r.tombstone);
      this.#entries.set(r.key, new Entry(value, r.timestamp, r.versionNode, r.tombstone));
    }
    return true;
  }

  remove(key: string, version: Version): Promise<boolean> {
    const held = this.#entries.get(key);
    if (!held || held.timestamp !== version.timestamp || held.versionNode !== version.versionNode) {
      return Promise.resolve(false);
    }
    this.#entries.delete(key);
    this.#live -= Number(!held.tombstone);
    return Promise.resolve(true);
  }

  scan(cursor: string, limit: number): Promise<ScanPage> {
    const now = Date.now();
    this.#dropIdleScans(now);
    let id = cursor;
    let open = this.#scans.get(id);
    if (cursor === "") {
      id = String(this.#nextScanId++);
      open = { iterator: this.#entries.entries(), touched: now };
      this.#scans.set(id, open);
    } else if (!open) {
      return Promise.reject(new RangeError(`scan cursor "${cursor}" is unknown or expired; start again`));
    }
    open!.touched = now;
    const records: KvRecord[] = [];
    while (records.length < limit) {
      const next = open!.iterator.next();
      if (next.done) {
        this.#scans.delete(id);
        return Promise.resolve({ records, nextCursor: "" });
      }
      records.push(toRecord(next.value[0], next.value[1]));
    }
    return Promise.resolve({ records, nextCursor: id });
  }

  #dropIdleScans(now: number): void {
    for (const [id, s] of this.#scans) if (now - s.touched > CURSOR_IDLE_MS) this.#scans.delete(id);
  }

  healthy(): boolean {
    return true;
  }

  countLive(): Promise<number> {
    return Promise.resolve(this.#live);
  }

  close(): Promise<void> {
    this.#scans.clear();
    return Promise.resolve();
  }
}

function toRecord(key: string, e: Entry): KvRecord {
  return {
    key,
    value: Buffer.from(e.value, "latin1"),
    timestamp: e.timestamp,
    versionNode: e.versionNode,
    tombstone: e.tombstone,
  };
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}
