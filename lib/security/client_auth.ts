/**
 * Optional client authentication: a bearer token for KeyValueStore.
 *
 * With `security.client_token_file` set, every KeyValueStore call must carry
 * `authorization: Bearer <token>` or is answered UNAUTHENTICATED before its
 * handler runs. The comparison is of SHA-256 digests with timingSafeEqual,
 * so its time says nothing about how much of a guess was right (not even
 * its length). The check is a function of its own so other front doors (a
 * Redis-protocol gateway) can use the same one. Health, reflection and
 * NodeService (node_guard.ts, protected_mode.ts) are not covered by it.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";
import { peerHost } from "./protected_mode.ts";

/** The metadata key a client token travels in (HTTP's). */
export const CLIENT_TOKEN_KEY = "authorization";

/** Whether a presented token (undefined: none) is the expected one; constant time. */
export type ClientTokenCheck = (given: string | undefined) => boolean;

/** The check of presented tokens against `expected` (the token file's text). */
export function clientTokenCheck(expected: Uint8Array): ClientTokenCheck {
  const want = digest(expected);
  return (given) => {
    if (given === undefined) return false;
    return timingSafeEqual(digest(new TextEncoder().encode(given)), want);
  };
}

function digest(bytes: Uint8Array): Uint8Array {
  return createHash("sha256").update(bytes).digest();
}

/** The token of an `authorization` metadata value ("Bearer <token>"), or undefined. */
export function bearerToken(value: grpc.MetadataValue | undefined): string | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^Bearer (.+)$/.exec(value);
  return m ? m[1] : undefined;
}

/** The `authorization` metadata value that carries `token`. */
export function bearerValue(token: string): string {
  return `Bearer ${token}`;
}

/** A client interceptor that adds the client token to every call. */
export function clientTokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(CLIENT_TOKEN_KEY, bearerValue(token));
        next(metadata, listener);
      },
    });
}

/** Options of {@link requireClientToken}. */
export interface ClientAuthOptions {
  log: Logger;
  /** One log line per source per this interval (default 60 s). */
  warnIntervalMs?: number;
  now?: () => number;
  /** Told each refused call (counted on the status page; never called per call in the log). */
  onRefused?: (reason: string) => void;
}

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/**
 * The KeyValueStore implementation (unary methods) behind the token check,
 * or the implementation itself when no token is configured.
 */
export function requireClientToken(
  impl: grpc.UntypedServiceImplementation,
  token: Uint8Array | undefined,
  o: ClientAuthOptions,
): grpc.UntypedServiceImplementation {
  if (!token) return impl;
  const check = clientTokenCheck(token);
  const throttle = new Throttle(o.warnIntervalMs ?? 60_000, o.now);
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    const inner = handler as unknown as UnaryHandler;
    out[name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const given = bearerToken(call.metadata.get(CLIENT_TOKEN_KEY)[0]);
      if (check(given)) return inner(call, cb);
      const reason = given === undefined ? "no client token" : "wrong client token";
      o.onRefused?.(reason);
      const source = peerHost(call.getPeer());
      const held = throttle.take(source);
      if (held !== undefined) {
        o.log.warn("refused a KeyValueStore call", {
          source,
          method: name,
          reason,
          earlier_refusals_not_logged: held,
        });
      }
      cb({
        code: grpc.status.UNAUTHENTICATED,
        details: `${name} refused: ${reason}; this cluster needs metadata "authorization: Bearer <token>" ` +
          `with the token of security.client_token_file (client and bench: --token-file FILE)`,
      });
    }) as grpc.UntypedHandleCall;
  }
  return out;
}
