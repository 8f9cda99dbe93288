/**
 * The messages of `proto/kvstore.proto` as TypeScript sees them, and their
 * conversion to and from the core's typed records.
 *
 * This is the one place where wire shapes meet the rest of the code: the
 * server and the clients convert here, once, and everything past this file
 * deals in `KvRecord`, `WriteResult` and friends.
 */
import type { KvRecord } from "../record.ts";
import type {
  BucketPull,
  ReadResult,
  RecordPull,
  ReplicaItem,
  WriteRequest,
  WriteResult,
} from "../transport.ts";
import type { MemberList, MemberState } from "../membership/member_list.ts";
import type { ChangeRequest, ChangeResponse, JoinerAddress } from "../membership/transport.ts";
import type { Ballot, Vote } from "../membership/acceptor.ts";
import type { KeyPage, PageRequest, SnapshotPage } from "../listing.ts";
import type { ReplicaAnswer, ReplicaPush } from "../replica_apply.ts";
import type { JoinAnswer, MembershipView, VoteRequest } from "../membership/handlers.ts";
import type { MemberInfo } from "../node.ts";
import type {
  ConditionMsg,
  PaxosAcceptMsg,
  PaxosCommitMsg,
  PaxosPrepareMsg,
  PaxosVoteMsg,
} from "./lwt_messages.ts";

/** NodeStatus as the loader renders enums (by name). */
export type NodeStatusName = "ACTIVE" | "SUSPECTED" | "FAILED" | "JOINING" | "LEAVING";

export interface PutRequestMsg {
  key: string;
  value: Uint8Array;
  timestamp: number;
  ttl_ms?: number;
  expires_at_ms?: number;
  /** Added: a conditional write's condition (absent on older clients' requests). */
  condition?: ConditionMsg | null;
}

export interface PutResponseMsg {
  success: boolean;
  message: string;
  node_id: string;
  replicas_count: number;
  error_code: number;
  timestamp: number;
}

export interface GetRequestMsg {
  key: string;
  read_from_replica: boolean;
}

export interface GetResponseMsg {
  found: boolean;
  value: Uint8Array;
  message: string;
  node_id: string;
  timestamp: number;
  error_code: number;
  key: string;
  expires_at_ms?: number;
  /** Remaining ms by the answering node's clock when found and expiring. */
  ttl_ms?: number;
  /** Added (absent from older nodes' answers). */
  version_node?: string;
}

export interface DeleteRequestMsg {
  key: string;
  condition?: ConditionMsg | null;
}

export interface DeleteResponseMsg {
  success: boolean;
  message: string;
  replicas_count: number;
  node_id: string;
  error_code: number;
  timestamp: number;
}

export interface ListKeysRequestMsg {
  limit: number;
  cursor: string;
}

export interface ListKeysResponseMsg {
  keys: string[];
  count: number;
  node_id: string;
  next_cursor: string;
}

export interface MultiPutRequestMsg {
  items: PutRequestMsg[];
  origin_node_id: string;
}

export interface MultiGetRequestMsg {
  keys: string[];
  read_from_replica: boolean;
  origin_node_id: string;
}

export interface MultiDeleteRequestMsg {
  keys: string[];
  origin_node_id: string;
}

export interface MultiPutResponseMsg {
  results: PutResponseMsg[];
}

export interface MultiGetResponseMsg {
  results: GetResponseMsg[];
}

export interface MultiDeleteResponseMsg {
  results: DeleteResponseMsg[];
}

/** One batch on ForwardStream: exactly one of put, get, del, repl is set (absent ones decode as null). */
export interface ForwardFrameMsg {
  id: number;
  put?: MultiPutRequestMsg | null;
  get?: MultiGetRequestMsg | null;
  del?: MultiDeleteRequestMsg | null;
  repl?: ReplicateBatchRequestMsg | null;
  prepare?: PaxosPrepareMsg | null;
  accept?: PaxosAcceptMsg | null;
  commit?: PaxosCommitMsg | null;
}

/** The answer to the ForwardFrame with the same id: results, or the batch's status (error_code != 0). */
export interface ForwardReplyMsg {
  id: number;
  put?: MultiPutResponseMsg | null;
  get?: MultiGetResponseMsg | null;
  del?: MultiDeleteResponseMsg | null;
  repl?: ReplicateBatchResponseMsg | null;
  prepare?: PaxosVoteMsg | null;
  accept?: PaxosVoteMsg | null;
  commit?: Record<string, never> | null;
  error_code: number;
  error_message: string;
}

