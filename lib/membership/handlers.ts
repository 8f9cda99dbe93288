/**
 * The membership RPCs a node serves: JoinCluster, ChangeMembership,
 * PushMembership, GetMembership and the votes on new lists
 * (PrepareMembership, AcceptMembership), as plain functions of the node and
 * the request message.
 *
 * `grpc/server.ts` registers them beside the data RPCs and stays the edge
 * (admission, metrics, status codes); what a join or a change means (who may
 * join, what a change is forwarded as, what a node tells of its membership)
 * lives here, beside the manager that decides it.
 */
import type { KvNode, MemberInfo } from "../node.ts";
import { Code, KvError } from "../errors.ts";
import { isNodeId } from "../config.ts";
import { settingsJson } from "./settings.ts";
import type { ChangeResponse } from "./transport.ts";
import {
  ballotFromMsg,
  changeResponseToMsg,
  type JoinRequestMsg,
  type JoinResponseMsg,
  memberListFromMsg,
  type MemberListMsg,
  memberListToMsg,
  type MembershipAcceptMsg,
  type MembershipChangeMsg,
  type MembershipChangeResponseMsg,
  type MembershipPrepareMsg,
  type MembershipResponseMsg,
  type MembershipVoteMsg,
  memberStateToMsg,
  type NodeInfoMsg,
  voteToMsg,
} from "../grpc/messages.ts";

/** A node asks to join: the claimant adds it (JOINING), or it is told to retry or refused. */
export async function joinCluster(node: KvNode, req: JoinRequestMsg): Promise<JoinResponseMsg> {
  checkNodeAddress(req);
  const res = await node.membership.propose({
    kind: "join",
    nodeId: req.node_id,
    host: req.host,
    port: req.port,
    adminPort: req.admin_port,
  });
  const { accepted, retry, message, member_list } = changeResponseToMsg(res);
  return { accepted, message, existing_nodes: node.members().map(nodeInfo), retry, member_list };
}

/** A change sent to the claimant, or to any node, which forwards it. */
export async function changeMembership(
  node: KvNode,
  req: MembershipChangeMsg,
): Promise<MembershipChangeResponseMsg> {
  const kind = req.kind === "CHANGE_STREAMED" ? "streamed" : req.kind === "CHANGE_JOIN" ? "join" : "remove";
  if (kind === "join") checkNodeAddress(req);
  if (req.node_id === "") throw new KvError(Code.INVALID_ARGUMENT, "node_id is required");
  const res: ChangeResponse = await node.membership.propose({
    kind,
    nodeId: req.node_id,
    host: req.host,
    port: req.port,
    epoch: req.epoch,
    forwarded: req.forwarded,
    adminPort: req.admin_port,
  });
  return changeResponseToMsg(res);
}

/** A member list pushed by the claimant; the node adopts it if it is newer. */
export function pushMembership(node: KvNode, req: MemberListMsg): { epoch: number; receiver_id: string } {
  node.membership.offer(memberListFromMsg(req), "claimant");
  return { epoch: node.membership.epoch, receiver_id: node.id };
}

/** Phase 1 of the vote on the list of `epoch`: this node's acceptor promises the ballot, or says why not. */
export async function prepareMembership(node: KvNode, req: MembershipPrepareMsg): Promise<MembershipVoteMsg> {
  const epoch = checkEpoch(req.epoch);
  noteProposer(node, req.ballot?.node_id, epoch);
  return voteToMsg(await node.membership.acceptor.prepare(epoch, ballotFromMsg(req.ballot)));
}

/** Phase 2: this node's acceptor accepts the list, unless it promised a higher ballot. */
export async function acceptMembership(node: KvNode, req: MembershipAcceptMsg): Promise<MembershipVoteMsg> {
  const epoch = checkEpoch(req.epoch);
  if (!req.member_list || req.member_list.epoch !== epoch) {
    throw new KvError(Code.INVALID_ARGUMENT, `member_list must be the list of epoch ${epoch}`);
  }
  noteProposer(node, req.ballot?.node_id, epoch);
  const vote = await node.membership.acceptor.accept(
    epoch,
    ballotFromMsg(req.ballot),
    memberListFromMsg(req.member_list),
  );
  return voteToMsg(vote);
}

/** A proposer holds the list of `epoch - 1`: a voter behind it fetches that list from it. */
function noteProposer(node: KvNode, proposer: string | undefined, epoch: number): void {
  if (proposer && proposer !== node.id) node.membership.noteEpoch(proposer, epoch - 1);
}

function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new KvError(Code.INVALID_ARGUMENT, `epoch must be a positive integer, not ${epoch}`);
  }
  return epoch;
}

/** What GetMembership answers: the members as this node sees them, and the cluster's settings. */
export function membershipView(node: KvNode): MembershipResponseMsg {
  const c = node.config;
  const m = node.membership;
  return {
    nodes: node.members().map(nodeInfo),
    cluster_size: m.list.members.length,
    virtual_nodes: c.consistentHashing.virtualNodes,
    replication_factor: c.replication.replicationFactor,
    cluster_name: c.clusterName,
    responder_id: node.id,
    member_list: memberListToMsg(m.list),
    settings_json: settingsJson(c),
    claimant_id: m.claimant() ?? "",
    streamed: m.streamed(),
    vote_epoch: m.acceptor.voteEpoch(),
  };
}

function nodeInfo(m: MemberInfo): NodeInfoMsg {
  return {
    node_id: m.id,
    host: m.host,
    port: m.port,
    status: m.status,
    last_heartbeat: Math.floor(m.lastContactMs / 1000),
    keys_count: m.keysCount,
    recovered_records: m.recoveredRecords,
    member_state: memberStateToMsg(m.memberState),
  };
}

/** A joining node must name itself and where it listens. */
function checkNodeAddress(req: { node_id: string; host: string; port: number }): void {
  if (!isNodeId(req.node_id)) {
    throw new KvError(Code.INVALID_ARGUMENT, `node id "${req.node_id}" may hold only letters, digits, _ . -`);
  }
  if (req.host === "" || !(req.port >= 1 && req.port <= 65535)) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `a joining node needs its host and port (got "${req.host}:${req.port}")`,
    );
  }
}
