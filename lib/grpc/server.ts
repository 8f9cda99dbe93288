/**
 * The gRPC server: KeyValueStore for clients, NodeService for peers.
 *
 * A thin edge. Each handler checks its input, converts the message into
 * typed records once, calls the node, and converts the answer back. Errors
 * become gRPC statuses with a clear message; nothing a client sends can
 * crash the process or leave a call unanswered. The membership RPCs'
 * meaning lives in `membership/handlers.ts`; they are registered here.
 */
import * as grpc from "@grpc/grpc-js";
import type { KvNode } from "../node.ts";
import {
  failedRead,
  failedWrite,
  type ReadResult,
  type WriteRequest,
  type WriteResult,
} from "../transport.ts";
import { checkBatch, checkDistinct, checkKey, checkTimestamp, checkValue } from "../validate.ts";
import { checkExpiry } from "../expiry.ts";
import { AnswerBudget, readBounded } from "../answer_budget.ts";
import { Code, errorMessage, KvError, type StatusCode } from "../errors.ts";
import type { KvRecord } from "../record.ts";
import { bucketsFor, digestsFor, streamRecordsTo } from "../peer_pulls.ts";
import { replicateBatch, replicateOne } from "../replica_apply.ts";
import { listKeys, snapshot } from "../listing.ts";
import { failStream, serverOptions } from "./call.ts";
import { ConnectionCalls } from "./connection_calls.ts";
import { epochTrailer } from "./ring_epoch.ts";
import { sleep } from "../async.ts";
import type { NodeSecurity } from "../security/settings.ts";
import { guardNodeService, verifiedCaller } from "../security/node_guard.ts";
import { serverCredentials } from "../security/tls.ts";
import { protectNodeService } from "../security/protected_mode.ts";
import { requireClientToken } from "../security/client_auth.ts";
import {
  acceptMembership,
  changeMembership,
  joinCluster,
  membershipView,
  prepareMembership,
  pushMembership,
} from "../membership/handlers.ts";
import { kvstorePackage } from "./proto.ts";
import { conditionalDelete, conditionalPut, hasCondition, increment, paxosHandlers } from "./lwt_handlers.ts";
import type { IncrementRequestMsg } from "./lwt_messages.ts";
import { addHealthService, type NodeHealth } from "./health.ts";
import { forwardStreamHandler, type Outcome } from "./forward_stream.ts";
import { addReflectionService } from "./reflection.ts";
import type { MethodMetrics, NodeMetrics } from "../admin/node_metrics.ts";
import {
  bucketPullFromMsg,
  type BucketRequestMsg,
  changeRequestFromMsg,
  changeResponseToMsg,
  type DeleteRequestMsg,
  deleteToWrite,
  type DigestRequestMsg,
  type ForwardDeleteRequestMsg,
  type ForwardGetRequestMsg,
  type ForwardPutRequestMsg,
  type GetRequestMsg,
  type HeartbeatRequestMsg,
  type HeartbeatResponseMsg,
  joinAnswerToMsg,
  joinerFromMsg,
  type JoinRequestMsg,
  keyPageToMsg,
  type ListKeysRequestMsg,
  memberListFromMsg,
  type MemberListMsg,
  type MembershipAcceptMsg,
  type MembershipChangeMsg,
  type MembershipPrepareMsg,
  type MembershipRequestMsg,
  membershipViewToMsg,
  type MultiDeleteRequestMsg,
  type MultiGetRequestMsg,
  type MultiPutRequestMsg,
  pageRequestFromMsg,
  type PutRequestMsg,
  putToWrite,
  readToGetResponse,
  recordPullFromMsg,
  recordToPair,
  replicaAnswerToMsg,
  replicaPushFromMsg,
  type ReplicateBatchRequestMsg,
  type ReplicateRequestMsg,
  snapshotPageToMsg,
  type SnapshotRequestMsg,
  type StreamRecordsRequestMsg,
  voteRequestFromMsg,
  voteToMsg,
  writeToDeleteResponse,
  writeToPutResponse,
} from "./messages.ts";

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;
type Streaming<Req, Res> = (call: grpc.ServerWritableStream<Req, Res>) => void;

/** A node's gRPC server, and how to stop taking calls before the process exits. */
export interface ServedNode {
  server: grpc.Server;
  port: number;
  /** The grpc.health.v1 service's state. */
  health: NodeHealth;
  /**
   * Answers every new call UNAVAILABLE ("shutting down") so clients and peers
   * turn to other nodes, and resolves once the calls in flight have finished
   * or `maxMs` has passed. The server is shut down afterwards (server_cmd.ts).
   */
  drain(maxMs: number): Promise<void>;
}