export interface HeartbeatRequestMsg {
  node_id: string;
  host: string;
  port: number;
  timestamp: number;
  keys_count: number;
  status: NodeStatusName;
  hints_pending: number;
  membership_epoch: number;
}

export interface HeartbeatResponseMsg {
  acknowledged: boolean;
  receiver_id: string;
  timestamp: number;
  status: NodeStatusName;
  keys_count: number;
  hints_pending: number;
  membership_epoch: number;
  /** 0 from a node that sends none. */
  lwt_high_water?: number;
}

export interface ForwardPutRequestMsg {
  key: string;
  value: Uint8Array;
  timestamp: number;
  origin_node_id: string;
  ttl_ms?: number;
  expires_at_ms?: number;
}

/** ForwardPutResponse and ForwardDeleteResponse share these fields. */
export interface ForwardWriteResponseMsg {
  success: boolean;
  message: string;
  handler_node_id: string;
  replicas_count: number;
  error_code: number;
  timestamp: number;
}

export interface ForwardGetRequestMsg {
  key: string;
  origin_node_id: string;
}

export interface ForwardDeleteRequestMsg {
  key: string;
  origin_node_id: string;
}

export interface ReplicateRequestMsg {
  key: string;
  value: Uint8Array;
  timestamp: number;
  primary_node: string;
  operation: "PUT" | "DELETE";
  version_node: string;
  hint_for: string;
  expires_at_ms?: number;
  /** Unused: set by older nodes, ignored (a replica keeps last-write-wins for every copy). */
  restamp?: boolean;
}

export interface ReplicateBatchRequestMsg {
  items: ReplicateRequestMsg[];
  primary_node: string;
}

export interface ReplicateBatchResponseMsg {
  success: boolean;
  message: string;
  replica_node_id: string;
  /** How many items were newer than what the replica held. */
  applied: number;
  /** Unused: no replica re-stamps any more (ca6daa1); older nodes read it as "none". */
  restamped?: { index: number; timestamp: number }[];
}

export interface KeyValuePairMsg {
  key: string;
  value: Uint8Array;
  timestamp: number;
  version_node: string;
  tombstone: boolean;
  expires_at_ms?: number;
}

export interface SnapshotRequestMsg {
  requesting_node_id: string;
  limit: number;
  cursor: string;
}

export interface SnapshotResponseMsg {
  data: KeyValuePairMsg[];
  total_keys: number;
  provider_node_id: string;
  snapshot_timestamp: number;
  next_cursor: string;
  message: string;
}

export interface NodeInfoMsg {
  node_id: string;
  host: string;
  port: number;
  status: NodeStatusName;
  last_heartbeat: number;
  keys_count: number;
  recovered_records: number;
  member_state: MemberStateName;
  clock_offset_ms: number;
  /** -1: not measured. */
  clock_offset_uncertainty_ms: number;
  status_reason: string;
}

export interface MembershipResponseMsg {
  nodes: NodeInfoMsg[];
  cluster_size: number;
  virtual_nodes: number;
  replication_factor: number;
  cluster_name: string;
  responder_id: string;
  member_list: MemberListMsg | null;
  settings_json: string;
  claimant_id: string;
  streamed: string[];
  vote_epoch: number;
  vouched_list: MemberListMsg | null;
  vouched_adopted: boolean;
  vouched_ballot: BallotMsg | null;
}

export interface MembershipRequestMsg {
  requesting_node_id: string;
  vouch_epoch: number;
}

/** MemberState as the loader renders it. */
export type MemberStateName = "MEMBER_NORMAL" | "MEMBER_JOINING" | "MEMBER_LEAVING";

export interface MemberMsg {
  node_id: string;
  host: string;
  port: number;
  state: MemberStateName;
  admin_port: number;
  resp_port: number;
}

export interface MemberListMsg {
  epoch: number;
  claimant_id: string;
  members: MemberMsg[];
}

