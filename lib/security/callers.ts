/**
 * Which node ids may call this node as a node: the members of the list it
 * holds, and for `drainMs` after it sees one leave the list, that node too.
 *
 * A removed node still has writes queued for replicas and calls in flight
 * when it learns it left; it flushes them for at most STOP_FLUSH_MS (5 s,
 * node.ts) and exits. Its peers accept it for the drain period
 * (`security.removed_node_drain_ms`) after they adopt the list without it,
 * and refuse it afterwards, whatever later changes there are or are not.
 */

/** The part of a member list this needs. */
export interface MemberIds {
  epoch: number;
  members: readonly { id: string }[];
}

/** The callers allowed now, as the list changes. */
export class CallerSet {
  #epoch = -1;
  #members = new Set<string>();
  /** Ids that left the list, and when this node saw them leave. */
  readonly #departed = new Map<string, number>();

  constructor(
    private readonly list: () => MemberIds,
    private readonly drainMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `id` is a member, or left less than the drain period ago. */
  has(id: string): boolean {
    this.#refresh();
    if (this.#members.has(id)) return true;
    const left = this.#departed.get(id);
    if (left === undefined) return false;
    if (this.now() - left < this.drainMs) return true;
    this.#departed.delete(id);
    return false;
  }

  /** Whether `id` is in the list held now (not draining). */
  isMember(id: string): boolean {
    this.#refresh();
    return this.#members.has(id);
  }

  #refresh(): void {
    const list = this.list();
    if (list.epoch === this.#epoch) return;
    const now = this.now();
    const next = new Set(list.members.map((m) => m.id));
    for (const id of this.#members) if (!next.has(id)) this.#departed.set(id, now);
    for (const id of next) this.#departed.delete(id);
    this.#members = next;
    this.#epoch = list.epoch;
  }
}
