/**
 * The gRPC implementation of `PeerTransport`: calls from this node to others.
 *
 * Three NodeService clients per peer, each its own HTTP/2 connection (a
 * lane): heartbeats and membership on one, forwards and replication on
 * another, bulk streams (recovery, anti-entropy, large batches) on a third.
 * On one shared connection a heartbeat queued behind megabytes of bulk
 * frames missed its deadline and made a node suspect a live peer, and a
 * client's forward waited behind a recovery stream; Cassandra splits its
 * peer connections the same way (urgent, small, large messages). Each is
 * created once, reused for every call, pings its peer (keepalive) so a
 * connection whose far end vanished is dropped, and is closed when the peer
 * moves or the node stops. Every call has a deadline; a peer that cannot be reached
 * surfaces as `PeerUnavailableError`, so the caller fails over. Forwarded
 * reads and writes that leave for the same peer in one turn of the event
 * loop go as one batch (lib/coalesce.ts), sent as one message of a
 * long-lived ForwardStream to that peer (forward_stream.ts), as are small
 * replication batches; a peer that has no ForwardStream (an older node) gets
 * the unary Forward* and ReplicateBatch calls instead.
 */
import * as grpc from "@grpc/grpc-js";
import type { NodeConfig } from "../config.ts";
import type { HeartbeatReply } from "../detector.ts";
import { type KvRecord, recordSize } from "../record.ts";
import type {
  HeartbeatInfo,
  PeerTransport,
  ReadResult,
  RecordPull,
  ReplicaItem,
  WriteRequest,
  WriteResult,
} from "../transport.ts";
import type {
  ChangeRequest,
  ChangeResponse,
  JoinerAddress,
  MembershipSnapshot,
  MembershipTransport,
} from "../membership/transport.ts";
import type { MemberList } from "../membership/member_list.ts";
import type { Ballot, Vote } from "../membership/acceptor.ts";
import type { Vouch } from "../membership/proof.ts";
import { kvstorePackage } from "./proto.ts";
import type { LwtTransport } from "../lwt/service.ts";
import {
  type ConditionalResultMsg,
  opToMsg,
  type PaxosAcceptMsg,
  type PaxosCommitMsg,
  type PaxosPrepareMsg,
  paxosVoteFromMsg,
  type PaxosVoteMsg,
  resultFromMsg,
} from "./lwt_messages.ts";
import { Coalescer } from "../coalesce.ts";
import { Code, KvError, PeerUnavailableError } from "../errors.ts";
import { StreamMux } from "../stream_mux.ts";
import { openForwardStream, StreamUnsupportedError } from "./forward_stream.ts";
import type { NodeSecurity } from "../security/settings.ts";
import { signingInterceptor } from "../security/call_signing.ts";
import { TokenSigner } from "../security/token.ts";
import { channelCredentials } from "../security/tls.ts";
import {
  channelOptions,
  type Keepalive,
  peerChannelOptions,
  peerError,
  serverStream,
  unary,
} from "./call.ts";
import {
  ballotFromMsg,
  ballotToMsg,
  changeResponseFromMsg,
  type DeleteResponseMsg,
  type ForwardFrameMsg,
  type ForwardGetRequestMsg,
  type ForwardReplyMsg,
  type ForwardWriteResponseMsg,
  type GetResponseMsg,
  getResponseToRead,
  type HeartbeatRequestMsg,
  type HeartbeatResponseMsg,
  type JoinResponseMsg,
  type KeyValuePairMsg,
  memberListFromMsg,
  memberListToMsg,
  type MembershipAcceptMsg,
  type MembershipChangeResponseMsg,
  type MembershipPrepareMsg,
  type MembershipRequestMsg,
  type MembershipResponseMsg,
  type MembershipVoteMsg,
  type MultiDeleteRequestMsg,
  type MultiDeleteResponseMsg,
  type MultiGetRequestMsg,
  type MultiGetResponseMsg,
  type MultiPutRequestMsg,
  type MultiPutResponseMsg,
  pairToRecord,
  type PutRequestMsg,
  type PutResponseMsg,
  type RecordChunkMsg,
  recordToPair,
  type ReplicateBatchRequestMsg,
  type ReplicateBatchResponseMsg,
  type ReplicateRequestMsg,
  responseToWrite,
  voteFromMsg,
  writeExpiryToMsg,
} from "./messages.ts";

