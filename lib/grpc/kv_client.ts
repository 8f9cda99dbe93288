/**
 * The client library: KeyValueStore calls, routed to each key's owner.
 *
 * A routing client asks any node for the membership once, builds the same
 * ring the nodes use and sends each request straight to the key's first
 * live node, which saves the forwarding hop. It sends the epoch of that
 * membership with each call; a node that knows a newer one says so in a
 * trailer and the client fetches it from that node (ring_epoch.ts), so it
 * follows joins and removals. When a node does not answer,
 * it is avoided for a moment, the membership is refreshed, and the request
 * goes to the next node, so a dead node costs a retry, not an error. With
 * routing off everything goes to the first address (the node forwards), or
 * with `spread` round-robin over all the given addresses, as a plain client
 * behind a load balancer would.
 * Batches are split by owner and the parts sent in parallel.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { HashRing } from "../ring.ts";
import { signingInterceptor } from "../security/call_signing.ts";
import { clientTokenInterceptor } from "../security/client_auth.ts";
import { TokenSigner } from "../security/token.ts";
import { operatorIdentity } from "../security/operator.ts";
import type { MemberState } from "../membership/member_list.ts";
import { sleep } from "../async.ts";
import { Code, KvError } from "../errors.ts";
import type { ReadResult, WriteResult } from "../transport.ts";
import type { KeyPage } from "../listing.ts";
import { answeredByServer, channelOptions, isUnreachable, statusError, unary } from "./call.ts";
import { channelCredentials, type ClientTls } from "../security/tls.ts";
import { announcedEpoch, epochHeader } from "./ring_epoch.ts";
import type { Condition } from "../lwt/ops.ts";
import type { Version } from "../record.ts";
import { type ConditionalAnswerMsg, conditionToMsg, type IncrementResponseMsg } from "./lwt_messages.ts";
import { type KvstorePackage, kvstorePackage, loadKvstorePackage } from "./proto.ts";
import {
  type DeleteResponseMsg,
  type GetResponseMsg,
  getResponseToRead,
  keyPageFromMsg,
  type ListKeysResponseMsg,
  type MembershipChangeResponseMsg,
  type MembershipResponseMsg,
  memberStateFromMsg,
  type NodeStatusName,
  type PutRequestMsg,
  type PutResponseMsg,
  responseToWrite,
} from "./messages.ts";

/** Options of {@link KvClient}. */
export interface ClientOptions {
  /** Send each key to its owner (default) or everything to the first address. */
  route?: boolean;
  /** Without routing: round-robin over the addresses instead of the first one. */
  spread?: boolean;
  /** Deadline of each call. */
  timeoutMs?: number;
  /** Proto text to speak (tests use variants); the embedded one by default. */
  protoText?: string;
  maxMessageBytes?: number;
  /** Speak TLS, verifying nodes against `tls.ca` (and presenting `cert` when given). */
  tls?: ClientTls;
  /** The cluster secret: NodeService calls (remove-node) are signed with it, as an operator's. */
  nodeSecret?: Uint8Array;
  /** The client token (security.client_token_file), sent with every KeyValueStore call. */
  clientToken?: string;
}

/** A member of the cluster as a node reports it. */
export interface Member {
  id: string;
  address: string;
  status: NodeStatusName;
  lastHeartbeatUnix: number;
  keysCount: number;
  recoveredRecords: number;
  /** NORMAL, or JOINING / LEAVING while its ranges move. */
  memberState: MemberState;
  /** Its clock minus the responder's (ms) and the bound on that; undefined when not measured. */
  clockOffset?: { offsetMs: number; uncertaintyMs: number };
  /** As the member says of itself: why it does not serve ("" while it does). */
  statusReason: string;
}

/** The cluster as one node sees it. */
export interface Membership {
  responder: string;
  clusterName: string;
  virtualNodes: number;
  replicationFactor: number;
  members: Member[];
  /** Epoch of the responder's member list (0: the cluster file's). */
  epoch: number;
  claimant: string;
  /** Members that have streamed their new ranges in the change under way. */
  streamed: string[];
}

/** The answer to a proposed membership change. */
export interface ChangeAnswer {
  accepted: boolean;
  /** Another change is under way (or a member is not ready): ask again later. */
  retry: boolean;
  message: string;
  epoch: number;
}

