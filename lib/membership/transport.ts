/**
 * What membership needs from the network, as typed calls.
 *
 * Implemented by `grpc/peer_client.ts` beside the other peer calls. Peers
 * are named by id; `addPeer` makes a node that joined (or a seed address
 * given to `--join`) callable. A peer that cannot be reached throws
 * `PeerUnavailableError`, as every peer call does.
 */
import type { MemberList } from "./member_list.ts";
import type { VoteTransport } from "./proposer.ts";
import type { Vouch } from "./proof.ts";

/** A change sent to the claimant (or to any node, which forwards it). */
export interface ChangeRequest {
  kind: "remove" | "streamed" | "join";
  nodeId: string;
  host?: string;
  port?: number;
  /** For "join": the joiner's admin listener (0 or absent: none). */
  adminPort?: number;
  /** For "join": the joiner's RESP listener (0 or absent: none). */
  respPort?: number;
  /** For "streamed": the epoch of the change whose ranges were streamed. */
  epoch?: number;
  forwarded?: boolean;
}

/** Where a joining node is reached: gRPC, and its admin listener (0: none). */
export interface JoinerAddress {
  id: string;
  host: string;
  port: number;
  adminPort: number;
  /** Its Redis protocol gateway (0: none). */
  respPort?: number;
}

/** The claimant's answer. */
export interface ChangeResponse {
  accepted: boolean;
  /** Not now (another change is under way, or a member is not ready): ask again later. */
  retry: boolean;
  message: string;
  list?: MemberList;
  claimant: string;
}

/** A node's membership as GetMembership reports it. */
export interface MembershipSnapshot {
  list: MemberList;
  /** The cluster's settings (the cluster file's sections as JSON, without nodes). */
  settingsJson: string;
  responder: string;
  /** The highest epoch the responder holds a membership vote for (0: none). */
  voteEpoch: number;
}

/** Membership calls to other nodes (votes on new lists included). */
export interface MembershipTransport extends VoteTransport {
  /** Makes a node callable by id (a new member, or a seed address). */
  addPeer(id: string, host: string, port: number): void;
  fetchMembership(peer: string): Promise<MembershipSnapshot>;
  /** A member's word on the list of `epoch` (GetMembership with `vouch_epoch`); undefined: it has none. */
  vouch(peer: string, epoch: number): Promise<Vouch | undefined>;
  pushMembership(peer: string, list: MemberList): Promise<number>;
  changeMembership(peer: string, change: ChangeRequest): Promise<ChangeResponse>;
  /** JoinCluster: asks to join (the receiver forwards to the claimant). */
  join(peer: string, self: JoinerAddress): Promise<ChangeResponse>;
}