/**
 * A change forwarded to the claimant waits for a whole decision there: two
 * voting rounds, then a push that each member proves by asking the others.
 * One call's deadline is too short for that on a loaded machine.
 */
const CHANGE_DEADLINE_FACTOR = 4;

/** Options of {@link GrpcPeerTransport}. */
export interface GrpcPeerOptions {
  self: NodeConfig;
  peers: readonly NodeConfig[];
  timeoutMs: number;
  maxMessageBytes: number;
  /** Deadline of a whole recovery or anti-entropy stream, and of a digest request. */
  streamTimeoutMs?: number;
  /** Items per Multi* call the peers accept (limits.max_batch_items); bounds coalesced forwards. */
  maxBatchItems?: number;
  /** The cluster secret (calls carry tokens) and TLS files, if configured. */
  security?: NodeSecurity;
  /** Keepalive pings of the peer channels (failure_detection.keepalive_*); none if absent (a short probe). */
  keepalive?: Keepalive;
}

/** Forwards coalesced into one call at most: enough to amortise a call, small enough to stay quick. */
const COALESCE_MAX_ITEMS = 256;
/** Per-item overhead counted towards a coalesced call's byte bound besides key and value. */
const ITEM_OVERHEAD_BYTES = 32;

/** How long a peer without ForwardStream gets unary forwards before the stream is tried again. */
const UNARY_FALLBACK_MS = 60_000;

/** The channel option that keeps each lane on a connection of its own (not a gRPC option). */
const LANE_OPTION = "kvstore.lane";

/** The batch kinds of a ForwardStream frame: request and response of each. */
interface BatchKinds {
  put: [MultiPutRequestMsg, MultiPutResponseMsg];
  get: [MultiGetRequestMsg, MultiGetResponseMsg];
  del: [MultiDeleteRequestMsg, MultiDeleteResponseMsg];
  repl: [ReplicateBatchRequestMsg, ReplicateBatchResponseMsg];
  prepare: [PaxosPrepareMsg, PaxosVoteMsg];
  accept: [PaxosAcceptMsg, PaxosVoteMsg];
  commit: [PaxosCommitMsg, Record<string, never>];
}

/**
 * Replication batches up to this size go on the stream; a larger one (a
 * backlog, hints handed off) would hold up the forwards queued behind it on
 * that one stream, so it goes as a call of its own.
 */
const STREAM_REPLICATE_MAX_BYTES = 64 * 1024;

/**
 * The connections to a peer, by the traffic they carry: `control` for
 * heartbeats and membership (small, and late only if the peer is), `data`
 * for client requests forwarded and their copies, `bulk` for what moves many
 * records at once.
 */
type Lane = "control" | "data" | "bulk";

/** One peer: a channel per lane, its forward stream, and until when it is known to lack one. */
interface Peer {
  address: string;
  lanes: Record<Lane, grpc.Client>;
  forwards?: StreamMux<ForwardFrameMsg, ForwardReplyMsg>;
  unaryUntil: number;
}

/** NodeService calls to the other nodes of the cluster. */
export class GrpcPeerTransport implements PeerTransport, MembershipTransport {
  readonly #clients = new Map<string, Peer>();
  readonly #writes: Coalescer<WriteRequest, WriteResult>;
  readonly #reads: Coalescer<string, ReadResult>;
  readonly #signer?: TokenSigner;
  /** The node ids seeds ("seed:host:port") answered with: tokens are made for them. */
  readonly #seedIds = new Map<string, string>();
  /** Per peer, the receiver's clock when it last refused this node's token for its time. */
  readonly #receiverTimes = new Map<string, { receiverMs: number; localMs: number }>();
  /**
   * Told of each such refusal (the node's clock watch, set once the node
   * exists): with no heartbeat getting through, it is the only sample of the
   * peer's clock.
   */
  onReceiverTime?: (peer: string, receiverMs: number, rttMs: number) => void;

