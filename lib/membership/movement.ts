/**
 * The range movement of a membership change under way, as `client status`
 * and the status page report it: who is joining or leaving, which nodes gain
 * ranges (computed from the rings as the nodes compute them), and which of
 * those have reported their ranges streamed.
 */
import type { LiveRing } from "./live_ring.ts";
import { changeUnderWay, type MemberList, type MemberState } from "./member_list.ts";

/** A change under way and its progress. */
export interface Movement {
  /** The member being added or removed. */
  node: string;
  state: Exclude<MemberState, "NORMAL">;
  /** Nodes that gain ranges in the change. */
  gainers: string[];
  /** Gainers that reported their ranges streamed (as the claimant records it). */
  streamed: string[];
  /** Gainers still streaming. */
  waiting: string[];
}

/** The change under way in `list` (whose rings are `ring`), or undefined when none is. */
export function movementOf(
  list: MemberList,
  ring: LiveRing,
  replicationFactor: number,
  streamed: readonly string[],
): Movement | undefined {
  const change = changeUnderWay(list);
  if (!change) return undefined;
  const gainers = ring.gainers(replicationFactor);
  return {
    node: change.id,
    state: change.state as Movement["state"],
    gainers,
    streamed: [...streamed],
    waiting: gainers.filter((id) => !streamed.includes(id)),
  };
}
