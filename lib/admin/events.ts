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
import type { MemberList } from "../membership/member_list.ts";
import type { StatusChange } from "../detector.ts";

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

  /** Members that came and went between two member lists. */
  membershipChanged(previous: MemberList, list: MemberList): void {
    const before = new Set(previous.members.map((m) => m.id));
    const after = new Set(list.members.map((m) => m.id));
    for (const id of after.difference(before)) {
      this.add("join", id, `${id} joined the cluster (membership epoch ${list.epoch})`);
    }
    for (const id of before.difference(after)) {
      this.add("removal", id, `${id} was removed from the cluster (membership epoch ${list.epoch})`);
    }
  }

  /** A peer's status change, as `self` saw it: a suspicion, a failure, or its return. */
  peerStatus(self: string, c: StatusChange): void {
    const why = c.reason ? `: ${c.reason}` : "";
    if (c.to === "SUSPECTED") this.add("suspicion", c.peer, `${self} suspects ${c.peer}${why}`);
    else if (c.to === "FAILED") this.add("failure", c.peer, `${self} sees ${c.peer} as FAILED${why}`);
    else if (c.from === "SUSPECTED" || c.from === "FAILED") {
      this.add("recovery", c.peer, `${c.peer} answers ${self} again (${c.to})`);
    }
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