/** One page of a node's keys (defined beside ListKeys' logic, in listing.ts). */
export type { KeyPage };

/** A value as callers give it: bytes, or text stored as UTF-8. */
export type ValueInput = Uint8Array | string;

/** One item of a batch put. */
export interface PutItem extends PutOptions {
  key: string;
  value: ValueInput;
}

/** Options of a put: a last-write-wins timestamp, and a ttl or an absolute expiry (ms since the epoch). */
export interface PutOptions {
  timestamp?: number;
  ttlMs?: number;
  expiresAtMs?: number;
}

/** How long a node that did not answer is skipped by routing. */
const AVOID_MS = 1000;
/** Pause before retry number n is n times this. */
const RETRY_PAUSE_MS = 50;

/** A client of the store. */
export class KvClient {
  readonly #pkg: KvstorePackage;
  readonly #stubs = new Map<string, { kv: grpc.Client; node: grpc.Client }>();
  readonly #avoidUntil = new Map<string, number>();
  readonly #timeoutMs: number;
  readonly #route: boolean;
  #membership?: Membership;
  #ring?: HashRing;
  #addressOf = new Map<string, string>();
  /** The id of the node at each address, for the operator's tokens. */
  readonly #nodeIdAt = new Map<string, string>();
  #statusOf = new Map<string, NodeStatusName>();
  #refreshing?: Promise<void>;
  #turn = 0;

  private constructor(private readonly addresses: string[], private readonly options: ClientOptions) {
    if (addresses.length === 0) throw new KvError(Code.INVALID_ARGUMENT, "no node address given");
    this.#pkg = options.protoText ? loadKvstorePackage(options.protoText) : kvstorePackage();
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#route = options.route ?? true;
  }

