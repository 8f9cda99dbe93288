/**
 * The cursors handed to callers of paged calls (ListKeys, GetSnapshot), kept
 * apart from the storage engine's own scan cursors.
 *
 * The memory engine numbers its scans in one table that also holds the
 * node's internal scans (recovery, range moves, anti-entropy, cleanup): a
 * caller that could name a storage cursor could advance one of those, and a
 * join would silently miss records. So a caller never sees a storage cursor:
 * it gets 128 random bits (22 base64url characters) that this table maps to
 * the storage cursor, bound to the connection that opened the scan. A guessed
 * cursor, or one taken from another connection, names nothing here and is
 * refused INVALID_ARGUMENT; storage only ever receives cursors it handed out
 * itself. Each cursor is good for one page (the next page gets a new one), so
 * two pages can never advance one storage scan at once.
 *
 * Open scans are capped per connection: a new scan beyond the cap ends the
 * connection's least recently used one (a client that reads only first
 * pages keeps working), and only pages being read at once beyond the cap are
 * refused RESOURCE_EXHAUSTED. One left idle expires and has its storage scan
 * closed: while any scan is open the memory engine does not reuse freed slots.
 */
import { Buffer } from "node:buffer";
import { Code, KvError, type StatusCode } from "../errors.ts";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";

/** A scan between two pages: whose it is, where storage goes on, when it was last used. */
interface IdleScan {
  connection: string;
  storageCursor: string;
  touched: number;
}

/** A page being read: the storage cursor to start from ("" for a new scan), and whose scan it is. */
export interface ScanLease {
  readonly connection: string;
  readonly storageCursor: string;
}

/** Options of {@link ClientScans}. */
export interface ClientScansOptions {
  /** Scans one connection may hold open at once (`limits.max_scans_per_connection`). */
  maxPerConnection: number;
  /** An unused cursor expires after this long. */
  idleMs: number;
  /** Ends a storage scan no caller will go on with (the memory engine's `closeScan`). */
  closeScan?: (storageCursor: string) => void;
  log?: Logger;
  now?: () => number;
}

/** Refusals are logged once per connection and minute. */
const LOG_INTERVAL_MS = 60_000;

/** The node's table of callers' open scans. */
export class ClientScans {
  /** Oldest use first: each use re-inserts, so expiry stops at the first fresh one. */
  readonly #idle = new Map<string, IdleScan>();
  /** Open scans per connection, pages being read included. */
  readonly #open = new Map<string, number>();
  readonly #refusals = new Throttle(LOG_INTERVAL_MS);
  readonly #now: () => number;

  constructor(private readonly opts: ClientScansOptions) {
    this.#now = opts.now ?? Date.now;
  }

  /**
   * The scan `cursor` names on this connection ("" starts one), taken out of
   * the table until {@link settle} or {@link abandon} is called for it.
   */
  take(connection: string, cursor: string): ScanLease {
    this.#expire();
    if (cursor === "") {
      let open = this.#open.get(connection) ?? 0;
      // A caller that never pages to the end (an older client reading only
      // the first page, again and again) gives up its oldest unused scan.
      if (open >= this.opts.maxPerConnection && this.#evictOldest(connection)) open--;
      if (open >= this.opts.maxPerConnection) {
        throw this.#refuse(
          connection,
          Code.RESOURCE_EXHAUSTED,
          `this connection is reading ${open} pages at once (limits.max_scans_per_connection); ` +
            `wait for one to be answered`,
        );
      }
      this.#open.set(connection, open + 1);
      return { connection, storageCursor: "" };
    }
    const scan = this.#idle.get(cursor);
    // One answer for guessed, expired and foreign cursors: a prober learns nothing from it.
    if (!scan || scan.connection !== connection) {
      throw this.#refuse(
        connection,
        Code.INVALID_ARGUMENT,
        `cursor was not handed out on this connection, or has expired or been used; start again with an empty cursor`,
      );
    }
    this.#idle.delete(cursor);
    return { connection, storageCursor: scan.storageCursor };
  }

  /** The page was read and storage goes on at `nextStorageCursor`: the cursor for the caller ("" at the end). */
  settle(lease: ScanLease, nextStorageCursor: string): string {
    if (nextStorageCursor === "") {
      this.#release(lease.connection);
      return "";
    }
    const cursor = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
    this.#idle.set(cursor, {
      connection: lease.connection,
      storageCursor: nextStorageCursor,
      touched: this.#now(),
    });
    return cursor;
  }

  /** The page failed: the scan ends (the caller starts again). */
  abandon(lease: ScanLease): void {
    this.#release(lease.connection);
    if (lease.storageCursor !== "") this.opts.closeScan?.(lease.storageCursor);
  }

  /** Scans open on a connection (pages being read included). */
  openScans(connection: string): number {
    this.#expire();
    return this.#open.get(connection) ?? 0;
  }

  #expire(): void {
    const now = this.#now();
    for (const [cursor, scan] of this.#idle) {
      if (now - scan.touched <= this.opts.idleMs) return;
      this.#idle.delete(cursor);
      this.#release(scan.connection);
      this.opts.closeScan?.(scan.storageCursor);
    }
  }

  /** Ends the connection's least recently used scan that is not being read; whether there was one. */
  #evictOldest(connection: string): boolean {
    for (const [cursor, scan] of this.#idle) {
      if (scan.connection !== connection) continue;
      this.#idle.delete(cursor);
      this.#release(connection);
      this.opts.closeScan?.(scan.storageCursor);
      return true;
    }
    return false;
  }

  #release(connection: string): void {
    const open = (this.#open.get(connection) ?? 1) - 1;
    if (open > 0) this.#open.set(connection, open);
    else this.#open.delete(connection);
  }

  #refuse(connection: string, code: StatusCode, message: string): KvError {
    // Per address, not per connection: a caller opening connection after connection still gets one line a minute.
    const held = this.#refusals.take(connection.replace(/:\d+$/, ""));
    if (held !== undefined) {
      this.opts.log?.warn("paged call refused", { from: connection, reason: message, held });
    }
    return new KvError(code, message);
  }
}
