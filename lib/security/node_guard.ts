/**
 * Who may call NodeService: the gRPC edge of node authentication.
 *
 * Each call proves who it comes from: with a cluster secret, a token
 * (token.ts) made for this node, not seen before (replay.ts) and, for
 * control calls, over this very request; with TLS, a certificate signed by
 * the cluster's CA, whose common name is the caller's name (and the
 * token's, when both are on). The caller's name then decides what it may
 * call (roles.ts). A refused call is answered before its handler runs, so
 * nothing is applied, and is logged once per source address and interval;
 * a refusal for the token's time carries this node's clock in the
 * `x-kvstore-receiver-time-ms` trailer. GetMembership stays open: clients
 * read the membership to route, and it changes nothing. A long-lived stream
 * (ForwardStream) is checked when it opens, and its caller again every
 * second while it lasts. Handlers read the proven caller with
 * {@link verifiedCaller}.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";
import { failStream } from "../grpc/call.ts";
import { AUTH_METADATA_KEY, isControlPath, RECEIVER_TIME_KEY, requestDigest, verifyToken } from "./token.ts";
import { ReplayGuard, type ReplayOptions } from "./replay.ts";
import { CallerSet, type MemberIds } from "./callers.ts";
import { allowsServerUse, type Caller, roleRefusal } from "./roles.ts";

/** NodeService methods that open a stream for as long as the peers are up: their caller is checked again. */
const LONG_LIVED = new Set(["ForwardStream"]);

/** NodeService methods any client may call. */
const OPEN_METHODS = new Set(["GetMembership"]);