/** How long a stopping node answers NOT_SERVING before it refuses calls. */
const HEALTH_NOTICE_MS = 200;

/** Calls in flight per node, whether it still takes new ones, and where calls are counted. */
interface Gate {
  inFlight: number;
  closed: boolean;
  metrics?: NodeMetrics;
  /** How to end each open ForwardStream once its frames are answered (when draining). */
  streams: Set<() => void>;
  /** Calls in flight per client connection, capped. */
  connections: ConnectionCalls;
}
const gates = new WeakMap<KvNode, Gate>();

/** Methods counted as client operations (ops/s, p99 of the status page). */
const CLIENT_METHODS = new Set([
  "Put",
  "Get",
  "Delete",
  "ListKeys",
  "MultiPut",
  "MultiGet",
  "MultiDelete",
  "Increment",
]);

/** Options of {@link serveNode}. */
export interface ServeOptions {
  /** Counts every call served (method, status code, latency). */
  metrics?: NodeMetrics;
  /** The cluster secret and TLS files: who may call NodeService, and over what. */
  security?: NodeSecurity;
}

/**
 * Starts a gRPC server for a node on its bind address; resolves to the bound
 * port. With `opts.security`, NodeService calls must prove they come from a node.
 */
export async function serveNode(node: KvNode, opts: ServeOptions = {}): Promise<ServedNode> {
  const security = opts.security ?? {};
  const gate: Gate = {
    inFlight: 0,
    closed: false,
    metrics: opts.metrics,
    streams: new Set(),
    connections: new ConnectionCalls(node.config.limits.maxCallsPerConnection, node.log),
  };
  gates.set(node, gate);
  const pkg = kvstorePackage();
  const server = new grpc.Server(serverOptions(node.config.limits));
  const handlers = new Handlers(node);
  const edge = { log: node.log };
  const kvImpl = requireClientToken(handlers.keyValueStore(), security.clientToken, {
    ...edge,
    onRefused: (reason) => node.events.refused(reason),
  });
  const nodeImpl = protectNodeService(pkg.NodeService.service, handlers.nodeService(), security, edge);
  server.addService(pkg.KeyValueStore.service, kvImpl);
  server.addService(
    pkg.NodeService.service,
    guardNodeService(pkg.NodeService.service, nodeImpl, {
      secret: security.secret,
      requireNodeCert: security.tls !== undefined,
      self: node.id,
      nodeIds: () => node.membership.list,
      drainMs: node.config.security.removedNodeDrainMs,
      windowMs: node.config.security.tokenWindowMs,
      log: node.log,
    }),
  );
  const health = addHealthService(server, node);
  addReflectionService(server);
  const self = node.self;
  const address = `${self.bindHost}:${self.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, serverCredentials(security.tls), (err, port) => {
      if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
      else resolve(port);
    });
  });
  const drain = async (maxMs: number) => {
    // Balancers see NOT_SERVING (Watch streams get it now) before calls are refused.
    health.shutdown();
    await sleep(HEALTH_NOTICE_MS);
    gate.closed = true;
    for (const stop of gate.streams) stop();
    const deadline = Date.now() + maxMs;
    while (gate.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };
  return { server, port, health, drain };
}

/** Counts a call in flight, or refuses it when the node is shutting down. */
function admit(node: KvNode): { code: number; details: string } | undefined {
  const gate = gates.get(node);
  if (gate?.closed) return { code: grpc.status.UNAVAILABLE, details: `node ${node.id} is shutting down` };
  if (gate) gate.inFlight++;
}

function release(node: KvNode): void {
  const gate = gates.get(node);
  if (gate) gate.inFlight--;
}

/** The counter of a served method's calls (looked up once, when the handler is built). */
function counted(node: KvNode, name: string): MethodMetrics | undefined {
  return gates.get(node)?.metrics?.method(name, CLIENT_METHODS.has(name));
}

/**
 * Runs an async handler as one counted call (admitted, timed, released):
 * its answer, or the status it failed with. A unary call and a frame of
 * ForwardStream are both served through this.
 */
function attempt<Req, Res>(
  node: KvNode,
  name: string,
  fn: (req: Req, peer: string, caller?: string) => Promise<Res> | Res,
): (req: Req, peer?: string, caller?: string) => Promise<Outcome<Res>> {
  const m = counted(node, name);
  return async (req, peer = "", caller) => {
    const t0 = performance.now();
    const done = (code: number) => m?.done(code, (performance.now() - t0) / 1000);
    const refused = admit(node);
    if (refused) return done(refused.code), { ok: false, ...refused };
    try {
      const res = await fn(req, peer, caller);
      done(0);
      return { ok: true, res };
    } catch (err) {
      const status = toStatus(node, name, err);
      done(status.code);
      return { ok: false, ...status };
    } finally {
      release(node);
    }
  };
}

/**
 * Wraps an async handler: its answer or its error, as a gRPC callback.
 * `routed`: a KeyValueStore call, whose routing client may be told of a
 * newer ring (ring_epoch.ts).
 */
function unary<Req, Res>(
  node: KvNode,
  name: string,
  fn: (req: Req, peer: string, caller?: string) => Promise<Res> | Res,
  routed = false,
): Unary<Req, Res> {
  const run = attempt(node, name, fn);
  return (call, cb) => {
    const leave = enterConnection(node, call, name);
    if (typeof leave !== "function") return cb(leave);
    // The caller node_guard.ts proved (undefined without a secret or TLS).
    run(call.request, call.getPeer(), verifiedCaller(call)).then((o) => {
      leave();
      o.ok ? cb(null, o.res, routed ? epochTrailer(call.metadata, node.membership.epoch) : undefined) : cb(o);
    });
  };
}

/** Counts a call against its connection's cap: how to end it, or the refusal. */
function enterConnection(node: KvNode, call: { getPeer(): string }, name: string) {
  return gates.get(node)?.connections.enter(call.getPeer(), name) ?? (() => {});
}

/** Writes an async source of record chunks to a server stream, with flow control. */
function streaming<Req>(
  node: KvNode,
  name: string,
  fn: (req: Req) => AsyncIterable<KvRecord[]>,
): Streaming<Req, unknown> {
  const m = counted(node, name);
  return async (call) => {
    const t0 = performance.now();
    const done = (code: number) => m?.done(code, (performance.now() - t0) / 1000);
    const leave = enterConnection(node, call, name);
    if (typeof leave !== "function") return done(leave.code), failStream(call, leave);
    const refused = admit(node);
    if (refused) return leave(), done(refused.code), failStream(call, refused);
    try {
      for await (const chunk of fn(call.request)) {
        if (call.cancelled) return done(grpc.status.CANCELLED);
        if (!call.write({ records: chunk.map(recordToPair) })) {
          await new Promise((resolve) => call.once("drain", resolve));
        }
      }
      call.end();
      done(grpc.status.OK);
    } catch (err) {
      const status = toStatus(node, name, err);
      done(status.code);
      failStream(call, status);
    } finally {
      release(node);
      leave();
    }
  };
}

function toStatus(node: KvNode, name: string, err: unknown): { code: number; details: string } {
  if (err instanceof KvError) return { code: err.code as number, details: err.message };
  node.log.error(`${name} failed unexpectedly`, { error: errorMessage(err) });
  return { code: grpc.status.INTERNAL, details: `${name} failed: ${errorMessage(err)}`.toWellFormed() };
}

/** A failed item of a unary call becomes the call's status. */
function throwIfFailed(r: { code: number; message: string }): void {
  if (r.code !== Code.OK && r.code !== Code.FAILED_PRECONDITION) {
    throw new KvError(r.code as StatusCode, r.message);
  }
}

class Handlers {
  constructor(private readonly node: KvNode) {}

  keyValueStore(): grpc.UntypedServiceImplementation {
    const n = this.node;
    return {
      Put: unary(n, "Put", async (req: PutRequestMsg) => {
        if (hasCondition(req.condition)) return await conditionalPut(n, { ...req, condition: req.condition });
        const [r] = await this.#write([this.#checkedPut(req)], false);
        throwIfFailed(r);
        return writeToPutResponse(r);
      }, true),
      Get: unary(n, "Get", async (req: GetRequestMsg) => {
        checkKey(req.key, n.config.limits);
        const [r] = await this.#read([req.key], req.read_from_replica, false);
        throwIfFailed(r);
        return readToGetResponse(r);
      }, true),
      Delete: unary(n, "Delete", async (req: DeleteRequestMsg) => {
        if (hasCondition(req.condition)) {
          return await conditionalDelete(n, { ...req, condition: req.condition });
        }
        checkKey(req.key, n.config.limits);
        const [r] = await this.#write([deleteToWrite(req.key)], false);
        throwIfFailed(r);
        return writeToDeleteResponse(r);
      }, true),
      ListKeys: unary(
        n,
        "ListKeys",
        (req: ListKeysRequestMsg, peer) => listKeys(n, pageRequestFromMsg(req, peer)).then(keyPageToMsg),
      ),
      MultiPut: unary(n, "MultiPut", (req: MultiPutRequestMsg) => this.#multiPut(req, false), true),
      MultiGet: unary(n, "MultiGet", (req: MultiGetRequestMsg) => this.#multiGet(req, false), true),
      MultiDelete: unary(
        n,
        "MultiDelete",
        (req: MultiDeleteRequestMsg) => this.#multiDelete(req, false),
        true,
      ),
      Increment: unary(n, "Increment", (req: IncrementRequestMsg) => increment(n, req), true),
    };
  }

  nodeService(): grpc.UntypedServiceImplementation {
    const n = this.node;
    // A coordinator whose storage is down refuses forwards as a whole, so the
    // forwarding node treats it as unreachable and fails over to the next one.
    const healthy = <Req, Res>(fn: (req: Req) => Promise<Res>) => (req: Req) => {
      if (!n.storage.healthy()) throw new KvError(Code.UNAVAILABLE, `node ${n.id}: storage unavailable`);
      return fn(req);
    };
    // Served both as unary calls and as frames of ForwardStream.
    // A coordinator whose clock is off refuses forwarded writes likewise (node.ts says why).
    const coordinating = <Req, Res>(fn: (req: Req) => Promise<Res>) =>
      healthy((req: Req) => {
        n.checkCanCoordinateWrites();
        return fn(req);
      });
    const forwardPut = coordinating((req: MultiPutRequestMsg) => this.#multiPut(req, true));
    const forwardGet = healthy((req: MultiGetRequestMsg) => this.#multiGet(req, true));
    const forwardDelete = coordinating((req: MultiDeleteRequestMsg) => this.#multiDelete(req, true));
    const paxos = paxosHandlers(n);
    const replicate = (req: ReplicateBatchRequestMsg) =>
      replicateBatch(n, replicaPushFromMsg(req)).then((a) => replicaAnswerToMsg(a, n.id));
    return {
      Heartbeat: unary(n, "Heartbeat", (req: HeartbeatRequestMsg) => this.#heartbeat(req)),
      ForwardPut: unary(
        n,
        "ForwardPut",
        coordinating(async (req: ForwardPutRequestMsg) => {
          const [r] = await this.#write([this.#checkedPut(req)], true);
          return forwardWriteResponse(r);
        }),
      ),
      ForwardGet: unary(
        n,
        "ForwardGet",
        healthy(async (req: ForwardGetRequestMsg) => {
          checkKey(req.key, n.config.limits);
          const [r] = await this.#read([req.key], false, true);
          return { ...readToGetResponse(r), handler_node_id: r.nodeId };
        }),
      ),
      ForwardDelete: unary(
        n,
        "ForwardDelete",
        coordinating(async (req: ForwardDeleteRequestMsg) => {
          checkKey(req.key, n.config.limits);
          const [r] = await this.#write([deleteToWrite(req.key)], true);
          return forwardWriteResponse(r);
        }),
      ),
      Replicate: unary(
        n,
        "Replicate",
        (req: ReplicateRequestMsg) =>
          replicateOne(n, replicaPushFromMsg(req)).then((a) => replicaAnswerToMsg(a, n.id)),
      ),
      ReplicateBatch: unary(n, "ReplicateBatch", replicate),
      GetSnapshot: unary(
        n,
        "GetSnapshot",
        (req: SnapshotRequestMsg, peer) => snapshot(n, pageRequestFromMsg(req, peer)).then(snapshotPageToMsg),
      ),
      JoinCluster: unary(
        n,
        "JoinCluster",
        (req: JoinRequestMsg) => joinCluster(n, joinerFromMsg(req)).then(joinAnswerToMsg),
      ),
      ChangeMembership: unary(
        n,
        "ChangeMembership",
        (req: MembershipChangeMsg) =>
          changeMembership(n, changeRequestFromMsg(req)).then(changeResponseToMsg),
      ),
      PushMembership: unary(n, "PushMembership", async (req: MemberListMsg) => ({
        epoch: await pushMembership(n, memberListFromMsg(req)),
        receiver_id: n.id,
      })),
      GetMembership: unary(
        n,
        "GetMembership",
        (req: MembershipRequestMsg) => membershipViewToMsg(membershipView(n, req.vouch_epoch)),
      ),
      PrepareMembership: unary(
        n,
        "PrepareMembership",
        (req: MembershipPrepareMsg, _peer, caller) =>
          prepareMembership(n, voteRequestFromMsg(req), caller).then(voteToMsg),
      ),
      AcceptMembership: unary(
        n,
        "AcceptMembership",
        (req: MembershipAcceptMsg, _peer, caller) =>
          acceptMembership(n, voteRequestFromMsg(req), caller).then(voteToMsg),
      ),
      PaxosPrepare: unary(n, "PaxosPrepare", healthy(paxos.prepare)),
      PaxosAccept: unary(n, "PaxosAccept", healthy(paxos.accept)),
      PaxosCommit: unary(n, "PaxosCommit", healthy(paxos.commit)),
      ForwardConditional: unary(n, "ForwardConditional", healthy(paxos.forward)),
      ForwardMultiPut: unary(n, "ForwardMultiPut", forwardPut),
      ForwardMultiGet: unary(n, "ForwardMultiGet", forwardGet),
      ForwardMultiDelete: unary(n, "ForwardMultiDelete", forwardDelete),
      ReadRecords: unary(n, "ReadRecords", async (req: { keys: string[] }) => {
        checkBatch(req.keys.length, n.config.limits);
        checkDistinct(req.keys);
        const budget = new AnswerBudget(n.config.limits.maxMessageBytes, "ReadRecords");
        const records = await readBounded(n.storage, req.keys, budget);
        return { records: records.filter((r) => r !== undefined).map(recordToPair) };
      }),
      StreamRecords: streaming(
        n,
        "StreamRecords",
        (req: StreamRecordsRequestMsg) => streamRecordsTo(n, req.requesting_node_id, recordPullFromMsg(req)),
      ),
      GetDigests: unary(n, "GetDigests", async (req: DigestRequestMsg) => ({
        digests: await digestsFor(n, req.requesting_node_id, req.bucket_bits),
        provider_node_id: n.id,
      })),
      StreamBuckets: streaming(
        n,
        "StreamBuckets",
        (req: BucketRequestMsg) => bucketsFor(n, req.requesting_node_id, bucketPullFromMsg(req)),
      ),
      // Each frame is served and counted as the ForwardMulti* or ReplicateBatch call it replaces.
      ForwardStream: forwardStreamHandler({
        run: {
          put: attempt(n, "ForwardMultiPut", forwardPut),
          get: attempt(n, "ForwardMultiGet", forwardGet),
          del: attempt(n, "ForwardMultiDelete", forwardDelete),
          repl: attempt(n, "ReplicateBatch", replicate),
          prepare: attempt(n, "PaxosPrepare", healthy(paxos.prepare)),
          accept: attempt(n, "PaxosAccept", healthy(paxos.accept)),
          commit: attempt(n, "PaxosCommit", healthy(paxos.commit)),
        },
        closed: () => gates.get(n)?.closed ?? false,
        onDrain: (stop) => {
          const streams = gates.get(n)?.streams;
          streams?.add(stop);
          return () => streams?.delete(stop);
        },
      }),
    };
  }

  #checkedPut(req: PutRequestMsg): WriteRequest {
    const limits = this.node.config.limits;
    checkKey(req.key, limits);
    checkValue(req.value, limits);
    checkTimestamp(req.timestamp, limits);
    checkExpiry(req.ttl_ms ?? 0, req.expires_at_ms ?? 0);
    return putToWrite(req);
  }

  async #write(writes: WriteRequest[], forwarded: boolean): Promise<WriteResult[]> {
    const results = await this.node.coordinator.write(writes, forwarded);
    if (this.node.log.enabled("debug")) {
      for (const r of results) {
        this.node.log.debug(writes[0].tombstone ? "DELETE" : "PUT", {
          key: r.key,
          ok: r.ok,
          via: forwarded ? "forwarded" : "client",
          coordinator: r.nodeId,
          replicas: r.replicas,
          ts: r.timestamp,
          error: r.ok ? undefined : r.message,
        });
      }
    }
    return results;
  }

  async #read(
    keys: string[],
    fromReplica: boolean,
    forwarded: boolean,
    budget?: AnswerBudget,
  ): Promise<ReadResult[]> {
    const c = this.node.coordinator;
    const results = fromReplica ? await c.readLocal(keys, budget) : await c.read(keys, forwarded, budget);
    if (this.node.log.enabled("debug")) {
      for (const r of results) {
        this.node.log.debug("GET", {
          key: r.key,
          found: r.found,
          via: fromReplica ? "local copy" : forwarded ? "forwarded" : "client",
          answered_by: r.nodeId,
          error: r.code === Code.OK ? undefined : r.message,
        });
      }
    }
    return results;
  }

  /** Validates each item; bad items answer on their own, good ones go through. */
  async #multiPut(req: MultiPutRequestMsg, forwarded: boolean) {
    checkBatch(req.items.length, this.node.config.limits);
    checkDistinct(req.items.map((item) => item.key));
    const results = await this.#eachChecked(
      req.items,
      (item) => this.#checkedPut(item),
      (good) => this.#write(good, forwarded),
      (key, err) => failedWrite(key, err.code, err.message, this.node.id),
    );
    return { results: results.map(writeToPutResponse) };
  }

  async #multiDelete(req: MultiDeleteRequestMsg, forwarded: boolean) {
    checkBatch(req.keys.length, this.node.config.limits);
    checkDistinct(req.keys);
    const results = await this.#eachChecked(
      req.keys.map((key) => ({ key })),
      (item) => (checkKey(item.key, this.node.config.limits), deleteToWrite(item.key)),
      (good) => this.#write(good, forwarded),
      (key, err) => failedWrite(key, err.code, err.message, this.node.id),
    );
    return { results: results.map(writeToDeleteResponse) };
  }

  /** Refused before it is built when its values would not fit in one message (answer_budget.ts). */
  async #multiGet(req: MultiGetRequestMsg, forwarded: boolean) {
    checkBatch(req.keys.length, this.node.config.limits);
    checkDistinct(req.keys);
    const budget = new AnswerBudget(this.node.config.limits.maxMessageBytes, "MultiGet");
    const results = await this.#eachChecked(
      req.keys.map((key) => ({ key })),
      (item) => (checkKey(item.key, this.node.config.limits), item.key),
      (good) => this.#read(good, req.read_from_replica, forwarded, budget),
      (key, err) => failedRead(key, err.code, err.message, this.node.id),
    );
    // A part refused for size (here or on its owner) refuses the whole answer.
    const tooLarge = results.find((r) => r.code === Code.RESOURCE_EXHAUSTED);
    if (tooLarge) throw new KvError(Code.RESOURCE_EXHAUSTED, tooLarge.message);
    return { results: results.map(readToGetResponse) };
  }

  /** Runs the items that pass `check` through `run`, in order, failing the others alone. */
  async #eachChecked<I extends { key: string }, C, R>(
    items: I[],
    check: (item: I) => C,
    run: (checked: C[]) => Promise<R[]>,
    failed: (key: string, err: KvError) => R,
  ): Promise<R[]> {
    const results = new Array<R>(items.length);
    const good: C[] = [];
    const goodIdx: number[] = [];
    items.forEach((item, i) => {
      try {
        good.push(check(item));
        goodIdx.push(i);
      } catch (err) {
        if (!(err instanceof KvError)) throw err;
        results[i] = failed(item.key, err);
      }
    });
    if (good.length > 0) (await run(good)).forEach((r, j) => results[goodIdx[j]] = r);
    return results;
  }

  #heartbeat(req: HeartbeatRequestMsg): HeartbeatResponseMsg {
    const reply = this.node.onHeartbeat({
      from: req.node_id,
      status: req.status === "JOINING" ? "JOINING" : "ACTIVE",
      keysCount: req.keys_count,
      hintsPending: req.hints_pending,
      epoch: req.membership_epoch,
      host: req.host,
      port: req.port,
    });
    return {
      acknowledged: true,
      receiver_id: this.node.id,
      timestamp: reply.timeMs,
      status: reply.status,
      keys_count: reply.keysCount,
      hints_pending: reply.hintsPending,
      membership_epoch: reply.epoch,
      lwt_high_water: reply.lwtHighWater,
    };
  }
}

function forwardWriteResponse(r: WriteResult) {
  return {
    success: r.ok,
    message: r.message,
    handler_node_id: r.nodeId,
    replicas_count: r.replicas,
    error_code: r.code,
    timestamp: r.timestamp,
  };
}
