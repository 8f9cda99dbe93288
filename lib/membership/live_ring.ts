/**
 * The ring a node routes by, swapped whole when a new member list is adopted.
 *
 * It holds two rings built from the same list: `current` (every member but a
 * JOINING one) decides owners, coordinators and reads; `next` (every member
 * but a LEAVING one) is where data goes once the change completes. While a
 * change is under way, writes go to a key's nodes on both rings (pending
 * ranges), so the new holders miss nothing written during the move; outside
 * a change the two are the same ring. Callers that hold a `LiveRing` always
 * see one consistent pair: both are replaced in one assignment.
 */
import { HashRing, ringHash } from "../ring.ts";
import { currentIds, type MemberList, nextIds } from "./member_list.ts";

/** What placement needs from a ring (HashRing and LiveRing both provide it). */
export interface RingLike {
  readonly nodeIds: readonly string[];
  owner(key: string): string;
  preferenceList(key: string, count: number, accept?: (id: string) => boolean): string[];
  walk(position: number, count: number, accept?: (id: string) => boolean): string[];
  /** Nodes that must also take a write at this position while a change is under way. */
  pendingWalk?(position: number, count: number): string[];
}

interface Pair {
  epoch: number;
  current: HashRing;
  next: HashRing;
  moving: boolean;
}

/** Current and next rings of the adopted member list. */
export class LiveRing implements RingLike {
  #pair: Pair;

  constructor(list: MemberList, private readonly virtualNodes: number) {
    this.#pair = this.#build(list);
  }

  /** Rebuilds both rings from a newly adopted list. */
  adopt(list: MemberList): void {
    this.#pair = this.#build(list);
  }

  get epoch(): number {
    return this.#pair.epoch;
  }

  /** Whether a change is under way (the two rings differ). */
  get moving(): boolean {
    return this.#pair.moving;
  }

  get current(): HashRing {
    return this.#pair.current;
  }

  get next(): HashRing {
    return this.#pair.next;
  }

  get nodeIds(): readonly string[] {
    return this.#pair.current.nodeIds;
  }

  owner(key: string): string {
    return this.#pair.current.owner(key);
  }

  preferenceList(key: string, count: number, accept?: (id: string) => boolean): string[] {
    return this.#pair.current.preferenceList(key, count, accept);
  }

  walk(position: number, count: number, accept?: (id: string) => boolean): string[] {
    return this.#pair.current.walk(position, count, accept);
  }

  pendingWalk(position: number, count: number): string[] {
    const p = this.#pair;
    if (!p.moving) return [];
    const now = p.current.walk(position, count);
    return p.next.walk(position, count).filter((id) => !now.includes(id));
  }

  /** The share of the ring each node owns as first node (current ring). */
  shares(): Map<string, number> {
    return this.#pair.current.shares();
  }

  /** The current ring as arcs of positions with their owners (see HashRing.arcs). */
  arcs(): { from: number; to: number; node: string }[] {
    return this.#pair.current.arcs();
  }

  /** Whether `id` holds `key` on the current or the next ring. */
  holds(key: string, id: string, count: number): boolean {
    const p = this.#pair;
    const position = ringHash(key);
    return p.current.walk(position, count).includes(id) ||
      (p.moving && p.next.walk(position, count).includes(id));
  }

  /** Whether `id` gains `key` with the change under way (on next, not on current). */
  gains(key: string, id: string, count: number): boolean {
    const p = this.#pair;
    if (!p.moving) return false;
    const position = ringHash(key);
    return p.next.walk(position, count).includes(id) && !p.current.walk(position, count).includes(id);
  }

  /**
   * The nodes that gain ranges in the change under way: those on a key's
   * next preference list but not its current one, for some key. Every key
   * between two consecutive points of the two rings together has the same
   * lists, so checking each point of both rings covers every key. A node
   * that gains nothing (every old member, in a join) has nothing to pull.
   */
  gainers(count: number): string[] {
    const p = this.#pair;
    if (!p.moving) return [];
    const out = new Set<string>();
    for (const ring of [p.current, p.next]) {
      for (const position of ring.positions()) {
        const now = p.current.walk(position, count);
        for (const id of p.next.walk(position, count)) if (!now.includes(id)) out.add(id);
      }
    }
    return [...out].sort();
  }

  #build(list: MemberList): Pair {
    const cur = currentIds(list);
    const nxt = nextIds(list);
    const current = new HashRing(cur, this.virtualNodes);
    const moving = cur.length !== nxt.length || cur.some((id) => !nxt.includes(id));
    return {
      epoch: list.epoch,
      current,
      next: moving ? new HashRing(nxt, this.virtualNodes) : current,
      moving,
    };
  }
}