export interface MembershipChangeMsg {
  kind: "CHANGE_REMOVE" | "CHANGE_STREAMED" | "CHANGE_JOIN";
  node_id: string;
  host: string;
  port: number;
  epoch: number;
  forwarded: boolean;
  admin_port: number;
  resp_port: number;
}

export interface MembershipChangeResponseMsg {
  accepted: boolean;
  retry: boolean;
  message: string;
  member_list: MemberListMsg | null;
  claimant_id: string;
}

export interface JoinResponseMsg {
  accepted: boolean;
  message: string;
  existing_nodes: NodeInfoMsg[];
  retry: boolean;
  member_list: MemberListMsg | null;
}

export interface BallotMsg {
  round: number;
  node_id: string;
}

export interface MembershipPrepareMsg {
  epoch: number;
  ballot: BallotMsg | null;
}

export interface MembershipAcceptMsg {
  epoch: number;
  ballot: BallotMsg | null;
  member_list: MemberListMsg | null;
}

export interface MembershipVoteMsg {
  refusal: "VOTE_OK" | "VOTE_OUTBID" | "VOTE_DECIDED" | "VOTE_NOT_VOTING";
  promised: BallotMsg | null;
  accepted_ballot: BallotMsg | null;
  accepted_list: MemberListMsg | null;
  decided_list: MemberListMsg | null;
  message: string;
}

export interface JoinRequestMsg {
  node_id: string;
  host: string;
  port: number;
  admin_port: number;
  resp_port: number;
}

export interface StreamRecordsRequestMsg {
  requesting_node_id: string;
  max_records: number;
  max_bytes: number;
  for_move: boolean;
  epoch: number;
}

export interface DigestRequestMsg {
  requesting_node_id: string;
  bucket_bits: number;
}

export interface BucketRequestMsg {
  requesting_node_id: string;
  bucket_bits: number;
  buckets: number[];
  max_records: number;
  max_bytes: number;
}

export interface RecordChunkMsg {
  records: KeyValuePairMsg[];
}

// ---------------------------------------------------------------------------
// Conversions.
// ---------------------------------------------------------------------------

/** A stored record as a KeyValuePair (its expiry only when it has one). */
export function recordToPair(r: KvRecord): KeyValuePairMsg {
  const pair: KeyValuePairMsg = {
    key: r.key,
    value: r.value,
    timestamp: r.timestamp,
    version_node: r.versionNode,
    tombstone: r.tombstone,
  };
  if (r.expiresAtMs) pair.expires_at_ms = r.expiresAtMs;
  return pair;
}

/** A KeyValuePair as a stored record. */
export function pairToRecord(p: KeyValuePairMsg): KvRecord {
  return withExpiry({
    key: p.key,
    value: p.value,
    timestamp: p.timestamp,
    versionNode: p.version_node,
    tombstone: p.tombstone,
  }, p.expires_at_ms);
}

/** The record with the wire's expiry set when there is one (a tombstone never expires). */
function withExpiry(r: KvRecord, expiresAtMs: number | undefined): KvRecord {
  if (expiresAtMs && !r.tombstone) r.expiresAtMs = expiresAtMs;
  return r;
}

/** A client Put as a write; ttl and expiry are checked beforehand (validate.ts checkExpiry). */
export function putToWrite(
  p: { key: string; value: Uint8Array; timestamp: number; ttl_ms?: number; expires_at_ms?: number },
): WriteRequest {
  const w: WriteRequest = { key: p.key, value: p.value, timestamp: p.timestamp, tombstone: false };
  if (p.ttl_ms) w.ttlMs = p.ttl_ms;
  if (p.expires_at_ms) w.expiresAtMs = p.expires_at_ms;
  return w;
}

/** A write's expiry fields as PutRequest and ForwardPutRequest carry them. */
export function writeExpiryToMsg(w: WriteRequest): { ttl_ms?: number; expires_at_ms?: number } {
  return {
    ...(w.ttlMs ? { ttl_ms: w.ttlMs } : {}),
    ...(w.expiresAtMs ? { expires_at_ms: w.expiresAtMs } : {}),
  };
}

/** A client Delete as a write (a tombstone the coordinator versions). */
export function deleteToWrite(key: string): WriteRequest {
  return { key, value: new Uint8Array(0), timestamp: 0, tombstone: true };
}

