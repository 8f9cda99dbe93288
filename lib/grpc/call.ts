/**
 * Promise-shaped gRPC calls with deadlines, and status-error conversion.
 *
 * grpc-js clients expose methods by name at run time; this is the one place
 * that looks them up, so the rest of the code calls typed functions.
 */
import * as grpc from "@grpc/grpc-js";
import { Code, errorMessage, KvError, PeerUnavailableError, type StatusCode } from "../errors.ts";

type UnaryMethod = (
  req: unknown,
  meta: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

type StreamMethod = (
  req: unknown,
  meta: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<
  unknown
>;

/**
 * Calls a unary method with a deadline; rejects with the gRPC ServiceError.
 * `metadata` is sent with the request; `onTrailers` sees the trailers of a
 * call that ended (before the caller resumes).
 */
export function unary<Res>(
  client: grpc.Client,
  method: string,
  req: unknown,
  timeoutMs: number,
  metadata?: grpc.Metadata,
  onTrailers?: (trailers: grpc.Metadata) => void,
): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  return new Promise((resolve, reject) => {
    const call = fn.call(
      client,
      req,
      metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        if (err) reject(err);
        else resolve(res as Res);
      },
    );
    if (onTrailers) call.on("status", (s: grpc.StatusObject) => onTrailers(s.metadata));
  });
}

/**
 * Calls a server-streaming method; each message is yielded as it arrives.
 * An abort of `signal` cancels the call (it then fails with CANCELLED): a
 * call queued on a channel that never connects otherwise waits out its deadline.
 */
export function serverStream<Res>(
  client: grpc.Client,
  method: string,
  req: unknown,
  timeoutMs: number,
  signal?: AbortSignal,
): AsyncIterable<Res> {
  const fn = (client as unknown as Record<string, StreamMethod>)[method];
  const call = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs });
  if (signal?.aborted) call.cancel();
  else signal?.addEventListener("abort", () => call.cancel(), { once: true });
  return call as unknown as AsyncIterable<Res>;
}

/**
 * A connection the peer closed under a call in flight (its process died).
 * grpc-js maps only ECONNRESET to UNAVAILABLE; under Deno the same loss can
 * surface as INTERNAL "...internal client error: This socket has been ended
 * by the other party" (EPIPE), which is just as much an unreachable node.
 */
const DROPPED_CONNECTION =
  /internal client error: .*(ended by the other party|EPIPE|ECONNRESET|socket hang up)/i;

/** The error's status code, with a dropped connection counted as UNAVAILABLE. */
function codeOf(err: unknown): number | undefined {
  const se = err as grpc.ServiceError;
  if (se?.code === grpc.status.INTERNAL && DROPPED_CONNECTION.test(se.details ?? "")) {
    return grpc.status.UNAVAILABLE;
  }
  return se?.code;
}

/** Whether a gRPC error means the node could not be reached or did not answer in time. */
export function isUnreachable(err: unknown): boolean {
  const code = codeOf(err);
  return code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED;
}

/**
 * Whether a failed call's status was sent by the server (it answered, with a
 * refusal), not made up by the client's transport (no connection, a dropped
 * connection, the deadline): every gRPC response, a status-only one included,
 * carries the server's content-type header, which grpc-js keeps in the error's
 * metadata; a status of the transport's own has none.
 */
export function answeredByServer(err: unknown): boolean {
  const md = (err as grpc.ServiceError)?.metadata;
  return md instanceof grpc.Metadata && md.get("content-type").length > 0;
}

/** A gRPC error from a peer as the core's error types. */
export function peerError(peer: string, err: unknown): KvError {
  const se = err as grpc.ServiceError;
  if (isUnreachable(err)) {
    return new PeerUnavailableError(peer, details(se), codeOf(err) as StatusCode);
  }
  if (typeof se?.code === "number") return new KvError(se.code as StatusCode, `node ${peer}: ${details(se)}`);
  return new KvError(Code.INTERNAL, `node ${peer}: ${errorMessage(err)}`);
}

/** A gRPC error as a KvError (for clients). */
export function statusError(err: unknown): KvError {
  const se = err as grpc.ServiceError;
  if (typeof se?.code === "number") return new KvError(codeOf(err) as StatusCode, details(se));
  return new KvError(Code.INTERNAL, errorMessage(err));
}

/** The status details, without grpc-js's empty "Resolution note:" tail. */
export function details(se: grpc.ServiceError): string {
  return (se.details || se.message).replace(/\s*Resolution note:\s*$/, "");
}

/** Channel options every client and server of the store uses. */
export function channelOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    // Reconnect quickly after a peer restarts instead of backing off for long.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
    // Channelz (gRPC's introspection service, unused here) counts every call
    // in trackers on both ends; off, each call is measurably cheaper.
    "grpc.enable_channelz": 0,
  };
}

/**
 * Options of a node's server: the channel's, plus HTTP/2's caps per
 * connection. Streams are capped at twice the calls allowed in flight (see
 * connection_calls.ts), so a grpc-js client is told RESOURCE_EXHAUSTED for
 * the calls between the two caps instead of having them queued silently,
 * and a client ignoring the cap gets its streams refused by HTTP/2 itself.
 * Session memory bounds what one connection's HTTP/2 state may hold (grpc-js
 * otherwise lifts Node's limit entirely).
 */
export function serverOptions(limits: {
  maxMessageBytes: number;
  maxCallsPerConnection: number;
  maxConnectionMemoryMb: number;
}): grpc.ServerOptions {
  return {
    ...channelOptions(limits.maxMessageBytes),
    "grpc.max_concurrent_streams": 2 * limits.maxCallsPerConnection,
    "grpc-node.max_session_memory": limits.maxConnectionMemoryMb,
  };
}

/** How often a peer channel pings, and how long it waits for the answer. */
export interface Keepalive {
  timeMs: number;
  timeoutMs: number;
}

/**
 * Options of a channel to another node: keepalive pings, idle or not, so a
 * connection whose far end vanished without a FIN (host gone, process
 * frozen) is dropped after `timeMs + timeoutMs`, failing the calls on it as
 * UNAVAILABLE instead of leaving them to their deadlines (a recovery stream
 * has minutes). grpc-js servers do not police ping rates (no
 * too_many_pings GOAWAY), so nodes accept each other's pings as they come.
 */
export function peerChannelOptions(maxMessageBytes: number, keepalive: Keepalive): grpc.ChannelOptions {
  return {
    ...channelOptions(maxMessageBytes),
    "grpc.keepalive_time_ms": keepalive.timeMs,
    "grpc.keepalive_timeout_ms": keepalive.timeoutMs,
    "grpc.keepalive_permit_without_calls": 1,
  };
}

/**
 * Ends a server stream with an error status. `destroy(err)` would not do:
 * grpc-js sends the status from the stream's final step, which a destroyed
 * stream never reaches, so the client would wait for its deadline.
 */
export function failStream(
  call: grpc.ServerWritableStream<unknown, unknown>,
  status: { code: number; details: string },
): void {
  call.emit("error", status);
}
