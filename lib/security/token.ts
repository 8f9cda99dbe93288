/**
 * Node authentication tokens: proof that a call comes from a holder of the
 * cluster secret.
 *
 * A token names the calling node and the time it was made, and carries an
 * HMAC-SHA256 over those and the gRPC method path, keyed with the secret. It
 * is valid for one method, within a window around the receiver's clock, so a
 * token seen on the wire is useless for another method or after the window.
 * It does not cover the message itself: on a network where someone can read
 * and replay calls, TLS is what protects them (see README, Security).
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** The call metadata key that carries the token. */
export const AUTH_METADATA_KEY = "x-kvstore-node-auth";

const DOMAIN = "kvstore-node-auth-v1";

/** The outcome of checking a token. */
export type Verdict = { ok: true; nodeId: string } | { ok: false; reason: string };

/** A token for one call of `method` (the full path, e.g. `/kvstore.NodeService/Replicate`). */
export function signToken(secret: Uint8Array, method: string, nodeId: string, nowMs: number): string {
  return `${nodeId}.${nowMs}.${mac(secret, method, nodeId, nowMs).toString("base64url")}`;
}

/**
 * Checks a token for `method` at `nowMs`: made with the secret, for this
 * method, at most `windowMs` away from now. Compares in constant time.
 */
export function verifyToken(
  secret: Uint8Array,
  method: string,
  token: string | undefined,
  opts: { nowMs: number; windowMs: number },
): Verdict {
  if (!token) return { ok: false, reason: "no node credentials" };
  const m = /^([A-Za-z0-9_.-]+)\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: "malformed node credentials" };
  const [, nodeId, msText, macText] = m;
  const at = Number(msText);
  if (Math.abs(opts.nowMs - at) > opts.windowMs) {
    return { ok: false, reason: `node credentials expired or not yet valid (${opts.nowMs - at} ms old)` };
  }
  const given = Buffer.from(macText, "base64url");
  const expected = mac(secret, method, nodeId, at);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: "node credentials do not match the cluster secret" };
  }
  return { ok: true, nodeId };
}

function mac(secret: Uint8Array, method: string, nodeId: string, ms: number): Buffer {
  return createHmac("sha256", secret).update(`${DOMAIN}\n${method}\n${nodeId}\n${ms}`).digest();
}

/**
 * Makes tokens for one node, reusing each method's token for `reuseMs`: the
 * receiver accepts it for its whole window anyway, and an HMAC per call is
 * work saved on every node-to-node call.
 */
export class TokenSigner {
  readonly #cache = new Map<string, { token: string; at: number }>();

  constructor(
    private readonly secret: Uint8Array,
    private readonly nodeId: string,
    private readonly reuseMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The token to send with a call of `method` now. */
  token(method: string): string {
    const now = this.now();
    const cached = this.#cache.get(method);
    if (cached && now - cached.at < this.reuseMs && now >= cached.at) return cached.token;
    const token = signToken(this.secret, method, this.nodeId, now);
    this.#cache.set(method, { token, at: now });
    return token;
  }
}

/**
 * Checks tokens for one secret, remembering the ones it accepted until they
 * expire: signers reuse a token for a second, so most calls cost a map
 * lookup instead of an HMAC. Only valid tokens are remembered, so a flood
 * of bad ones cannot grow the memory.
 */
export class TokenVerifier {
  readonly #accepted = new Map<string, { nodeId: string; until: number }>();

  constructor(
    private readonly secret: Uint8Array,
    private readonly windowMs: number,
    private readonly maxRemembered = 4096,
  ) {}

  /** The verdict on a token for `method` at `nowMs`. */
  verify(method: string, token: string | undefined, nowMs: number): Verdict {
    const key = `${method} ${token}`;
    const seen = token ? this.#accepted.get(key) : undefined;
    if (seen && nowMs <= seen.until) return { ok: true, nodeId: seen.nodeId };
    const verdict = verifyToken(this.secret, method, token, { nowMs, windowMs: this.windowMs });
    if (verdict.ok) {
      if (this.#accepted.size >= this.maxRemembered) this.#accepted.clear();
      const at = Number(token!.split(".")[1]);
      this.#accepted.set(key, { nodeId: verdict.nodeId, until: at + this.windowMs });
    }
    return verdict;
  }
}
