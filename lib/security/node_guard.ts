/**
 * Who may call NodeService: the gRPC edge of node authentication.
 *
 * With a cluster secret, every NodeService call must carry a valid token
 * (token.ts) from a configured node; with TLS, the caller must also present
 * a certificate signed by the cluster's CA whose common name is a
 * configured node (so a client certificate from the same CA is not enough).
 * A refused call is answered UNAUTHENTICATED before its handler runs, so
 * nothing is applied, and is logged once per source address and interval.
 * GetMembership stays open: clients read the membership to route, and it
 * changes nothing. A long-lived stream (ForwardStream) is checked when it
 * opens, and its caller's membership again every second while it lasts.
 * Outgoing calls get their token from an interceptor.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";
import { failStream } from "../grpc/call.ts";
import { AUTH_METADATA_KEY, type TokenSigner, TokenVerifier } from "./token.ts";

/** NodeService methods that open a stream for as long as the peers are up: their caller is checked again. */
const LONG_LIVED = new Set(["ForwardStream"]);

/** NodeService methods any client may call. */
const OPEN_METHODS = new Set(["GetMembership"]);

/**
 * Methods a caller that is not a member may make, with a valid token: a node
 * asking to join, or an operator's remove-node (the secret is what proves
 * they may).
 */
const JOIN_METHODS = new Set(["JoinCluster", "ChangeMembership"]);

/** Options of {@link guardNodeService}. */
export interface NodeGuardOptions {
  /** The cluster secret; calls must carry a token made with it. */
  secret?: Uint8Array;
  /** Callers must present a CA-signed certificate naming a node (TLS). */
  requireNodeCert: boolean;
  /** Ids of the cluster's nodes (a function when membership changes at run time). */
  nodeIds: readonly string[] | (() => readonly string[]);
  /** How far a token's time may be from this node's clock. */
  windowMs: number;
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

/** The NodeService implementation with every non-open method behind the checks. */
export function guardNodeService(
  definition: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  o: NodeGuardOptions,
): grpc.UntypedServiceImplementation {
  if (!o.secret && !o.requireNodeCert) return impl;
  const now = o.now ?? Date.now;
  const throttle = new Throttle(o.warnIntervalMs ?? 60_000, now);
  const verifier = o.secret && new TokenVerifier(o.secret, o.windowMs);
  const guarded: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    const path = definition[name].path;
    const streaming = definition[name].responseStream;
    const inner = handler as unknown as AnyHandler;
    guarded[name] =
      (OPEN_METHODS.has(name) ? handler : ((call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => {
        const verdict = refusal(path, call, o, verifier, now(), JOIN_METHODS.has(name));
        if (typeof verdict !== "string") {
          if (LONG_LIVED.has(name)) endWhenRemoved(name, call as LongCall, verdict.callers, o);
          return inner(call, cb);
        }
        const reason = verdict;
        warn(o.log, throttle, call, name, reason);
        const status = { code: grpc.status.UNAUTHENTICATED, details: `${name} refused: ${reason}` };
        if (streaming) {
          failStream(call as grpc.ServerWritableStream<unknown, unknown>, status);
        } else cb!(status);
      })) as grpc.UntypedHandleCall;
  }
  return guarded;
}

/** Why a call may not proceed, or the node ids it proved it comes from (certificate, token). */
function refusal(
  path: string,
  call: AnyCall,
  o: NodeGuardOptions,
  verifier: TokenVerifier | undefined,
  nowMs: number,
  anyNode: boolean,
): string | { callers: string[] } {
  const ids = memberIds(o);
  const known = (id: string) => anyNode || ids.includes(id);
  const callers: string[] = [];
  if (o.requireNodeCert) {
    const cert = call.getAuthContext().sslPeerCertificate;
    if (!cert) return "no client certificate signed by the cluster's CA";
    const cn = cert.subject?.CN;
    if (typeof cn !== "string" || !known(cn)) {
      return `certificate "${cn}" does not name a node of this cluster`;
    }
    callers.push(cn);
  }
  if (verifier) {
    const token = call.metadata.get(AUTH_METADATA_KEY)[0];
    const verdict = verifier.verify(path, typeof token === "string" ? token : undefined, nowMs);
    if (!verdict.ok) return verdict.reason;
    if (!known(verdict.nodeId)) return `"${verdict.nodeId}" is not a node of this cluster`;
    callers.push(verdict.nodeId);
  }
  return { callers };
}

function memberIds(o: NodeGuardOptions): readonly string[] {
  return typeof o.nodeIds === "function" ? o.nodeIds() : o.nodeIds;
}

/**
 * A long-lived stream is checked once, when it opens; a unary call is
 * checked each time. So that a node removed from the cluster cannot keep
 * using a stream it opened while a member, the membership of its caller is
 * checked again every `recheckMs`, and the stream ended UNAUTHENTICATED
 * once the caller is no longer a node of the cluster.
 */
function endWhenRemoved(name: string, call: LongCall, callers: string[], o: NodeGuardOptions): void {
  if (callers.length === 0) return;
  const timer = setInterval(() => {
    const ids = memberIds(o);
    const gone = callers.find((id) => !ids.includes(id));
    if (gone === undefined) return;
    stop();
    failStream(call, {
      code: grpc.status.UNAUTHENTICATED,
      details: `${name} ended: "${gone}" is no longer a node of this cluster`,
    });
  }, o.recheckMs ?? 1000);
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

/** A client interceptor that adds this node's token to every call. */
export function signingInterceptor(signer: TokenSigner): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTH_METADATA_KEY, signer.token(options.method_definition.path));
        next(metadata, listener);
      },
    });
}
