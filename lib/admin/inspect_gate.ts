/**
 * Who may use the key inspector, and with what key.
 *
 * The inspector tells whether a key exists (and its versions), so it is
 * held to the same door as KeyValueStore: with `security.client_token_file`
 * set the request must carry `authorization: Bearer <token>` (the same
 * constant-time check as client_auth.ts). Every source is limited to a few
 * calls a second (token guesses included), and the key to `limits.max_key_bytes`. Refusals are
 * counted in the node's events list and logged once per source a minute.
 */
import { bearerToken, type ClientTokenCheck, clientTokenCheck } from "../security/client_auth.ts";
import { Throttle } from "../throttle.ts";
import type { Logger } from "../log.ts";
import type { EventLog } from "./events.ts";
import { RateLimit } from "./rate_limit.ts";

/** Inspector calls a source may make per second (and at once). */
export const INSPECT_PER_SECOND = 10;

/** Options of {@link InspectGate}. */
export interface InspectGateOptions {
  /** The client token (security.client_token_file), when the cluster sets one. */
  clientToken?: Uint8Array;
  maxKeyBytes: number;
  log: Logger;
  events: EventLog;
  now?: () => number;
}

/** A refusal: the HTTP status and why. */
export interface Refusal {
  status: 400 | 401 | 429;
  message: string;
}

/** Admits or refuses inspector requests. */
export class InspectGate {
  readonly #check: ClientTokenCheck | undefined;
  readonly #rate: RateLimit;
  readonly #throttle: Throttle;

  constructor(private readonly o: InspectGateOptions) {
    this.#check = o.clientToken ? clientTokenCheck(o.clientToken) : undefined;
    this.#rate = new RateLimit({ perSecond: INSPECT_PER_SECOND, burst: INSPECT_PER_SECOND, now: o.now });
    this.#throttle = new Throttle(60_000, o.now);
  }

  /** The key to inspect, or why not: `authorization` is the request's header, `source` its address. */
  admit(key: string | null, authorization: string | null, source: string): string | Refusal {
    if (!this.#rate.take(source)) {
      return this.#refuse(source, "inspector: rate limited", {
        status: 429,
        message: `more than ${INSPECT_PER_SECOND} inspections a second from ${source}; wait a moment`,
      });
    }
    if (this.#check && !this.#check(bearerToken(authorization ?? undefined))) {
      const why = authorization === null ? "no client token" : "wrong client token";
      return this.#refuse(source, "inspector: " + why, {
        status: 401,
        message: `${why}: this cluster sets security.client_token_file; ` +
          `send "authorization: Bearer <token>" (the page asks for it)`,
      });
    }
    if (key === null || key === "") {
      return this.#refuse(source, "inspector: bad key", { status: 400, message: "no key given (?key=...)" });
    }
    const bytes = new TextEncoder().encode(key).byteLength;
    if (bytes > this.o.maxKeyBytes) {
      return this.#refuse(source, "inspector: bad key", {
        status: 400,
        message: `key is ${bytes} bytes; limits.max_key_bytes is ${this.o.maxKeyBytes}`,
      });
    }
    return key;
  }

  #refuse(source: string, reason: string, r: Refusal): Refusal {
    this.o.events.refused(reason);
    const held = this.#throttle.take(source);
    if (held !== undefined) {
      this.o.log.warn("refused a key inspector request", {
        source,
        reason: r.message,
        earlier_refusals_not_logged: held,
      });
    }
    return r;
  }
}
