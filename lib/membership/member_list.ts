/**
 * The versioned member list: who is in the cluster, and which change is under way.
 *
 * Pure data and rules, no I/O. A list carries an epoch; the newest list wins
 * (epoch first, then the id of the claimant that made it, so two lists made
 * by rival claimants under one epoch still order the same everywhere). At
 * most one change runs at a time: a JOINING member is streaming the ranges it
 * will hold, a LEAVING member's ranges are being copied to their new holders.
 * The claimant (the lowest-id NORMAL member a node sees alive) is the only
 * node that makes new lists; others forward proposals to it.
 */

/** A member's place in a change: NORMAL, or JOINING / LEAVING while its ranges move. */
export type MemberState = "NORMAL" | "JOINING" | "LEAVING";

/** One member of the cluster. */
export interface Member {
  id: string;
  host: string;
  port: number;
  state: MemberState;
  /** Its admin HTTP listener (status page, /metrics), when it has one. */
  adminPort?: number;
  /** Its Redis protocol gateway (RESP), when it has one. */
  respPort?: number;
}

/** The cluster's members at one epoch. */
export interface MemberList {
  epoch: number;
  /** The claimant that made this list ("" for the cluster file's list, epoch 0). */
  claimant: string;
  members: Member[];
}

/** The outcome of a proposed change. */
export type Proposal =
  | { kind: "accepted"; list: MemberList; message: string }
  | { kind: "retry"; message: string }
  | { kind: "refused"; code: "NOT_FOUND" | "FAILED_PRECONDITION" | "INVALID_ARGUMENT"; message: string };

/** The list a cluster file describes: epoch 0, every node NORMAL. */
export function listFromNodes(
  nodes: readonly { id: string; host: string; port: number; adminPort?: number; respPort?: number }[],
): MemberList {
  return {
    epoch: 0,
    claimant: "",
    members: nodes.map((n) => ({
      id: n.id,
      host: n.host,
      port: n.port,
      state: "NORMAL" as const,
      ...(n.adminPort ? { adminPort: n.adminPort } : {}),
      ...(n.respPort ? { respPort: n.respPort } : {}),
    })),
  };
}

/** Whether `a` is newer than `b`: higher epoch, then higher claimant id. */
export function isNewer(a: MemberList, b: MemberList): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  return a.claimant > b.claimant;
}

/** Whether two lists are the same list: epoch, claimant and every member alike (however they travelled). */
export function sameList(a: MemberList, b: MemberList): boolean {
  const key = (l: MemberList) =>
    JSON.stringify([
      l.epoch,
      l.claimant,
      l.members.map((m) => [m.id, m.host, m.port, m.state, m.adminPort ?? 0]),
    ]);
  return key(a) === key(b);
}

/** Ids that serve reads and coordinate now: every member but a JOINING one. */
export function currentIds(list: MemberList): string[] {
  return list.members.filter((m) => m.state !== "JOINING").map((m) => m.id);
}

/** Ids that will hold data once the change completes: every member but a LEAVING one. */
export function nextIds(list: MemberList): string[] {
  return list.members.filter((m) => m.state !== "LEAVING").map((m) => m.id);
}

/** The member being added or removed, if a change is under way. */
export function changeUnderWay(list: MemberList): Member | undefined {
  return list.members.find((m) => m.state !== "NORMAL");
}

/** The claimant as a node sees it: the lowest-id NORMAL member it considers alive. */
export function claimantOf(list: MemberList, alive: (id: string) => boolean): string | undefined {
  return list.members
    .filter((m) => m.state === "NORMAL" && alive(m.id))
    .map((m) => m.id)
    .sort()[0];
}

/**
 * A join proposed to the claimant `by`. A member asking again with its own
 * address is welcomed back unchanged (a retried or restarted join).
 */
