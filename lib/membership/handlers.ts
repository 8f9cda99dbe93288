/**
 * The membership RPCs a node serves: JoinCluster, ChangeMembership,
 * PushMembership and GetMembership, as plain functions of the node and the
 * request message.
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
  changeResponseToMsg,
  type JoinRequestMsg,
  type JoinResponseMsg,
  memberListFromMsg,
  type MemberListMsg,
  memberListToMsg,
  type MembershipChangeMsg,
  type MembershipChangeResponseMsg,
  type MembershipResponseMsg,
  memberStateToMsg,
  type NodeInfoMsg,
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
