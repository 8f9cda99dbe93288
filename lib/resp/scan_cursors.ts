/**
 * SCAN cursors of one connection.
 *
 * A cluster-wide scan is a walk over the nodes, each with its own listing
 * cursor (an opaque string). Redis clients expect one decimal cursor that
 * fits a double (redis-cli, JavaScript Numbers), so the connection keeps a
 * small table from a number it hands out to the walk's state; cursors are
 * therefore valid only on the connection that got them. The table is
 * bounded: the oldest unfinished scans are forgotten first.
 */

/** Where a cluster-wide scan stands. */
export interface ScanState {
  /** The nodes to list, fixed when the scan began. */
  nodes: string[];
  /** The node being listed. */
  index: number;
  /** Its listing cursor ("" to start it). */
  cursor: string;
}

/** Unfinished scans one connection may hold. */
export const MAX_OPEN_SCANS = 256;

/** The connection's open scans, by the cursor number handed out. */
export class ScanCursors {
  readonly #open = new Map<number, ScanState>();
  #next = 1;

  /** The state of a cursor handed out here, or undefined. */
  get(cursor: number): ScanState | undefined {
    return this.#open.get(cursor);
  }

  /** Hands out a new cursor number for a scan's state; forgets `previous`. */
  save(state: ScanState, previous?: number): number {
    if (previous !== undefined) this.#open.delete(previous);
    if (this.#open.size >= MAX_OPEN_SCANS) this.#open.delete(this.#open.keys().next().value!);
    const id = this.#next;
    this.#next = this.#next >= Number.MAX_SAFE_INTEGER ? 1 : this.#next + 1;
    this.#open.set(id, state);
    return id;
  }

  /** Forgets a finished scan. */
  drop(cursor: number): void {
    this.#open.delete(cursor);
  }
}