  /** A client of the nodes at these `host:port` addresses; routing clients fetch the membership first. */
  static async connect(addresses: string[], options: ClientOptions = {}): Promise<KvClient> {
    const client = new KvClient(addresses, options);
    try {
      if (client.#route) await client.refresh();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Stores a value; throws KvError when the cluster cannot. */
  async put(key: string, value: ValueInput, opts: PutOptions = {}): Promise<WriteResult> {
    const res = await this.#call<PutResponseMsg>(key, "Put", putMsg({ key, value, ...opts }));
    return responseToWrite(key, res);
  }

  /** Reads a key; `fromReplica` reads the contacted node's own copy. */
  async get(key: string, opts: { fromReplica?: boolean; address?: string } = {}): Promise<ReadResult> {
    const req = { key, read_from_replica: opts.fromReplica ?? false };
    const res = opts.address
      ? await this.#callAt<GetResponseMsg>(opts.address, "kv", "Get", req)
      : await this.#call<GetResponseMsg>(key, "Get", req);
    return getResponseToRead(key, res);
  }

  /** Deletes a key (on every copy). */
  /**
   * Writes `value` only if `condition` holds (per-key consensus). Sent once:
   * an operation whose answer is lost may have been applied, so it is never
   * resent to another node. `expiry`: a ttl or an absolute expiry (ms since
   * the epoch) for the value written; the key's leader fixes it once.
   */
  async putIf(
    key: string,
    value: ValueInput,
    condition: Condition,
    expiry: { ttlMs?: number; expiresAtMs?: number } = {},
  ): Promise<ConditionalWrite> {
    const req = {
      ...putMsg({ key, value, ...expiry }),
      condition: conditionToMsg(condition),
    };
    return conditionalFromMsg(await this.#callOnce<ConditionalAnswerMsg>(key, "Put", req));
  }

  /** Deletes `key` only if `condition` holds. */
  async deleteIf(key: string, condition: Condition): Promise<ConditionalWrite> {
    const req = { key, condition: conditionToMsg(condition) };
    return conditionalFromMsg(await this.#callOnce<ConditionalAnswerMsg>(key, "Delete", req));
  }

  /** INCRBY (default 1): the new value as a decimal string. Sent once, never resent. */
  async increment(key: string, delta: bigint | number = 1): Promise<Incremented> {
    return incrementedFromMsg(
      await this.#callOnce<IncrementResponseMsg>(key, "Increment", {
        key,
        delta: String(delta),
        float_delta: "",
      }),
    );
  }

  /** INCRBYFLOAT: the new value as Redis prints it. */
  async incrementFloat(key: string, delta: number): Promise<Incremented> {
    return incrementedFromMsg(
      await this.#callOnce<IncrementResponseMsg>(key, "Increment", {
        key,
        delta: "",
        float_delta: String(delta),
      }),
    );
  }

  async delete(key: string): Promise<WriteResult> {
    return responseToWrite(key, await this.#call<DeleteResponseMsg>(key, "Delete", { key }));
  }

  /** Stores many values, each batch part sent to its owner. */
  async multiPut(items: readonly PutItem[]): Promise<WriteResult[]> {
    return await this.#batch(items, (i) => i.key, "MultiPut", (part) => ({
      items: part.map(putMsg),
    }), (i, r: PutResponseMsg) => responseToWrite(i.key, r));
  }

  /** Reads many keys. */
  async multiGet(keys: readonly string[], opts: { fromReplica?: boolean } = {}): Promise<ReadResult[]> {
    return await this.#batch(keys, (k) => k, "MultiGet", (part) => ({
      keys: part,
      read_from_replica: opts.fromReplica ?? false,
    }), (k, r: GetResponseMsg) => getResponseToRead(k, r));
  }

  /** Deletes many keys. */
  async multiDelete(keys: readonly string[]): Promise<WriteResult[]> {
    return await this.#batch(
      keys,
      (k) => k,
      "MultiDelete",
      (part) => ({ keys: part }),
      (k, r: DeleteResponseMsg) => responseToWrite(k, r),
    );
  }

  /** One page of the keys a node holds. */
  async listKeys(address: string, opts: { limit?: number; cursor?: string } = {}): Promise<KeyPage> {
    const res = await this.#callAt<ListKeysResponseMsg>(address, "kv", "ListKeys", {
      limit: opts.limit ?? 0,
      cursor: opts.cursor ?? "",
    });
    return keyPageFromMsg(res);
  }

  /** Every key a node holds, following pages. */
  async listAllKeys(address: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = "";
    do {
      const page = await this.listKeys(address, { cursor });
      keys.push(...page.keys);
      cursor = page.nextCursor;
    } while (cursor !== "");
    return keys;
  }

  /** The membership as the node at `address` (or any node) sees it. */
  async membership(address?: string): Promise<Membership> {
    const tryOrder = address ? [address] : this.#knownAddresses();
    let last: unknown;
    for (const addr of tryOrder) {
      try {
        const res = await this.#callAt<MembershipResponseMsg>(addr, "node", "GetMembership", {
          requesting_node_id: "client",
        });
        return toMembership(res);
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof KvError ? last : new KvError(Code.UNAVAILABLE, "no node answered");
  }

  /**
   * Asks the cluster to remove a node: a live one decommissions (streams its
   * ranges out, then exits), a dead one's ranges are copied from the others.
   * Any node takes the request and forwards it to the claimant.
   */
  async removeNode(id: string): Promise<ChangeAnswer> {
    let last: unknown;
    for (const addr of this.#knownAddresses()) {
      try {
        // The operator's token is made for the node that answers there: learn its id.
        if (!this.#nodeIdAt.has(addr)) this.#nodeIdAt.set(addr, (await this.membership(addr)).responder);
        const res = await this.#callAt<MembershipChangeResponseMsg>(addr, "node", "ChangeMembership", {
          kind: "CHANGE_REMOVE",
          node_id: id,
        });
        return {
          accepted: res.accepted,
          retry: res.retry,
          message: res.message,
          epoch: res.member_list?.epoch ?? 0,
        };
      } catch (err) {
        if (!(err instanceof KvError) || !nodeFailed(err)) throw err;
        last = err;
      }
    }
    throw last instanceof KvError ? last : new KvError(Code.UNAVAILABLE, "no node answered");
  }

  /** Which credential NodeService calls (remove-node) present: operator.ts. */
  get operatorCredential(): string {
    return operatorIdentity(this.options.tls, this.options.nodeSecret !== undefined).credential;
  }

  /** The last membership fetched (routing clients). */
  get lastMembership(): Membership | undefined {
    return this.#membership;
  }

  /** Fetches the membership again (from `from` first, when given) and rebuilds the ring. */
  refresh(from?: string): Promise<void> {
    return this.#refreshing ??= (async () => {
      try {
        const m = from ? await this.membership(from).catch(() => this.membership()) : await this.membership();
        this.#membership = m;
        // Keys route by the ring the nodes read from: a JOINING node serves nothing yet.
        const serving = m.members.filter((n) => n.memberState !== "JOINING");
        this.#ring = new HashRing(serving.map((n) => n.id), m.virtualNodes);
        this.#addressOf = new Map(m.members.map((n) => [n.id, n.address]));
        this.#statusOf = new Map(m.members.map((n) => [n.id, n.status]));
      } finally {
        this.#refreshing = undefined;
      }
    })();
  }

  /**
   * The address a key's request goes to now; `skip`: nodes that refused this
   * request (they are up, and other requests still go to them).
   */
  addressFor(key: string, skip: ReadonlySet<string> = NONE): string {
    if (!this.#route && this.options.spread) return this.#nextAvoidFree(this.addresses);
    if (!this.#route || !this.#ring || !this.#membership) return this.#firstAvoidFree(this.addresses);
    const now = Date.now();
    const usable = (id: string) => {
      const a = this.#addressOf.get(id)!;
      return this.#statusOf.get(id) === "ACTIVE" && (this.#avoidUntil.get(a) ?? 0) <= now && !skip.has(a);
    };
    const id = this.#ring.preferenceList(key, 1, usable)[0];
    if (id) return this.#addressOf.get(id)!;
    const known = this.#knownAddresses();
    return this.#firstAvoidFree(known.filter((a) => !skip.has(a)).concat(known));
  }

  /** Closes the client's channels gracefully (each node gets a GOAWAY); calls after this fail. */
  close(): void {
    for (const { kv, node } of this.#stubs.values()) {
      kv.close();
      node.close();
    }
    this.#stubs.clear();
  }

  #knownAddresses(): string[] {
    return [...new Set([...this.addresses, ...this.#addressOf.values()])];
  }

  /** The next address in turn that is not being avoided. */
  #nextAvoidFree(addresses: string[]): string {
    const n = addresses.length;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const a = addresses[this.#turn++ % n];
      if ((this.#avoidUntil.get(a) ?? 0) <= now) return a;
    }
    return addresses[this.#turn++ % n];
  }

  #firstAvoidFree(addresses: string[]): string {
    const now = Date.now();
    return addresses.find((a) => (this.#avoidUntil.get(a) ?? 0) <= now) ?? addresses[0];
  }

  /** Tries per request: a spreading client tries each address once. */
  #attempts(): number {
    if (this.#route) return Math.max(2, this.#addressOf.size + 1);
    return this.options.spread ? this.addresses.length : 1;
  }

  /** Calls the node a key routes to, failing over while nodes do not answer. */
  async #call<Res>(key: string, method: string, req: unknown): Promise<Res> {
    const attempts = this.#attempts();
    const refused = new Set<string>();
    for (let attempt = 1;; attempt++) {
      const address = this.addressFor(key, refused);
      try {
        return await this.#callAt<Res>(address, "kv", method, req);
      } catch (err) {
        if (!(err instanceof KvError) || !nodeFailed(err)) throw err;
        if (!isRetryable(err, method) || attempt >= attempts) throw this.#avoidNext(address, err);
        await this.#avoid(address, attempt, err, refused);
      }
    }
  }

  /** Calls the node a key routes to, once (conditional operations: see putIf). */
  async #callOnce<Res>(key: string, method: string, req: unknown): Promise<Res> {
    const address = this.addressFor(key);
    try {
      return await this.#callAt<Res>(address, "kv", method, req);
    } catch (err) {
      if (err instanceof KvError && nodeFailed(err)) this.#avoidNext(address, err);
      throw err;
    }
  }

  /**
   * Skips a node that did not answer for the next requests (refreshing the
   * membership) and returns `err`. A node that answered a refusal itself (too
   * few of the key's replicas, outcome unknown) is up and is not skipped:
   * with a replica down its live peers refuse that replica's keys, and
   * skipping them would send every other key's calls to the dead node.
   */
  #avoidNext(address: string, err: KvError): KvError {
    if (err instanceof NodeAnswer) return err;
    this.#avoidUntil.set(address, Date.now() + AVOID_MS);
    this.refresh().catch(() => {});
    return err;
  }

  /**
   * Before the next attempt of a request: skips a node that did not answer
   * for a moment (one that refused goes into `refused`, skipped by this
   * request only) and refreshes the membership; the pause grows with each
   * attempt so a cluster that is briefly unable to serve a key (nodes still
   * JOINING after a start) gets time to settle.
   */
  async #avoid(address: string, attempt: number, err: KvError, refused: Set<string>): Promise<void> {
    if (err instanceof NodeAnswer) refused.add(address);
    else this.#avoidUntil.set(address, Date.now() + AVOID_MS);
    await Promise.all([this.refresh().catch(() => {}), sleep(RETRY_PAUSE_MS * attempt)]);
  }

  async #batch<I, Res, R>(
    items: readonly I[],
    keyOf: (item: I) => string,
    method: string,
    request: (part: I[]) => unknown,
    convert: (item: I, res: Res) => R,
  ): Promise<R[]> {
    const results = new Array<R>(items.length);
    let pending = items.map((_, i) => i);
    const attempts = this.#attempts();
    const refused = new Set<string>();
    for (let attempt = 1; pending.length > 0; attempt++) {
      const groups = new Map<string, number[]>();
      for (const i of pending) {
        const a = this.addressFor(keyOf(items[i]), refused);
        let g = groups.get(a);
        if (!g) groups.set(a, g = []);
        g.push(i);
      }
      const retry: number[] = [];
      await Promise.all([...groups].map(async ([address, idx]) => {
        try {
          const res = await this.#callAt<{ results: Res[] }>(
            address,
            "kv",
            method,
            request(idx.map((i) => items[i])),
          );
          idx.forEach((i, j) => results[i] = convert(items[i], res.results[j]));
        } catch (err) {
          if (!(err instanceof KvError) || !nodeFailed(err)) throw err;
          if (!isRetryable(err, method) || attempt >= attempts) throw this.#avoidNext(address, err);
          retry.push(...idx);
          await this.#avoid(address, attempt, err, refused);
        }
      }));
      pending = retry;
    }
    return results;
  }

  async #callAt<Res>(address: string, service: "kv" | "node", method: string, req: unknown): Promise<Res> {
    const held = service === "kv" && this.#route ? this.#membership?.epoch : undefined;
    try {
      if (held !== undefined) {
        return await unary<Res>(
          this.#stub(address).kv,
          method,
          req,
          this.#timeoutMs,
          epochHeader(held),
          (trailers) => this.#noteEpoch(address, trailers),
        );
      }
      return await unary<Res>(this.#stub(address)[service], method, req, this.#timeoutMs);
    } catch (err) {
      const e = statusError(err);
      if (!isUnreachable(err)) throw new KvError(e.code, e.message);
      // Name the node too, so "the owner is down" reads as which node is down.
      const id = [...this.#addressOf].find(([, a]) => a === address)?.[0];
      const message = `${id ? `${id} (${address})` : address}: ${e.message}`;
      throw answeredByServer(err) ? new NodeAnswer(e.code, message) : new KvError(e.code, message);
    }
  }

  /** A node announced a newer membership epoch than the ring's: fetch it from that node. */
  #noteEpoch(address: string, trailers: grpc.Metadata): void {
    const announced = announcedEpoch(trailers);
    if (announced === undefined || announced <= (this.#membership?.epoch ?? 0)) return;
    this.refresh(address).catch(() => {});
  }

  get #kvInterceptors(): grpc.Interceptor[] {
    const token = this.options.clientToken;
    return token === undefined ? [] : [clientTokenInterceptor(token)];
  }

  #stub(address: string): { kv: grpc.Client; node: grpc.Client } {
    let s = this.#stubs.get(address);
    if (!s) {
      const { credentials: creds, options } = channelCredentials(address, this.options.tls);
      const opts = { ...channelOptions(this.options.maxMessageBytes ?? 64 << 20), ...options };
      const secret = this.options.nodeSecret;
      const as = operatorIdentity(this.options.tls, secret !== undefined).signAs;
      const target = () => this.#nodeIdAt.get(address) ?? "";
      const interceptors = secret && as ? [signingInterceptor(new TokenSigner(secret, as), { target })] : [];
      s = {
        kv: new this.#pkg.KeyValueStore(address, creds, { ...opts, interceptors: this.#kvInterceptors }),
        node: new this.#pkg.NodeService(address, creds, { ...opts, interceptors }),
      };
      this.#stubs.set(address, s);
    }
    return s;
  }
}