/** A write's outcome as a PutResponse. */
export function writeToPutResponse(w: WriteResult): PutResponseMsg {
  return {
    success: w.ok,
    message: w.message,
    node_id: w.nodeId,
    replicas_count: w.replicas,
    error_code: w.code,
    timestamp: w.timestamp,
  };
}

/** A PutResponse or DeleteResponse (they share these fields) as a write's outcome. */
export function responseToWrite(key: string, m: PutResponseMsg | DeleteResponseMsg): WriteResult {
  return {
    key,
    ok: m.success,
    code: m.error_code,
    message: m.message,
    nodeId: m.node_id,
    replicas: m.replicas_count,
    timestamp: m.timestamp,
  };
}

/** A delete's outcome as a DeleteResponse. */
export function writeToDeleteResponse(w: WriteResult): DeleteResponseMsg {
  return {
    success: w.ok,
    message: w.message,
    replicas_count: w.replicas,
    node_id: w.nodeId,
    error_code: w.code,
    timestamp: w.timestamp,
  };
}

/** A read's outcome as a GetResponse; the time left is counted on this node's clock (`nowMs`). */
export function readToGetResponse(r: ReadResult, nowMs = Date.now()): GetResponseMsg {
  const msg: GetResponseMsg = {
    found: r.found,
    value: r.value,
    message: r.message,
    node_id: r.nodeId,
    timestamp: r.timestamp,
    error_code: r.code,
    key: r.key,
    version_node: r.versionNode ?? "",
  };
  if (r.found && r.expiresAtMs) {
    msg.expires_at_ms = r.expiresAtMs;
    // At least 1: a value still found has not expired, and 0 means "never".
    msg.ttl_ms = Math.max(1, r.expiresAtMs - nowMs);
  }
  return msg;
}

/** A GetResponse as a read's outcome. */
export function getResponseToRead(key: string, m: GetResponseMsg): ReadResult {
  const r: ReadResult = {
    key,
    found: m.found,
    value: m.value,
    timestamp: m.timestamp,
    versionNode: m.version_node,
    nodeId: m.node_id,
    code: m.error_code,
    message: m.message,
  };
  if (m.found && m.expires_at_ms) r.expiresAtMs = m.expires_at_ms;
  if (m.found && m.ttl_ms) r.ttlMs = m.ttl_ms;
  return r;
}

/** A member state's wire name. */
export function memberStateToMsg(s: MemberState): MemberStateName {
  return `MEMBER_${s}`;
}

/** A wire member state (unknown values read as NORMAL). */
export function memberStateFromMsg(s: MemberStateName | undefined): MemberState {
  return s === "MEMBER_JOINING" ? "JOINING" : s === "MEMBER_LEAVING" ? "LEAVING" : "NORMAL";
}

/** A member list as a message. */
export function memberListToMsg(l: MemberList): MemberListMsg {
  return {
    epoch: l.epoch,
    claimant_id: l.claimant,
    members: l.members.map((m) => ({
      node_id: m.id,
      host: m.host,
      port: m.port,
      state: memberStateToMsg(m.state),
      admin_port: m.adminPort ?? 0,
      resp_port: m.respPort ?? 0,
    })),
  };
}

/** A member-list message as a member list. */
export function memberListFromMsg(m: MemberListMsg): MemberList {
  return {
    epoch: m.epoch,
    claimant: m.claimant_id,
    members: m.members.map((x) => ({
      id: x.node_id,
      host: x.host,
      port: x.port,
      state: memberStateFromMsg(x.state),
      ...(x.admin_port ? { adminPort: x.admin_port } : {}),
      ...(x.resp_port ? { respPort: x.resp_port } : {}),
    })),
  };
}

/** A claimant's answer as a message (JoinResponse shares accepted, retry, message, member_list). */
export function changeResponseToMsg(r: ChangeResponse): MembershipChangeResponseMsg {
  return {
    accepted: r.accepted,
    retry: r.retry,
    message: r.message,
    member_list: r.list ? memberListToMsg(r.list) : null,
    claimant_id: r.claimant,
  };
}

/** A MembershipChangeResponse (or JoinResponse) as a claimant's answer. */
export function changeResponseFromMsg(
  m: Omit<MembershipChangeResponseMsg, "claimant_id"> & { claimant_id?: string },
): ChangeResponse {
  return {
    accepted: m.accepted,
    retry: m.retry,
    message: m.message,
    list: m.member_list ? memberListFromMsg(m.member_list) : undefined,
    claimant: m.claimant_id ?? "",
  };
}