export function proposeJoin(
  list: MemberList,
  node: { id: string; host: string; port: number; adminPort?: number; respPort?: number },
  by: string,
  notReady: readonly string[],
): Proposal {
  const known = list.members.find((m) => m.id === node.id);
  if (known) {
    if (known.host !== node.host || known.port !== node.port) {
      return {
        kind: "refused",
        code: "FAILED_PRECONDITION",
        message: `${node.id} is a member at ${known.host}:${known.port}, not ${node.host}:${node.port}`,
      };
    }
    return { kind: "accepted", list, message: `welcome back, ${node.id} (${known.state})` };
  }
  const taken = list.members.find((m) => m.host === node.host && m.port === node.port);
  if (taken) {
    return {
      kind: "refused",
      code: "FAILED_PRECONDITION",
      message: `address ${node.host}:${node.port} belongs to ${taken.id}`,
    };
  }
  const busy = busyReason(list, notReady);
  if (busy) return { kind: "retry", message: busy };
  return {
    kind: "accepted",
    list: next(list, by, [...list.members, { ...node, state: "JOINING" }]),
    message: `${node.id} is joining at epoch ${list.epoch + 1}`,
  };
}

/** A removal (decommission of a live node, or removal of a dead one) proposed to the claimant. */
export function proposeRemove(
  list: MemberList,
  id: string,
  replicationFactor: number,
  by: string,
  notReady: readonly string[],
): Proposal {
  const member = list.members.find((m) => m.id === id);
  if (!member) return { kind: "refused", code: "NOT_FOUND", message: `${id} is not a member of the cluster` };
  if (member.state === "LEAVING") return { kind: "accepted", list, message: `${id} is already leaving` };
  if (member.state === "JOINING") {
    // A join that cannot finish (the joiner died) is called off: its ranges never moved.
    return {
      kind: "accepted",
      list: next(list, by, list.members.filter((m) => m.id !== id)),
      message: `the join of ${id} is called off at epoch ${list.epoch + 1}`,
    };
  }
  if (list.members.length - 1 < replicationFactor) {
    return {
      kind: "refused",
      code: "FAILED_PRECONDITION",
      message: `removing ${id} would leave ${
        list.members.length - 1
      } nodes, fewer than replication_factor ${replicationFactor}`,
    };
  }
  const busy = busyReason(list, notReady.filter((n) => n !== id));
  if (busy) return { kind: "retry", message: busy };
  const members = list.members.map((m) => (m.id === id ? { ...m, state: "LEAVING" as const } : m));
  return {
    kind: "accepted",
    list: next(list, by, members),
    message: `${id} is leaving at epoch ${list.epoch + 1}`,
  };
}

/** The list once the change under way is complete: the joiner NORMAL, the leaver gone. */
export function completeChange(list: MemberList, by: string): MemberList {
  const members = list.members
    .filter((m) => m.state !== "LEAVING")
    .map((m) => (m.state === "JOINING" ? { ...m, state: "NORMAL" as const } : m));
  return next(list, by, members);
}

function busyReason(list: MemberList, notReady: readonly string[]): string | undefined {
  const change = changeUnderWay(list);
  if (change) return `retry: a membership change is under way (${change.id} ${change.state})`;
  if (notReady.length > 0) return `retry: not every member is ACTIVE (${notReady.join(", ")})`;
  return undefined;
}

function next(list: MemberList, by: string, members: Member[]): MemberList {
  return { epoch: list.epoch + 1, claimant: by, members: [...members].sort((a, b) => a.id < b.id ? -1 : 1) };
}

/**
 * The list this node holds, when it was adopted, and whether its stray
 * copies may be dropped yet. The clock is injected so the grace period is
 * tested without sleeping.
 */
export class MemberView {
  #list: MemberList;
  #adoptedAt: number;

  constructor(initial: MemberList, private readonly clock: () => number = Date.now) {
    this.#list = initial;
    this.#adoptedAt = clock();
  }

  get list(): MemberList {
    return this.#list;
  }

  /** Adopts `list` if it is newer; says whether it was. */
  offer(list: MemberList): boolean {
    if (!isNewer(list, this.#list)) return false;
    this.#list = list;
    this.#adoptedAt = this.clock();
    return true;
  }

  /**
   * Whether copies this node no longer should hold may be dropped: a change
   * completed (epoch > 0), none is under way, and `graceMs` passed since,
   * so every node has had time to route by the new ring.
   */
  cleanupDue(graceMs: number): boolean {
    return this.#list.epoch > 0 && !changeUnderWay(this.#list) && this.clock() - this.#adoptedAt >= graceMs;
  }
}
