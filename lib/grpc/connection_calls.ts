/**
 * Calls in flight per client connection, capped at
 * `limits.max_calls_per_connection`: beyond it a call is answered
 * RESOURCE_EXHAUSTED before its handler runs, so one connection cannot make
 * the node hold thousands of requests (and their answers) at once.
 *
 * HTTP/2's own cap (`grpc.max_concurrent_streams`, which Deno 2.9.3's
 * node:http2 does enforce: a client that ignores it gets RST_STREAM
 * REFUSED_STREAM) is set at twice this one (server.ts): a grpc-js client
 * queues its calls beyond the HTTP/2 cap silently, so only this count can
 * tell the caller why. A connection is named by gRPC's peer string
 * ("ipv4:127.0.0.1:PORT"), unique per connection.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";

/** A refused call's status. */
export interface Refusal {
  code: number;
  details: string;
}

/** Counts calls per connection; refusals are logged once per source per minute. */
export class ConnectionCalls {
  readonly #inFlight = new Map<string, number>();
  readonly #throttle = new Throttle(60_000);

  constructor(private readonly max: number, private readonly log: Logger) {}

  /** Calls in flight on `peer`'s connection (for tests and metrics). */
  count(peer: string): number {
    return this.#inFlight.get(peer) ?? 0;
  }

  /** Admits a call of `method` on `peer`'s connection: the function that ends it, or the refusal. */
  enter(peer: string, method: string): (() => void) | Refusal {
    const n = this.#inFlight.get(peer) ?? 0;
    if (n >= this.max) {
      this.#warn(peer, method);
      return {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `this connection already has ${n} calls in flight; the limit is ${this.max} ` +
          `(limits.max_calls_per_connection): wait for answers or open another connection`,
      };
    }
    this.#inFlight.set(peer, n + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const now = (this.#inFlight.get(peer) ?? 1) - 1;
      if (now > 0) this.#inFlight.set(peer, now);
      else this.#inFlight.delete(peer);
    };
  }

  #warn(peer: string, method: string): void {
    const held = this.#throttle.take(peer.replace(/:\d+$/, ""));
    if (held === undefined) return;
    this.log.warn("refused a call beyond the connection's limit", {
      source: peer,
      method,
      limit: this.max,
      earlier_refusals_not_logged: held,
    });
  }
}