/** A JoinCluster request as the joiner's address. */
export function joinerFromMsg(m: JoinRequestMsg): JoinerAddress {
  return { id: m.node_id, host: m.host, port: m.port, adminPort: m.admin_port, respPort: m.resp_port };
}

/** A join's answer as a JoinResponse. */
export function joinAnswerToMsg(a: JoinAnswer): JoinResponseMsg {
  const { accepted, retry, message, member_list } = changeResponseToMsg(a.change);
  return { accepted, message, existing_nodes: a.members.map(memberInfoToMsg), retry, member_list };
}

/** A MembershipChange as a change (an unknown kind reads as a removal, the proto's default). */
export function changeRequestFromMsg(m: MembershipChangeMsg): ChangeRequest {
  const kind = m.kind === "CHANGE_STREAMED" ? "streamed" : m.kind === "CHANGE_JOIN" ? "join" : "remove";
  return {
    kind,
    nodeId: m.node_id,
    host: m.host,
    port: m.port,
    epoch: m.epoch,
    forwarded: m.forwarded,
    adminPort: m.admin_port,
    respPort: m.resp_port,
  };
}

/** A member as GetMembership and JoinCluster tell it. */
export function memberInfoToMsg(m: MemberInfo): NodeInfoMsg {
  return {
    node_id: m.id,
    host: m.host,
    port: m.port,
    status: m.status,
    last_heartbeat: Math.floor(m.lastContactMs / 1000),
    keys_count: m.keysCount,
    recovered_records: m.recoveredRecords,
    member_state: memberStateToMsg(m.memberState),
    clock_offset_ms: Math.round(m.clockOffset?.offsetMs ?? 0),
    clock_offset_uncertainty_ms: m.clockOffset ? Math.ceil(m.clockOffset.uncertaintyMs) : -1,
    status_reason: m.statusReason ?? "",
  };
}

/** A node's view of the membership as a MembershipResponse. */
export function membershipViewToMsg(v: MembershipView): MembershipResponseMsg {
  return {
    nodes: v.members.map(memberInfoToMsg),
    cluster_size: v.list.members.length,
    virtual_nodes: v.virtualNodes,
    replication_factor: v.replicationFactor,
    cluster_name: v.clusterName,
    responder_id: v.responder,
    member_list: memberListToMsg(v.list),
    settings_json: v.settingsJson,
    claimant_id: v.claimant,
    streamed: v.streamed,
    vote_epoch: v.voteEpoch,
    vouched_list: v.vouch ? memberListToMsg(v.vouch.list) : null,
    vouched_adopted: v.vouch?.adopted ?? false,
    vouched_ballot: v.vouch?.ballot ? ballotToMsg(v.vouch.ballot) : null,
  };
}

/** A PrepareMembership or AcceptMembership request as the vote it asks for. */
export function voteRequestFromMsg(m: MembershipPrepareMsg | MembershipAcceptMsg): VoteRequest {
  const list = "member_list" in m && m.member_list ? memberListFromMsg(m.member_list) : undefined;
  return { epoch: m.epoch, ballot: ballotFromMsg(m.ballot), ...(list ? { list } : {}) };
}

/** A ballot as a message. */
export function ballotToMsg(b: Ballot): BallotMsg {
  return { round: b.round, node_id: b.node };
}

/** A ballot message as a ballot (absent: the lowest ballot). */
export function ballotFromMsg(m: BallotMsg | null | undefined): Ballot {
  return { round: m?.round ?? 0, node: m?.node_id ?? "" };
}

/** An acceptor's vote as a message. */
export function voteToMsg(v: Vote): MembershipVoteMsg {
  const msg: MembershipVoteMsg = {
    refusal: "VOTE_OK",
    promised: null,
    accepted_ballot: null,
    accepted_list: null,
    decided_list: null,
    message: "",
  };
  if (v.ok) {
    if (v.accepted) {
      msg.accepted_ballot = ballotToMsg(v.accepted.ballot);
      msg.accepted_list = memberListToMsg(v.accepted.list);
    }
    return msg;
  }
  msg.message = v.message;
  if (v.refusal === "outbid") return { ...msg, refusal: "VOTE_OUTBID", promised: ballotToMsg(v.promised) };
  if (v.refusal === "decided") {
    return { ...msg, refusal: "VOTE_DECIDED", decided_list: memberListToMsg(v.list) };
  }
  return { ...msg, refusal: "VOTE_NOT_VOTING" };
}

