/**
 * What a node remembers of the tokens it accepted, so none is accepted twice.
 *
 * Control tokens carry a random nonce: each accepted nonce is kept until its
 * token's time leaves the window, after which the token is refused for its
 * time anyway. Data tokens carry a session and a counter: per session the
 * highest counter seen and a bitmap of the `bits` below it, as IPsec's
 * anti-replay window; a counter seen already, or too far below the highest,
 * is refused. A session is forgotten once every token it had accepted is
 * past the window. Both stores are bounded, and a full one refuses new
 * entries instead of forgetting live ones (forgetting would let a recorded
 * token in again). Only tokens whose MAC checked out reach these stores, so
 * only holders of the secret can fill them.
 */
import type { TokenClaims } from "./token.ts";

/** Options of {@link ReplayGuard}. */
export interface ReplayOptions {
  windowMs: number;
  /** Control nonces remembered at most (default 100 000). */
  maxNonces?: number;
  /** Data sessions (sender × connection lane × process) remembered at most (default 4096). */
  maxSessions?: number;
  /** Counters below the highest seen that are still accepted once (default 1024). */
  bits?: number;
}

interface Session {
  high: number;
  /** Bit c % bits says counter c (high - bits < c <= high) was seen. */
  seen: Uint32Array;
  /** The newest token time accepted: the session may be forgotten after this + window. */
  lastMs: number;
}

/** Why a token is refused: used before, or (`full`) no room to remember it. */
export interface ReplayRefusal {
  reason: string;
  full: boolean;
}

const replayed = (reason: string): ReplayRefusal => ({ reason, full: false });
const noRoom = (reason: string): ReplayRefusal => ({ reason, full: true });

/** Refuses tokens already accepted; undefined when the token is new (and now remembered). */
export class ReplayGuard {
  readonly #nonces = new Map<string, number>();
  readonly #sessions = new Map<string, Session>();
  readonly #maxNonces: number;
  readonly #maxSessions: number;
  readonly #bits: number;

  constructor(private readonly o: ReplayOptions) {
    this.#maxNonces = o.maxNonces ?? 100_000;
    this.#maxSessions = o.maxSessions ?? 4096;
    this.#bits = Math.ceil((o.bits ?? 1024) / 32) * 32;
  }

  /** Why the token is refused as a replay (or for want of room), or undefined once it is accepted. */
  check(c: TokenClaims, nowMs: number): ReplayRefusal | undefined {
    return c.kind === "control" ? this.#nonce(c, nowMs) : this.#counter(c, nowMs);
  }

  /** Entries held now: nonces and sessions. */
  get size(): { nonces: number; sessions: number } {
    return { nonces: this.#nonces.size, sessions: this.#sessions.size };
  }

  #nonce(c: TokenClaims, nowMs: number): ReplayRefusal | undefined {
    const key = `${c.nodeId}/${c.seq}`;
    if (this.#nonces.has(key)) return replayed("node credentials already used (a replay)");
    if (this.#nonces.size >= this.#maxNonces) {
      for (const [k, until] of this.#nonces) if (until < nowMs) this.#nonces.delete(k);
      if (this.#nonces.size >= this.#maxNonces) {
        return noRoom(`too many control calls within the token window (${this.#maxNonces}); try again later`);
      }
    }
    this.#nonces.set(key, c.ms + this.o.windowMs);
    return undefined;
  }

  #counter(c: TokenClaims, nowMs: number): ReplayRefusal | undefined {
    const key = `${c.nodeId}/${c.seq}`;
    let s = this.#sessions.get(key);
    if (!s) {
      if (this.#sessions.size >= this.#maxSessions) {
        for (const [k, old] of this.#sessions) {
          if (old.lastMs + this.o.windowMs < nowMs) this.#sessions.delete(k);
        }
        if (this.#sessions.size >= this.#maxSessions) {
          return noRoom(
            `too many node sessions within the token window (${this.#maxSessions}); try again later`,
          );
        }
      }
      s = { high: 0, seen: new Uint32Array(this.#bits / 32), lastMs: c.ms };
      this.#sessions.set(key, s);
    }
    const n = c.counter;
    if (n <= s.high - this.#bits) {
      return replayed(`node credentials too old for this session (counter ${n}, newest ${s.high})`);
    }
    if (n > s.high) {
      // Positions between the old highest and the new one are counters not seen yet.
      const clear = Math.min(n - s.high, this.#bits);
      for (let i = 1; i <= clear; i++) unset(s.seen, (s.high + i) % this.#bits);
      s.high = n;
    } else if (isSet(s.seen, n % this.#bits)) return replayed("node credentials already used (a replay)");
    set(s.seen, n % this.#bits);
    s.lastMs = Math.max(s.lastMs, c.ms);
    return undefined;
  }
}

function isSet(bits: Uint32Array, i: number): boolean {
  return (bits[i >>> 5] & (1 << (i & 31))) !== 0;
}
function set(bits: Uint32Array, i: number): void {
  bits[i >>> 5] |= 1 << (i & 31);
}
function unset(bits: Uint32Array, i: number): void {
  bits[i >>> 5] &= ~(1 << (i & 31));
}