  constructor(private readonly o: GrpcPeerOptions) {
    const bounds = {
      maxItems: Math.min(COALESCE_MAX_ITEMS, o.maxBatchItems ?? COALESCE_MAX_ITEMS),
      maxBytes: Math.floor(o.maxMessageBytes / 2),
    };
    this.#writes = new Coalescer((peer, ws) => this.#sendWrites(peer, ws), {
      ...bounds,
      sizeOf: (w) => w.key.length + w.value.length + ITEM_OVERHEAD_BYTES,
      keyOf: (w) => w.key,
    });
    this.#reads = new Coalescer((peer, keys) => this.#sendReads(peer, keys), {
      ...bounds,
      sizeOf: (k) => k.length + ITEM_OVERHEAD_BYTES,
      keyOf: (k) => k,
    });
    if (o.security?.secret) this.#signer = new TokenSigner(o.security.secret, o.self.id);
    for (const p of o.peers) this.addPeer(p.id, p.host, p.port);
  }

  /**
   * Makes a node callable by id. A peer already known at the same address
   * keeps its channel; one that moved gets a new channel and the old one is
   * closed (calls still running on it finish).
   */
  addPeer(id: string, host: string, port: number): void {
    const address = `${host}:${port}`;
    const known = this.#clients.get(id);
    if (known?.address === address) return;
    if (known) closePeer(known);
    const NodeService = kvstorePackage().NodeService;
    const { credentials, options } = channelCredentials(address, this.o.security?.tls);
    const base = this.o.keepalive
      ? peerChannelOptions(this.o.maxMessageBytes, this.o.keepalive)
      : channelOptions(this.o.maxMessageBytes);
    const channel = (lane: Lane) =>
      new NodeService(address, credentials, {
        ...base,
        ...options,
        // grpc-js shares a connection between channels of equal options; this one differs per lane.
        [LANE_OPTION]: lane,
        interceptors: this.#interceptorsFor(id, lane),
      });
    const lanes = { control: channel("control"), data: channel("data"), bulk: channel("bulk") };
    this.#clients.set(id, { address, lanes, unaryUntil: 0 });
  }

  /** This node's token on each call of a lane to `id`, made for the node that answers there. */
  #interceptorsFor(id: string, lane: Lane): grpc.Interceptor[] {
    if (!this.#signer) return [];
    return [signingInterceptor(this.#signer, {
      target: () => this.#seedIds.get(id) ?? id,
      stream: lane,
      onReceiverTime: (receiverMs, localMs, rttMs) => {
        this.#receiverTimes.set(id, { receiverMs, localMs });
        this.onReceiverTime?.(id, receiverMs, rttMs);
      },
    })];
  }

  /**
   * The receiver's clock as `peer` last told it, refusing this node's token
   * for its time (the offset is receiverMs - localMs); for clock monitoring.
   */
  lastReceiverTime(peer: string): { receiverMs: number; localMs: number } | undefined {
    return this.#receiverTimes.get(peer);
  }

  /** Closes every peer channel gracefully (a GOAWAY to each peer); for a node that has stopped. */
  close(): void {
    for (const p of this.#clients.values()) closePeer(p);
  }

  async fetchMembership(peer: string): Promise<MembershipSnapshot> {
    const res = await this.#control<MembershipResponseMsg>(peer, "GetMembership", {
      requesting_node_id: this.o.self.id,
    });
    if (!res.member_list) throw new RangeError(`node ${peer} sent no member list`);
    if (peer.startsWith("seed:") && res.responder_id) this.#seedIds.set(peer, res.responder_id);
    return {
      list: memberListFromMsg(res.member_list),
      settingsJson: res.settings_json,
      responder: res.responder_id,
      voteEpoch: res.vote_epoch,
    };
  }

  async vouch(peer: string, epoch: number): Promise<Vouch | undefined> {
    const req: MembershipRequestMsg = { requesting_node_id: this.o.self.id, vouch_epoch: epoch };
    const res = await this.#control<MembershipResponseMsg>(peer, "GetMembership", req);
    if (!res.vouched_list) return undefined;
    return {
      list: memberListFromMsg(res.vouched_list),
      adopted: res.vouched_adopted,
      ...(res.vouched_adopted ? {} : { ballot: ballotFromMsg(res.vouched_ballot) }),
    };
  }

  async prepare(peer: string, epoch: number, ballot: Ballot): Promise<Vote> {
    const req: MembershipPrepareMsg = { epoch, ballot: ballotToMsg(ballot) };
    return voteFromMsg(await this.#control<MembershipVoteMsg>(peer, "PrepareMembership", req));
  }

  async accept(peer: string, epoch: number, ballot: Ballot, list: MemberList): Promise<Vote> {
    const req: MembershipAcceptMsg = {
      epoch,
      ballot: ballotToMsg(ballot),
      member_list: memberListToMsg(list),
    };
    return voteFromMsg(await this.#control<MembershipVoteMsg>(peer, "AcceptMembership", req));
  }

  async pushMembership(peer: string, list: MemberList): Promise<number> {
    const res = await this.#control<{ epoch: number }>(peer, "PushMembership", memberListToMsg(list));
    return res.epoch;
  }

  async changeMembership(peer: string, change: ChangeRequest): Promise<ChangeResponse> {
    const kinds = { remove: "CHANGE_REMOVE", streamed: "CHANGE_STREAMED", join: "CHANGE_JOIN" } as const;
    const res = await this.#unary<MembershipChangeResponseMsg>(
      peer,
      "ChangeMembership",
      {
        kind: kinds[change.kind],
        node_id: change.nodeId,
        host: change.host ?? "",
        port: change.port ?? 0,
        epoch: change.epoch ?? 0,
        forwarded: change.forwarded ?? false,
        admin_port: change.adminPort ?? 0,
        resp_port: change.respPort ?? 0,
      },
      "control",
      this.o.timeoutMs * CHANGE_DEADLINE_FACTOR,
    );
    return changeResponseFromMsg(res);
  }

  async join(peer: string, self: JoinerAddress): Promise<ChangeResponse> {
    // A join's token is made for the node that answers at the seed: learn its id first.
    if (this.#signer && peer.startsWith("seed:") && !this.#seedIds.has(peer)) {
      await this.fetchMembership(peer);
    }
    const res = await this.#control<JoinResponseMsg>(peer, "JoinCluster", {
      node_id: self.id,
      host: self.host,
      port: self.port,
      admin_port: self.adminPort,
      resp_port: self.respPort ?? 0,
    });
    return changeResponseFromMsg(res);
  }

  async heartbeat(peer: string, info: HeartbeatInfo): Promise<HeartbeatReply> {
    const req: HeartbeatRequestMsg = {
      node_id: this.o.self.id,
      host: this.o.self.host,
      port: this.o.self.port,
      timestamp: Date.now(),
      keys_count: info.keysCount,
      status: info.status,
      hints_pending: info.hintsPending,
      membership_epoch: info.epoch ?? 0,
    };
    const res = await this.#control<HeartbeatResponseMsg>(peer, "Heartbeat", req);
    return {
      status: res.status === "JOINING" ? "JOINING" : "ACTIVE",
      keysCount: res.keys_count,
      hintsPending: res.hints_pending,
      epoch: res.membership_epoch,
      peerTimeMs: Number(res.timestamp),
      lwtHighWater: Number(res.lwt_high_water ?? 0),
    };
  }

  forwardWrites(peer: string, writes: readonly WriteRequest[]): Promise<WriteResult[]> {
    return this.#writes.call(peer, writes);
  }

  forwardReads(peer: string, keys: readonly string[]): Promise<ReadResult[]> {
    return this.#reads.call(peer, keys);
  }

  /** One batch of writes: on the peer's ForwardStream, or as unary calls to a peer without one. */
  #sendWrites(peer: string, writes: readonly WriteRequest[]): Promise<WriteResult[]> {
    return this.#streamOrUnary(
      peer,
      () => this.#streamWrites(peer, writes),
      () => this.#unaryWrites(peer, writes),
    );
  }

  /** One batch of reads: on the peer's ForwardStream, or as a unary call to a peer without one. */
  #sendReads(peer: string, keys: readonly string[]): Promise<ReadResult[]> {
    return this.#streamOrUnary(peer, () => this.#streamReads(peer, keys), () => this.#unaryReads(peer, keys));
  }

  /**
   * Sends on the peer's stream; a peer without one gets the unary calls, now
   * (nothing on the stream was read, so nothing is sent twice) and for a while.
   */
  async #streamOrUnary<R>(peer: string, onStream: () => Promise<R>, unary: () => Promise<R>): Promise<R> {
    const p = this.#peer(peer);
    try {
      if (performance.now() >= p.unaryUntil) return await onStream();
    } catch (err) {
      if (!(err instanceof StreamUnsupportedError)) throw err;
      p.unaryUntil = performance.now() + UNARY_FALLBACK_MS;
      p.forwards = undefined;
    }
    return await unary();
  }

  /** Writes as one put and/or one delete frame of the stream. */
  async #streamWrites(peer: string, writes: readonly WriteRequest[]): Promise<WriteResult[]> {
    const origin_node_id = this.o.self.id;
    const puts = writes.filter((w) => !w.tombstone);
    const dels = writes.filter((w) => w.tombstone);
    const [putRes, delRes] = await Promise.all([
      puts.length > 0
        ? this.#onStream(peer, "put", { items: puts.map(putRequestOf), origin_node_id })
        : undefined,
      dels.length > 0
        ? this.#onStream(peer, "del", { keys: dels.map((w) => w.key), origin_node_id })
        : undefined,
    ]);
    if (!delRes) return puts.map((w, i) => responseToWrite(w.key, putRes!.results[i]));
    if (!putRes) return dels.map((w, i) => responseToWrite(w.key, delRes.results[i]));
    let p = 0, d = 0;
    return writes.map((w) =>
      w.tombstone ? responseToWrite(w.key, delRes.results[d++]) : responseToWrite(w.key, putRes.results[p++])
    );
  }

  async #streamReads(peer: string, keys: readonly string[]): Promise<ReadResult[]> {
    const res = await this.#onStream(peer, "get", {
      keys: keys as string[],
      read_from_replica: false,
      origin_node_id: this.o.self.id,
    });
    return keys.map((k, i) => getResponseToRead(k, res.results[i]));
  }

  /** Sends one batch as a frame of the peer's ForwardStream; its answer, or its status as the error. */
  async #onStream<K extends keyof BatchKinds>(
    peer: string,
    kind: K,
    req: BatchKinds[K][0],
  ): Promise<BatchKinds[K][1]> {
    const p = this.#peer(peer);
    p.forwards ??= new StreamMux({
      open: (events) => openForwardStream(p.lanes.data, peer, events),
      idOf: (reply) => reply.id,
      timeoutMs: this.o.timeoutMs,
      timedOut: () =>
        new PeerUnavailableError(peer, `no answer within ${this.o.timeoutMs} ms`, Code.DEADLINE_EXCEEDED),
    });
    const reply = await p.forwards.request((id) => ({ id, [kind]: req }) as ForwardFrameMsg);
    if (reply.error_code !== 0) {
      throw peerError(peer, { code: reply.error_code, details: reply.error_message });
    }
    const res = reply[kind] as BatchKinds[K][1] | null | undefined;
    if (!res) throw new KvError(Code.INTERNAL, `node ${peer} answered a ${kind} frame without its answer`);
    if ("results" in res && ("items" in req || "keys" in req)) {
      const count = "items" in req ? req.items.length : req.keys.length;
      if (res.results.length !== count) {
        throw new KvError(
          Code.INTERNAL,
          `node ${peer} answered a ${kind} batch of ${count} with ${res.results.length} results`,
        );
      }
    }
    return res;
  }

  /** One batch of writes as unary calls: the single-item RPC for one, ForwardMultiPut/Delete for more. */
  async #unaryWrites(peer: string, writes: readonly WriteRequest[]): Promise<WriteResult[]> {
    if (writes.length === 1) return [await this.#forwardOne(peer, writes[0])];
    const results = new Array<WriteResult>(writes.length);
    const puts = writes.map((w, i) => ({ w, i })).filter(({ w }) => !w.tombstone);
    const dels = writes.map((w, i) => ({ w, i })).filter(({ w }) => w.tombstone);
    const origin = this.o.self.id;
    await Promise.all([
      puts.length > 0 &&
      this.#unary<{ results: PutResponseMsg[] }>(peer, "ForwardMultiPut", {
        items: puts.map(({ w }) => putRequestOf(w)),
        origin_node_id: origin,
      }).then((res) => puts.forEach(({ w, i }, j) => results[i] = responseToWrite(w.key, res.results[j]))),
      dels.length > 0 &&
      this.#unary<{ results: DeleteResponseMsg[] }>(peer, "ForwardMultiDelete", {
        keys: dels.map(({ w }) => w.key),
        origin_node_id: origin,
      }).then((res) => dels.forEach(({ w, i }, j) => results[i] = responseToWrite(w.key, res.results[j]))),
    ]);
    return results;
  }

  /** One write, with the original unary RPCs older nodes also answer. */
  async #forwardOne(peer: string, w: WriteRequest): Promise<WriteResult> {
    const origin_node_id = this.o.self.id;
    const res = w.tombstone
      ? await this.#unary<ForwardWriteResponseMsg>(peer, "ForwardDelete", { key: w.key, origin_node_id })
      : await this.#unary<ForwardWriteResponseMsg>(peer, "ForwardPut", {
        key: w.key,
        value: w.value,
        timestamp: w.timestamp,
        origin_node_id,
        ...writeExpiryToMsg(w),
      });
    return {
      key: w.key,
      ok: res.success,
      code: res.error_code,
      message: res.message,
      nodeId: res.handler_node_id,
      replicas: res.replicas_count,
      timestamp: res.timestamp,
    };
  }

  /** One batch of reads as a unary call: ForwardGet for one key, ForwardMultiGet for more. */
  async #unaryReads(peer: string, keys: readonly string[]): Promise<ReadResult[]> {
    if (keys.length === 1) {
      const req: ForwardGetRequestMsg = { key: keys[0], origin_node_id: this.o.self.id };
      const res = await this.#unary<GetResponseMsg & { handler_node_id: string }>(peer, "ForwardGet", req);
      return [getResponseToRead(keys[0], { ...res, node_id: res.handler_node_id })];
    }
    const res = await this.#unary<{ results: GetResponseMsg[] }>(peer, "ForwardMultiGet", {
      keys,
      read_from_replica: false,
      origin_node_id: this.o.self.id,
    });
    return keys.map((k, i) => getResponseToRead(k, res.results[i]));
  }

  /** A batch of copies: on the peer's stream when small, else (or for a peer without one) as a call. */
  async replicate(peer: string, items: readonly ReplicaItem[]): Promise<number> {
    const req: ReplicateBatchRequestMsg = {
      items: items.map((item) => replicateRequest(this.o.self.id, item)),
      primary_node: this.o.self.id,
    };
    const answered = (res: ReplicateBatchResponseMsg) => res.applied;
    const unary = async (lane: Lane) =>
      answered(await this.#unary<ReplicateBatchResponseMsg>(peer, "ReplicateBatch", req, lane));
    let bytes = 0;
    for (const { record } of items) bytes += recordSize(record);
    if (bytes > STREAM_REPLICATE_MAX_BYTES) return await unary("bulk");
    return await this.#streamOrUnary(
      peer,
      async () => answered(await this.#onStream(peer, "repl", req)),
      () => unary("data"),
    );
  }

  async readRecords(peer: string, keys: readonly string[]): Promise<KvRecord[]> {
    const res = await this.#unary<{ records: KeyValuePairMsg[] }>(peer, "ReadRecords", {
      keys,
      requesting_node_id: this.o.self.id,
    });
    return res.records.map(pairToRecord);
  }

  streamRecords(
    peer: string,
    opts: RecordPull,
  ): AsyncIterable<KvRecord[]> {
    return this.#stream(peer, "StreamRecords", {
      requesting_node_id: this.o.self.id,
      max_records: opts.maxRecords,
      max_bytes: opts.maxBytes,
      for_move: opts.forMoveOfEpoch !== undefined,
      epoch: opts.forMoveOfEpoch ?? 0,
    }, opts.signal);
  }

  /**
   * On the streams' deadline, not rpc_timeout_ms: the peer scans every key it
   * holds to answer, which takes seconds at a million keys (over 2 s in the
   * benchmark's 1M-key round, whose every exchange then failed and marked a
   * live peer unreachable). A dead or frozen peer is still found by heartbeats
   * and by keepalive pings, which fail this call too.
   */
  async digests(peer: string, bucketBits: number): Promise<number[]> {
    const res = await this.#unary<{ digests: number[] }>(
      peer,
      "GetDigests",
      {
        requesting_node_id: this.o.self.id,
        bucket_bits: bucketBits,
      },
      "bulk",
      this.#streamTimeoutMs,
    );
    return res.digests;
  }

  streamBuckets(
    peer: string,
    opts: { bucketBits: number; buckets: number[]; maxRecords: number; maxBytes: number },
  ): AsyncIterable<KvRecord[]> {
    return this.#stream(peer, "StreamBuckets", {
      requesting_node_id: this.o.self.id,
      bucket_bits: opts.bucketBits,
      buckets: opts.buckets,
      max_records: opts.maxRecords,
      max_bytes: opts.maxBytes,
    });
  }

  /**
   * Per-key consensus calls (lib/lwt/) on the data lane. A forwarded
   * operation may run up to `opTimeoutMs` on the key's leader, so its
   * deadline is that plus one call's.
   */
  lwt(opTimeoutMs: number): LwtTransport {
    const self = this.o.self.id;
    // Each phase is a frame of the peer's ForwardStream (a message, not a call), else a unary call.
    const phase = async <K extends "prepare" | "accept" | "commit">(
      peer: string,
      kind: K,
      method: string,
      req: BatchKinds[K][0],
    ): Promise<BatchKinds[K][1]> =>
      await this.#streamOrUnary(
        peer,
        () => this.#onStream(peer, kind, req),
        () => this.#unary<BatchKinds[K][1]>(peer, method, req),
      );
    return {
      prepare: async (voter, key, ballot) =>
        paxosVoteFromMsg(await phase(voter, "prepare", "PaxosPrepare", { key, ballot: ballotToMsg(ballot) })),
      accept: async (voter, key, ballot, record) =>
        paxosVoteFromMsg(
          await phase(voter, "accept", "PaxosAccept", {
            key,
            ballot: ballotToMsg(ballot),
            record: recordToPair(record),
          }),
        ),
      commit: async (voter, record) => {
        await phase(voter, "commit", "PaxosCommit", { record: recordToPair(record) });
      },
      forward: async (peer, op) =>
        resultFromMsg(
          await this.#unary<ConditionalResultMsg>(
            peer,
            "ForwardConditional",
            opToMsg(op, self),
            "data",
            opTimeoutMs + this.o.timeoutMs,
          ),
        ),
    };
  }

  get #streamTimeoutMs(): number {
    return this.o.streamTimeoutMs ?? 10 * 60_000;
  }

  #peer(peer: string): Peer {
    const p = this.#clients.get(peer);
    if (!p) throw new RangeError(`unknown peer ${peer}`);
    return p;
  }

  async #unary<Res>(
    peer: string,
    method: string,
    req: unknown,
    lane: Lane = "data",
    timeoutMs = this.o.timeoutMs,
  ): Promise<Res> {
    try {
      return await unary<Res>(this.#peer(peer).lanes[lane], method, req, timeoutMs);
    } catch (err) {
      throw peerError(peer, err);
    }
  }

  /** A heartbeat or membership call: on the control lane, which bulk traffic never holds up. */
  #control<Res>(peer: string, method: string, req: unknown): Promise<Res> {
    return this.#unary<Res>(peer, method, req, "control");
  }

  async *#stream(
    peer: string,
    method: string,
    req: unknown,
    signal?: AbortSignal,
  ): AsyncGenerator<KvRecord[]> {
    const timeout = this.#streamTimeoutMs;
    const bulk = this.#peer(peer).lanes.bulk;
    try {
      for await (const chunk of serverStream<RecordChunkMsg>(bulk, method, req, timeout, signal)) {
        yield chunk.records.map(pairToRecord);
      }
    } catch (err) {
      throw peerError(peer, err);
    }
  }
}

/** Ends a peer's forward stream and closes its channels (calls running on them finish). */
function closePeer(p: Peer): void {
  p.forwards?.close();
  for (const channel of Object.values(p.lanes)) channel.close();
}

/** A write as the PutRequest item that forwards it. */
function putRequestOf(w: WriteRequest): PutRequestMsg {
  return { key: w.key, value: w.value, timestamp: w.timestamp, ...writeExpiryToMsg(w) };
}

function replicateRequest(self: string, { record: r, hintFor }: ReplicaItem): ReplicateRequestMsg {
  const pair = recordToPair(r);
  return {
    key: pair.key,
    value: pair.value,
    timestamp: pair.timestamp,
    primary_node: self,
    operation: r.tombstone ? "DELETE" : "PUT",
    version_node: pair.version_node,
    hint_for: hintFor ?? "",
    ...(pair.expires_at_ms ? { expires_at_ms: pair.expires_at_ms } : {}),
  };
}