/** A vote message as a vote; one that does not make sense reads as not voting. */
export function voteFromMsg(m: MembershipVoteMsg): Vote {
  switch (m.refusal) {
    case "VOTE_OK":
      return m.accepted_list
        ? {
          ok: true,
          accepted: { ballot: ballotFromMsg(m.accepted_ballot), list: memberListFromMsg(m.accepted_list) },
        }
        : { ok: true };
    case "VOTE_OUTBID":
      return { ok: false, refusal: "outbid", promised: ballotFromMsg(m.promised), message: m.message };
    case "VOTE_DECIDED":
      if (m.decided_list) {
        return { ok: false, refusal: "decided", list: memberListFromMsg(m.decided_list), message: m.message };
      }
  }
  return { ok: false, refusal: "not_voting", message: m.message || `unknown vote ${m.refusal}` };
}

/** A ListKeys or GetSnapshot request as the page it asks for. */
export function pageRequestFromMsg(
  m: ListKeysRequestMsg | SnapshotRequestMsg,
  connection: string,
): PageRequest {
  return { cursor: m.cursor, limit: m.limit, connection };
}

/** A page of keys as a ListKeysResponse. */
export function keyPageToMsg(p: KeyPage): ListKeysResponseMsg {
  return { keys: p.keys, count: p.count, node_id: p.nodeId, next_cursor: p.nextCursor };
}

/** A ListKeysResponse as a page of keys. */
export function keyPageFromMsg(m: ListKeysResponseMsg): KeyPage {
  return { keys: m.keys, count: m.count, nodeId: m.node_id, nextCursor: m.next_cursor };
}

/** A page of records as a SnapshotResponse. */
export function snapshotPageToMsg(p: SnapshotPage): SnapshotResponseMsg {
  return {
    data: p.records.map(recordToPair),
    total_keys: p.total,
    provider_node_id: p.provider,
    snapshot_timestamp: p.timestamp,
    next_cursor: p.nextCursor,
    message: p.message,
  };
}

/** A StreamRecords request as the pull it asks for (a range move only when `for_move` is set). */
export function recordPullFromMsg(m: StreamRecordsRequestMsg): RecordPull {
  return {
    maxRecords: m.max_records,
    maxBytes: m.max_bytes,
    ...(m.for_move ? { forMoveOfEpoch: m.epoch } : {}),
  };
}

/** A StreamBuckets request as the pull it asks for. */
export function bucketPullFromMsg(m: BucketRequestMsg): BucketPull {
  return { bucketBits: m.bucket_bits, buckets: m.buckets, maxRecords: m.max_records, maxBytes: m.max_bytes };
}

/** A pushed copy as the record it carries (a copy naming no version node was versioned by its sender). */
export function replicaItemFromMsg(m: ReplicateRequestMsg): ReplicaItem {
  const record: KvRecord = withExpiry({
    key: m.key,
    value: m.value,
    timestamp: m.timestamp,
    versionNode: m.version_node || m.primary_node,
    tombstone: m.operation === "DELETE",
  }, m.expires_at_ms);
  return m.hint_for ? { record, hintFor: m.hint_for } : { record };
}

/** A Replicate or ReplicateBatch request as a push, from the node its first copy names. */
export function replicaPushFromMsg(m: ReplicateRequestMsg | ReplicateBatchRequestMsg): ReplicaPush {
  const items = "items" in m ? m.items : [m];
  return { from: items[0]?.primary_node ?? "", items: items.map(replicaItemFromMsg) };
}

/**
 * A replica's answer as a ReplicateBatchResponse. Replicate answers with it
 * too: ReplicateResponse has the same fields but `applied`, which its
 * encoder leaves out.
 */
export function replicaAnswerToMsg(a: ReplicaAnswer, replica: string): ReplicateBatchResponseMsg {
  return {
    success: true,
    message: a.message,
    replica_node_id: replica,
    applied: a.applied,
  };
}
