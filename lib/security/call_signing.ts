/**
 * The client side of node tokens: an interceptor that signs each outgoing
 * NodeService call for the node it goes to.
 *
 * A data call is signed when it starts. A control call's token binds its
 * request, so its start is held until the message is sent: the message is
 * serialized, brought to the form the receiver will see (deserialized and
 * serialized again, as the receiver re-serializes what it decoded), hashed,
 * and the token set before the call starts. A refusal that carries the
 * receiver's clock (a token outside its window) is handed to
 * `onReceiverTime`, for whoever measures clock offsets.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { kvstorePackage } from "../grpc/proto.ts";
import {
  AUTH_METADATA_KEY,
  isControlPath,
  RECEIVER_TIME_KEY,
  requestDigest,
  type TokenSigner,
} from "./token.ts";

/** Where the calls of one channel go, and who hears of the receiver's clock. */
export interface SigningTarget {
  /** The id of the node the channel reaches (read at each call: a seed's id is learnt later). */
  target: () => string;
  /** The channel's lane: each keeps its own data counter (token.ts). */
  stream?: string;
  /**
   * Told of the receiver's clock when it refused a token for its time, with
   * this node's clock then and the call's round trip (the bound on the offset).
   */
  onReceiverTime?: (receiverMs: number, localMs: number, rttMs: number) => void;
}

/** Methods no token is needed for (node_guard.ts leaves them open). */
const UNSIGNED = new Set(["/kvstore.NodeService/GetMembership"]);

/** A client interceptor that adds this node's token to every NodeService call. */
export function signingInterceptor(signer: TokenSigner, t: SigningTarget): grpc.Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    if (UNSIGNED.has(path)) return new grpc.InterceptingCall(nextCall(options));
    const control = isControlPath(path);
    let held: { metadata: grpc.Metadata; listener: grpc.InterceptingListener; next: StartNext } | undefined;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const heard = hearReceiverTime(listener, t.onReceiverTime);
        if (!control) {
          metadata.set(AUTH_METADATA_KEY, signer.data(path, t.target(), t.stream));
          return next(metadata, heard);
        }
        held = { metadata, listener: heard, next };
      },
      sendMessage(message, next) {
        if (held) {
          const digest = requestDigest(canonicalBytes(path, options.method_definition, message));
          held.metadata.set(AUTH_METADATA_KEY, signer.control(path, t.target(), digest));
          held.next(held.metadata, held.listener);
          held = undefined;
        }
        next(message);
      },
    });
  };
}

type StartNext = (metadata: grpc.Metadata, listener: grpc.InterceptingListener) => void;

/** The request as the receiver will re-serialize it after decoding (defaults filled in). */
function canonicalBytes(
  path: string,
  def: { requestSerialize: (m: unknown) => Buffer },
  message: unknown,
): Buffer {
  const bytes = def.requestSerialize(message);
  const name = path.slice(path.lastIndexOf("/") + 1);
  const full = kvstorePackage().NodeService.service[name];
  try {
    return full ? full.requestSerialize(full.requestDeserialize(bytes)) : bytes;
  } catch {
    return bytes; // bytes no node can decode either (a fuzzer's): the call fails there, not here
  }
}

function hearReceiverTime(
  listener: grpc.InterceptingListener,
  tell: SigningTarget["onReceiverTime"],
): grpc.InterceptingListener {
  if (!tell) return listener;
  const startedAt = performance.now();
  return {
    ...listener,
    onReceiveMetadata: (m) => listener.onReceiveMetadata(m),
    onReceiveMessage: (m) => listener.onReceiveMessage(m),
    onReceiveStatus: (status) => {
      const at = status.metadata?.get(RECEIVER_TIME_KEY)[0];
      if (typeof at === "string" && /^\d+$/.test(at)) {
        tell(Number(at), Date.now(), performance.now() - startedAt);
      }
      listener.onReceiveStatus(status);
    },
  };
}