/** Options of {@link guardNodeService}. */
export interface NodeGuardOptions {
  /** The cluster secret; calls must carry a token made with it. */
  secret?: Uint8Array;
  /** Callers must present a CA-signed certificate naming a node (TLS). */
  requireNodeCert: boolean;
  /** This node's id: tokens must be made for it. */
  self: string;
  /** The cluster's nodes: fixed ids, or the member list held now. */
  nodeIds: readonly string[] | (() => MemberIds);
  /** How long a node removed from the list may still call (security.removed_node_drain_ms). */
  drainMs?: number;
  /** How far a token's time may be from this node's clock (security.token_window_ms). */
  windowMs: number;
  /** Bounds of the replay stores (tests make them small). */
  replay?: Omit<ReplayOptions, "windowMs">;
  log: Logger;
  /** One warning per source per this interval (default 60 s). */
  warnIntervalMs?: number;
  /** How often the caller of a long-lived stream is checked to be a node still (default 1 s). */
  recheckMs?: number;
  now?: () => number;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;
type LongCall = grpc.ServerWritableStream<unknown, unknown>;
type AnyHandler = (call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => void;

/** A refused call's status. */
interface Refusal {
  code: grpc.status;
  reason: string;
  /** This node's clock, when the token was refused for its time. */
  receiverMs?: number;
}

const proven = new WeakMap<object, string>();

/** The caller a guarded NodeService call proved it is (undefined: no secret nor TLS, or an open method). */
export function verifiedCaller(call: object): string | undefined {
  return proven.get(call);
}

/** The checks one node applies, built once. */
interface Gate {
  o: NodeGuardOptions;
  callers: CallerSet;
  replay: ReplayGuard;
  now: () => number;
}

/** The NodeService implementation with every non-open method behind the checks. */
export function guardNodeService(
  definition: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  o: NodeGuardOptions,
): grpc.UntypedServiceImplementation {
  if (!o.secret && !o.requireNodeCert) return impl;
  const now = o.now ?? Date.now;
  const fixed = o.nodeIds;
  const list = typeof fixed === "function"
    ? fixed
    : () => ({ epoch: 0, members: fixed.map((id) => ({ id })) });
  const gate: Gate = {
    o,
    callers: new CallerSet(list, o.drainMs ?? 30_000, now),
    replay: new ReplayGuard({ windowMs: o.windowMs, ...o.replay }),
    now,
  };
  const throttle = new Throttle(o.warnIntervalMs ?? 60_000, now);
  const guarded: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    const def = definition[name];
    const inner = handler as unknown as AnyHandler;
    guarded[name] =
      (OPEN_METHODS.has(name) ? handler : ((call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => {
        const verdict = check(name, def, call, gate);
        if ("id" in verdict) {
          proven.set(call, verdict.id);
          if (LONG_LIVED.has(name)) endWhenRemoved(name, call as LongCall, verdict.id, gate);
          return inner(call, cb);
        }
        warn(o.log, throttle, call, name, verdict.reason);
        const metadata = new grpc.Metadata();
        if (verdict.receiverMs !== undefined) metadata.set(RECEIVER_TIME_KEY, String(verdict.receiverMs));
        const status = { code: verdict.code, details: `${name} refused: ${verdict.reason}`, metadata };
        if (def.responseStream) failStream(call as LongCall, status);
        else cb!(status);
      })) as grpc.UntypedHandleCall;
  }
  return guarded;
}

/** The caller the call proved it is and may act as, or why it is refused. */
function check(
  name: string,
  def: grpc.MethodDefinition<unknown, unknown>,
  call: AnyCall,
  g: Gate,
): Caller | Refusal {
  const who = authenticate(def, call, g);
  if ("reason" in who) return who;
  const role = roleRefusal(name, who, (call as { request?: unknown }).request, g.callers);
  if (role === undefined) return who;
  return {
    code: role.stranger ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED,
    reason: role.reason,
  };
}

/** Who the call's certificate and token say it comes from, once they agree. */
function authenticate(
  def: grpc.MethodDefinition<unknown, unknown>,
  call: AnyCall,
  g: Gate,
): Caller | Refusal {
  const denied = (reason: string): Refusal => ({ code: grpc.status.UNAUTHENTICATED, reason });
  let cn: string | undefined;
  let nodeCert: boolean | undefined;
  if (g.o.requireNodeCert) {
    const cert = call.getAuthContext().sslPeerCertificate;
    if (!cert) return denied("no client certificate signed by the cluster's CA");
    const name = cert.subject?.CN;
    if (typeof name !== "string") return denied("the certificate names no one (one common name)");
    cn = name;
    nodeCert = cert.raw ? allowsServerUse(cert.raw) : undefined;
  }
  if (!g.o.secret) return { id: cn!, bySecret: false, nodeCert };
  const nowMs = g.now();
  const token = call.metadata.get(AUTH_METADATA_KEY)[0];
  const control = isControlPath(def.path);
  const digest = control
    ? requestDigest(def.requestSerialize((call as { request?: unknown }).request))
    : undefined;
  const verdict = verifyToken(g.o.secret, def.path, typeof token === "string" ? token : undefined, {
    nowMs,
    windowMs: g.o.windowMs,
    self: g.o.self,
    digest,
  });
  if (!verdict.ok) return { ...denied(verdict.reason), receiverMs: verdict.time ? nowMs : undefined };
  const id = verdict.claims.nodeId;
  if (cn !== undefined && id !== cn) {
    const stranger = g.callers.has(cn) ? "" : ` certificate "${cn}" does not name a node of this cluster;`;
    return denied(`${stranger} the token names "${id}" but the certificate "${cn}"`.trim());
  }
  const replayed = g.replay.check(verdict.claims, nowMs);
  if (replayed) {
    const code = replayed.full ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.UNAUTHENTICATED;
    return { code, reason: replayed.reason };
  }
  return { id, bySecret: true, nodeCert };
}

/**
 * A long-lived stream is checked once, when it opens; a unary call is
 * checked each time. So that a node removed from the cluster cannot keep
 * using a stream it opened while a member, its caller is checked again
 * every `recheckMs`, and the stream ended UNAUTHENTICATED once the caller
 * may no longer call (removed, and its drain period over).
 */
function endWhenRemoved(name: string, call: LongCall, caller: string, g: Gate): void {
  const timer = setInterval(() => {
    if (g.callers.has(caller)) return;
    stop();
    failStream(call, {
      code: grpc.status.UNAUTHENTICATED,
      details: `${name} ended: "${caller}" is no longer a node of this cluster`,
    });
  }, g.o.recheckMs ?? 1000);
  const stop = () => clearInterval(timer);
  for (const event of ["finish", "cancelled", "error", "close"]) call.once(event, stop);
}

function warn(log: Logger, throttle: Throttle, call: AnyCall, method: string, reason: string): void {
  const source = sourceHost(call.getPeer());
  const held = throttle.take(source);
  if (held === undefined) return;
  log.warn("refused an unauthenticated NodeService call", {
    source,
    method,
    reason,
    earlier_refusals_not_logged: held,
  });
}

/** The address part of a gRPC peer string ("ipv4:127.0.0.1:5000" → "127.0.0.1"). */
function sourceHost(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, "");
  const m = /^\[?(.*?)\]?:\d+$/.exec(bare);
  return m ? m[1] : bare;
}