/** An UNAVAILABLE or DEADLINE_EXCEEDED status the node itself sent: it is up, it refused. */
class NodeAnswer extends KvError {}

/** No node skipped. */
const NONE: ReadonlySet<string> = new Set();

/** Calls that change data: their outcome is unknown once they time out. */
const WRITES = new Set(["Put", "Delete", "MultiPut", "MultiDelete"]);

/**
 * Whether a failed call may go to the next node. A write that timed out is
 * not sent again: the first request may still arrive (a paused node, a
 * partition that heals) and be versioned then, after the retry was
 * acknowledged and newer writes made, undoing them. The caller gets
 * DEADLINE_EXCEEDED: the write may or may not have been applied.
 */
function isRetryable(err: KvError, method: string): boolean {
  return err.code === Code.UNAVAILABLE || !WRITES.has(method);
}

/** Whether an error says the node did not answer (down, unreachable or too slow). */
function nodeFailed(err: KvError): boolean {
  return err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED;
}

/** A conditional write's answer. */
export interface ConditionalWrite {
  applied: boolean;
  /** The version written, when applied. */
  version?: Version;
  /** When not applied: the key's current live value and version (undefined: absent). */
  current?: { value: Uint8Array; version: Version };
  nodeId: string;
  message: string;
}

/** An increment's answer. */
export interface Incremented {
  value: string;
  version: Version;
  nodeId: string;
}

