/**
 * The membership RPCs a node serves: JoinCluster, ChangeMembership,
 * PushMembership, GetMembership and the votes on new lists
 * (PrepareMembership, AcceptMembership), as plain functions of the node and
 * the typed request (`grpc/messages.ts` converts the messages).
 *
 * `grpc/server.ts` registers them beside the data RPCs and stays the edge
 * (admission, metrics, status codes); what a join or a change means (who may
 * join, what a change is forwarded as, what a node tells of its membership)
 * lives here, beside the manager that decides it.
 *
 * A pushed list is adopted only once proven (`proof.ts`), else refused
 * FAILED_PRECONDITION. Votes are given only on the epoch after the held one
 * and only to a ballot of a current member (and, when the call is
 * authenticated, only to that member itself), so a forged vote request is
 * refused before anything is saved or the voting floor moves.
 */
import type { KvNode, MemberInfo } from "../node.ts";
import { Code, KvError } from "../errors.ts";
import { isNodeId } from "../config.ts";
import { settingsJson } from "./settings.ts";
import type { ChangeRequest, ChangeResponse, JoinerAddress, MembershipSnapshot } from "./transport.ts";
import type { Ballot, Vote } from "./acceptor.ts";
import type { MemberList } from "./member_list.ts";
import type { Vouch } from "./proof.ts";
import { Throttle } from "../throttle.ts";

/** The answer to a join: the claimant's, and the members as this node sees them after it. */
export interface JoinAnswer {
  change: ChangeResponse;
  members: MemberInfo[];
}

/** A vote asked of this node's acceptor on the list of `epoch`; phase 2 (accept) carries the list. */
export interface VoteRequest {
  epoch: number;
  /** The lowest ballot (round 0, node "") when the request named none. */
  ballot: Ballot;
  list?: MemberList;
}

/** What GetMembership answers: the members as this node sees them, and the cluster's settings. */
export interface MembershipView extends MembershipSnapshot {
  members: MemberInfo[];
  clusterName: string;
  virtualNodes: number;
  replicationFactor: number;
  /** "" when there is none. */
  claimant: string;
  /** Nodes that have streamed the ranges they gain in the current change. */
  streamed: string[];
  /** This node's word on the list of the epoch asked about, if any was asked and it has one. */
  vouch?: Vouch;
}

/** A node asks to join: the claimant adds it (JOINING), or it is told to retry or refused. */
export async function joinCluster(node: KvNode, joiner: JoinerAddress): Promise<JoinAnswer> {
  checkNodeAddress(joiner.id, joiner.host, joiner.port);
  const change = await node.membership.propose({
    kind: "join",
    nodeId: joiner.id,
    host: joiner.host,
    port: joiner.port,
    adminPort: joiner.adminPort,
    respPort: joiner.respPort,
  });
  return { change, members: node.members() };
}

/** A change sent to the claimant, or to any node, which forwards it. */
export async function changeMembership(node: KvNode, change: ChangeRequest): Promise<ChangeResponse> {
  if (change.kind === "join") checkNodeAddress(change.nodeId, change.host ?? "", change.port ?? 0);
  if (change.nodeId === "") throw new KvError(Code.INVALID_ARGUMENT, "node_id is required");
  return await node.membership.propose(change);
}

/**
 * A member list pushed by the claimant: adopted if newer and proven, ignored
 * if not newer, refused FAILED_PRECONDITION otherwise. Returns the node's epoch after.
 */
export async function pushMembership(node: KvNode, list: MemberList): Promise<number> {
  await node.membership.push(list, `push claiming ${list.claimant || "no claimant"}`);
  return node.membership.epoch;
}

/**
 * Phase 1 of the vote on the list of `epoch`: this node's acceptor promises
 * the ballot, or says why not. `caller` is the authenticated caller's node
 * id when the call carried credentials (undefined: none to check).
 */
export async function prepareMembership(node: KvNode, req: VoteRequest, caller?: string): Promise<Vote> {
  const epoch = checkEpoch(req.epoch);
  checkVoter(node, epoch, req.ballot, caller);
  return await node.membership.acceptor.prepare(epoch, req.ballot);
}

/** Phase 2: this node's acceptor accepts the list, unless it promised a higher ballot. */
export async function acceptMembership(node: KvNode, req: VoteRequest, caller?: string): Promise<Vote> {
  const epoch = checkEpoch(req.epoch);
  if (!req.list || req.list.epoch !== epoch) {
    throw new KvError(Code.INVALID_ARGUMENT, `member_list must be the list of epoch ${epoch}`);
  }
  checkVoter(node, epoch, req.ballot, caller);
  return await node.membership.acceptor.accept(epoch, req.ballot, req.list);
}

const voteRefusals = new Throttle(60_000);

/**
 * Votes are cast only on the epoch after the held one, for a member's
 * ballot; an epoch at or below the held one is answered "decided" by the
 * acceptor (nothing saved). A proposer further ahead makes this node catch
 * up (through its own members) before it votes.
 */
function checkVoter(node: KvNode, epoch: number, ballot: Ballot, caller?: string): void {
  const m = node.membership;
  const held = m.epoch;
  if (epoch <= held) return;
  const isMember = (id: string) => m.list.members.some((x) => x.id === id);
  let refusal: KvError | undefined;
  if (!isMember(ballot.node)) {
    refusal = new KvError(
      Code.PERMISSION_DENIED,
      `ballot proposer "${ballot.node}" is not a member of epoch ${held} on ${node.id}`,
    );
  } else if (caller !== undefined && caller !== ballot.node) {
    refusal = new KvError(
      Code.PERMISSION_DENIED,
      `caller "${caller}" may not vote under the ballot of "${ballot.node}"`,
    );
  } else if (epoch !== held + 1) {
    m.noteEpoch(ballot.node, epoch - 1);
    refusal = new KvError(
      Code.FAILED_PRECONDITION,
      `${node.id} holds epoch ${held}: it votes on epoch ${held + 1} only, not ${epoch}`,
    );
  }
  if (!refusal) return;
  const notLogged = voteRefusals.take(`${node.id}:${caller ?? ballot.node}`.slice(0, 200));
  if (notLogged !== undefined) {
    node.log.warn("membership vote refused", {
      proposer: ballot.node,
      epoch,
      reason: refusal.message,
      refusals_not_logged: notLogged || undefined,
    });
  }
  throw refusal;
}

function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new KvError(Code.INVALID_ARGUMENT, `epoch must be a positive integer, not ${epoch}`);
  }
  return epoch;
}

/** GetMembership: this node's view of the membership, read now. */
export function membershipView(node: KvNode, vouchEpoch = 0): MembershipView {
  const c = node.config;
  const m = node.membership;
  return {
    members: node.members(),
    list: m.list,
    clusterName: c.clusterName,
    virtualNodes: c.consistentHashing.virtualNodes,
    replicationFactor: c.replication.replicationFactor,
    responder: node.id,
    settingsJson: settingsJson(c),
    claimant: m.claimant() ?? "",
    streamed: m.streamed(),
    voteEpoch: m.acceptor.voteEpoch(),
    ...(vouchEpoch > 0 ? { vouch: m.vouchFor(vouchEpoch) } : {}),
  };
}

/** A joining node must name itself and where it listens. */
function checkNodeAddress(id: string, host: string, port: number): void {
  if (!isNodeId(id)) {
    throw new KvError(Code.INVALID_ARGUMENT, `node id "${id}" may hold only letters, digits, _ . -`);
  }
  if (host === "" || !(port >= 1 && port <= 65535)) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `a joining node needs its host and port (got "${host}:${port}")`,
    );
  }
}
