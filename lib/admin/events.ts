/**
 * What happened to the cluster, as this node saw it: the status page's
 * events list.
 *
 * A fixed-size ring of the last events (joins, removals, suspicions,
 * failures, recoveries, hint deliveries, clock warnings), fed by the node
 * from the points where it already logs them; the oldest is overwritten, so
 * memory stays bounded however long the node runs. Refused calls come in
 * floods from one misbehaving client: they are only counted, by reason,
 * never listed one by one. The clock is a parameter so tests need no sleeping.
 */

/** What kind of thing happened. */
export type EventKind =
  | "join"
  | "removal"
  | "suspicion"
  | "failure"
  | "recovery"
  | "hints"
  | "clock";

/** One event as the page shows it. */
export interface NodeEvent {
  /** Unix ms. */
  atMs: number;
  kind: EventKind;
  /** The node it is about (a peer, or this node). */
  node: string;
  text: string;
}

/** How many events a node keeps by default. */
export const EVENTS_KEPT = 100;

/** Refusal reasons counted at most (a reason is a short fixed text, never a caller's input). */
const MAX_REASONS = 32;

/** The last events and the refusal counts of one node. */
export class EventLog {
  readonly #ring: (NodeEvent | undefined)[];
  #next = 0;
  readonly #refused = new Map<string, number>();

  constructor(readonly capacity = EVENTS_KEPT, private readonly now: () => number = Date.now) {
    if (!(capacity >= 1)) throw new RangeError("an event log keeps at least one event");
    this.#ring = new Array(capacity);
  }

  /** Records an event, overwriting the oldest once full. */
  add(kind: EventKind, node: string, text: string): void {
    this.#ring[this.#next] = { atMs: this.now(), kind, node, text };
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The events kept, newest first. */
  list(): NodeEvent[] {
    const out: NodeEvent[] = [];
    for (let i = 1; i <= this.capacity; i++) {
      const e = this.#ring[(this.#next - i + this.capacity) % this.capacity];
      if (e) out.push(e);
    }
    return out;
  }

  /** Counts one refused call. */
  refused(reason: string): void {
    if (!this.#refused.has(reason) && this.#refused.size >= MAX_REASONS) reason = "other";
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
  }

  /** Refused calls since start, by reason. */
  refusals(): Record<string, number> {
    return Object.fromEntries(this.#refused);
  }
}