function conditionalFromMsg(m: ConditionalAnswerMsg): ConditionalWrite {
  const c = m.conditional;
  if (!c) {
    throw new KvError(
      Code.UNIMPLEMENTED,
      "the node does not know conditions (an older version?): it stored the value as a plain write",
    );
  }
  return {
    applied: c.applied,
    version: c.applied ? { timestamp: m.timestamp, versionNode: c.version_node } : undefined,
    current: !c.applied && c.current_found
      ? {
        value: c.current_value,
        version: { timestamp: c.current_timestamp, versionNode: c.current_version_node },
      }
      : undefined,
    nodeId: m.node_id,
    message: m.message,
  };
}

function incrementedFromMsg(m: IncrementResponseMsg): Incremented {
  return {
    value: m.value,
    version: { timestamp: m.timestamp, versionNode: m.version_node },
    nodeId: m.node_id,
  };
}

function bytes(v: ValueInput): Uint8Array {
  return typeof v === "string" ? Buffer.from(v, "utf8") : v;
}

function toMembership(res: MembershipResponseMsg): Membership {
  return {
    responder: res.responder_id,
    clusterName: res.cluster_name,
    virtualNodes: res.virtual_nodes || 150,
    replicationFactor: res.replication_factor,
    epoch: res.member_list?.epoch ?? 0,
    claimant: res.claimant_id,
    streamed: res.streamed ?? [],
    members: res.nodes.map((n) => ({
      id: n.node_id,
      address: `${n.host}:${n.port}`,
      status: n.status,
      lastHeartbeatUnix: n.last_heartbeat,
      keysCount: n.keys_count,
      recoveredRecords: n.recovered_records,
      memberState: memberStateFromMsg(n.member_state),
      clockOffset: n.clock_offset_uncertainty_ms >= 0 && n.node_id !== res.responder_id
        ? { offsetMs: n.clock_offset_ms, uncertaintyMs: n.clock_offset_uncertainty_ms }
        : undefined,
      statusReason: n.status_reason ?? "",
    })),
  };
}

/** A put as its PutRequest message (expiry fields only when given). */
function putMsg(i: PutItem): PutRequestMsg {
  const msg: PutRequestMsg = { key: i.key, value: bytes(i.value), timestamp: i.timestamp ?? 0 };
  if (i.ttlMs) msg.ttl_ms = i.ttlMs;
  if (i.expiresAtMs) msg.expires_at_ms = i.expiresAtMs;
  return msg;
}
