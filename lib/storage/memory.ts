/**
 * The in-memory storage engine: a Map from key to versioned entry.
 *
 * Each entry is one Latin-1 string, one byte per character, holding the
 * version and the value together (see `pack`): a flat short string costs V8
 * far less memory than an object with a Uint8Array, a boxed timestamp and a
 * node-id string beside it (about 180 instead of 280 bytes per 100-byte
 * record). The conversion is lossless for any bytes. Nothing survives a
 * restart: a node on this engine gets its data back from its peers.
 */
import { Buffer } from "node:buffer";
import type { ScanPage, Storage, VersionPage } from "./mod.ts";
import { Code, KvError } from "../errors.ts";
import { isNewer, type KvRecord, type RecordVersion, type Version } from "../record.ts";

/**
 * An entry's layout, one byte per character: tombstone flag (1), timestamp
 * (7, big-endian; timestamps stay below 2^53), length of the version node's
 * id (2), the id's characters, then the value's bytes.
 */
type Entry = string;

const HEADER = 10;

function pack(r: KvRecord): Entry {
  const id = storedId(r.versionNode);
  if (id.length > 0xffff) throw new RangeError(`version node id of ${id.length} characters is too long`);
  const valueLen = r.tombstone ? 0 : r.value.byteLength;
  const buf = Buffer.allocUnsafe(HEADER + id.length + valueLen);
  buf[0] = r.tombstone ? 1 : 0;
  const high = Math.floor(r.timestamp / 0x1_0000_0000);
  buf[1] = (high >>> 16) & 0xff;
  buf[2] = (high >>> 8) & 0xff;
  buf[3] = high & 0xff;
  buf.writeUInt32BE(r.timestamp >>> 0, 4);
  buf[8] = id.length >>> 8;
  buf[9] = id.length & 0xff;
  buf.write(id, HEADER, "latin1");
  if (valueLen > 0) buf.set(r.value, HEADER + id.length);
  return buf.toString("latin1");
}

/**
 * A version node's id as stored: ASCII as is (every configured id is), any
 * other text as a 0xff marker and its UTF-8 bytes, so every character fits
 * in a byte.
 */
function storedId(id: string): string {
  for (let i = 0; i < id.length; i++) {
    if (id.charCodeAt(i) > 0x7f) return `\u00ff${Buffer.from(id, "utf8").toString("latin1")}`;
  }
  return id;
}

function timestampOf(e: Entry): number {
  const high = (e.charCodeAt(1) << 16) | (e.charCodeAt(2) << 8) | e.charCodeAt(3);
  const low =
    ((e.charCodeAt(4) << 24) | (e.charCodeAt(5) << 16) | (e.charCodeAt(6) << 8) | e.charCodeAt(7)) >>> 0;
  return high * 0x1_0000_0000 + low;
}

function idLength(e: Entry): number {
  return (e.charCodeAt(8) << 8) | e.charCodeAt(9);
}

function versionNodeOf(e: Entry): string {
  const id = e.slice(HEADER, HEADER + idLength(e));
  return id.charCodeAt(0) === 0xff ? Buffer.from(id.slice(1), "latin1").toString("utf8") : id;
}

function isTombstone(e: Entry): boolean {
  return e.charCodeAt(0) === 1;
}

function versionOf(e: Entry): Version {
  return { timestamp: timestampOf(e), versionNode: versionNodeOf(e) };
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
  #bytes = 0;
  #nextScanId = 1;

  get(keys: readonly string[]): Promise<(KvRecord | undefined)[]> {
    return Promise.resolve(keys.map((key) => {
      const e = this.#entries.get(key);
      return e === undefined ? undefined : toRecord(key, e);
    }));
  }

  apply(records: readonly KvRecord[]): Promise<boolean[]> {
    return Promise.resolve(records.map((r) => this.#applyOne(r)));
  }

  #applyOne(r: KvRecord): boolean {
    const held = this.#entries.get(r.key);
    if (held !== undefined && !isNewer(r, versionOf(held))) return false;
    this.#live += Number(!r.tombstone) - (held === undefined ? 0 : Number(!isTombstone(held)));
    const entry = pack(r);
    this.#bytes += entry.length - (held === undefined ? -r.key.length : held.length);
    this.#entries.set(r.key, entry);
    return true;
  }

  remove(key: string, version: Version): Promise<boolean> {
    const held = this.#entries.get(key);
    if (
      held === undefined || timestampOf(held) !== version.timestamp ||
      versionNodeOf(held) !== version.versionNode
    ) {
      return Promise.resolve(false);
    }
    this.#entries.delete(key);
    this.#live -= Number(!isTombstone(held));
    this.#bytes -= key.length + held.length;
    return Promise.resolve(true);
  }

  async scan(cursor: string, limit: number): Promise<ScanPage> {
    const { items, nextCursor } = await this.#page(cursor, limit, toRecord);
    return { records: items, nextCursor };
  }

  async scanVersions(cursor: string, limit: number): Promise<VersionPage> {
    const { items, nextCursor } = await this.#page(cursor, limit, toVersion);
    return { versions: items, nextCursor };
  }

  /** One page of entries from an open scan (or a new one), each converted by `convert`. */
  #page<T>(cursor: string, limit: number, convert: (key: string, e: Entry) => T) {
    const now = Date.now();
    this.#dropIdleScans(now);
    let id = cursor;
    let open = this.#scans.get(id);
    if (cursor === "") {
      id = String(this.#nextScanId++);
      open = { iterator: this.#entries.entries(), touched: now };
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

  healthy(): boolean {
    return true;
  }

  /** Key characters plus packed entries (one byte per character). */
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

function toVersion(key: string, e: Entry): RecordVersion {
  return { key, timestamp: timestampOf(e), versionNode: versionNodeOf(e), tombstone: isTombstone(e) };
}

function toRecord(key: string, e: Entry): KvRecord {
  const start = HEADER + idLength(e);
  return {
    key,
    value: e.length > start ? Buffer.from(e.slice(start), "latin1") : new Uint8Array(0),
    timestamp: timestampOf(e),
    versionNode: versionNodeOf(e),
    tombstone: isTombstone(e),
  };
}
