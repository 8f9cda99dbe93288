/**
 * Node authentication tokens: proof that one call comes from a holder of
 * the cluster secret, made for one receiver, once.
 *
 * A token names its kind, the calling node, the node it is for (the
 * target), the time it was made and a sequence value, and carries an
 * HMAC-SHA256 over those and the gRPC method path, keyed with the secret.
 * Two kinds:
 * - control (membership, votes, joins, removals): the sequence value is a
 *   random nonce, and the MAC also covers a SHA-256 digest of the request,
 *   so a token is good for this one message to this one node, once (the
 *   receiver remembers nonces for the window, replay.ts);
 * - data (forwards, replication, heartbeats, streams, thousands a second):
 *   the sequence value is a per-sender session and a counter that only
 *   rises, checked against a sliding window per session (replay.ts), as
 *   IPsec does; the message itself is not covered (TLS protects it).
 * Either way the token is valid only within `security.token_window_ms` of
 * the receiver's clock; a refusal for time tells the sender that clock.
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Hmac256 } from "./hmac.ts";

/** The call metadata key that carries the token. */
export const AUTH_METADATA_KEY = "x-kvstore-node-auth";

/** The trailer a refusal for time carries: the receiver's clock (ms since the epoch). */
export const RECEIVER_TIME_KEY = "x-kvstore-receiver-time-ms";

const DOMAIN = "kvstore-node-auth-v2";

/** Separates a token's fields; node ids may hold dots, never this. */
const SEP = "~";

/** The methods whose tokens bind their request, target and a nonce. */
export const CONTROL_METHODS: ReadonlySet<string> = new Set([
  "PushMembership",
  "PrepareMembership",
  "AcceptMembership",
  "JoinCluster",
  "ChangeMembership",
]);

/** Whether a full method path (`/kvstore.NodeService/X`) is a control-plane call. */
export function isControlPath(path: string): boolean {
  return CONTROL_METHODS.has(path.slice(path.lastIndexOf("/") + 1));
}

/** What a token says, besides its MAC. */
export interface TokenClaims {
  kind: "control" | "data";
  nodeId: string;
  target: string;
  ms: number;
  /** Control: the nonce. Data: the session id. */
  seq: string;
  /** Data: the session's counter (0 for control). */
  counter: number;
}

/** The outcome of checking a token; `time` when it was refused for its time alone. */
export type Verdict =
  | { ok: true; claims: TokenClaims }
  | { ok: false; reason: string; time?: boolean };

/** SHA-256 of a request's canonical bytes: what a control token binds. */
export function requestDigest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/** A token for one call of `method` (the full path); `digest` only for control calls. */
export function signToken(secret: Uint8Array, method: string, c: TokenClaims, digest?: Uint8Array): string {
  const kind = c.kind === "control" ? "c" : "d";
  const seq = c.kind === "control" ? c.seq : `${c.seq}-${c.counter}`;
  const head = [kind, c.nodeId, c.target, c.ms, seq].join(SEP);
  return `${head}${SEP}${mac(secret, method, head, digest).toString("base64url")}`;
}

const ID = "[A-Za-z0-9_.-]{1,128}";
const TOKEN = new RegExp(
  `^([cd])${SEP}(${ID})${SEP}(${ID})${SEP}(\\d{1,16})${SEP}` +
    `(?:([A-Za-z0-9_-]{22})|([A-Za-z0-9_-]{11})-(\\d{1,16}))${SEP}([A-Za-z0-9_-]{43})$`,
);

/**
 * Checks a token for `method` at `nowMs` without remembering it: its form,
 * that it is for `self` and of the kind the method needs, its time, and
 * its MAC (in constant time). Replays are the caller's to refuse (replay.ts).
 */
export function verifyToken(
  secret: Uint8Array,
  method: string,
  token: string | undefined,
  o: { nowMs: number; windowMs: number; self: string; digest?: Uint8Array },
): Verdict {
  if (!token) return { ok: false, reason: "no node credentials" };
  const m = TOKEN.exec(token);
  if (!m) return { ok: false, reason: "malformed node credentials" };
  const [, kind, nodeId, target, msText, nonce, session, counter, macText] = m;
  const control = isControlPath(method);
  if ((kind === "c") !== control || (kind === "c") !== (nonce !== undefined)) {
    return { ok: false, reason: `node credentials of the wrong kind for ${method}` };
  }
  if (target !== o.self) return { ok: false, reason: `node credentials made for "${target}", not this node` };
  const ms = Number(msText);
  if (Math.abs(o.nowMs - ms) > o.windowMs) {
    return {
      ok: false,
      time: true,
      reason: `node credentials expired or not yet valid: made at ${ms}, outside the ${o.windowMs} ms ` +
        `window of the receiver's clock ${o.nowMs}`,
    };
  }
  const given = Buffer.from(macText, "base64url");
  const head = token.slice(0, token.length - macText.length - 1);
  const expected = mac(secret, method, head, control ? o.digest : undefined);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      reason: control
        ? "node credentials do not match the cluster secret and this request"
        : "node credentials do not match the cluster secret",
    };
  }
  const claims: TokenClaims = control
    ? { kind: "control", nodeId, target, ms, seq: nonce, counter: 0 }
    : { kind: "data", nodeId, target, ms, seq: session, counter: Number(counter) };
  return { ok: true, claims };
}

const macs = new WeakMap<Uint8Array, Hmac256>();
const encoder = new TextEncoder();

function mac(secret: Uint8Array, method: string, head: string, digest?: Uint8Array): Buffer {
  let h = macs.get(secret);
  if (!h) macs.set(secret, h = new Hmac256(secret));
  const text = encoder.encode(`${DOMAIN}\n${method}\n${head}\n`);
  if (!digest) return Buffer.from(h.mac(text));
  const all = new Uint8Array(text.length + digest.length);
  all.set(text);
  all.set(digest, text.length);
  return Buffer.from(h.mac(all));
}

/**
 * Makes tokens for one node: a fresh nonce per control call, and per
 * `stream` (a connection's lane) a session whose counter rises by one per
 * data call. Calls on one connection arrive nearly in the order they were
 * signed, so each lane keeps its own counter: a slow bulk call is not
 * pushed out of the receiver's window by the fast calls of another lane.
 */
export class TokenSigner {
  readonly #sessions = new Map<string, { id: string; counter: number }>();

  constructor(
    private readonly secret: Uint8Array,
    readonly nodeId: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The token of a control call of `method` to `target`, binding `digest` (requestDigest). */
  control(method: string, target: string, digest: Uint8Array): string {
    const seq = randomBytes(16).toString("base64url");
    const claims: TokenClaims = {
      kind: "control",
      nodeId: this.nodeId,
      target,
      ms: this.now(),
      seq,
      counter: 0,
    };
    return signToken(this.secret, method, claims, digest);
  }

  /** The token of a data call of `method` to `target`, on the connection lane `stream`. */
  data(method: string, target: string, stream = ""): string {
    let s = this.#sessions.get(stream);
    if (!s) this.#sessions.set(stream, s = { id: randomBytes(8).toString("base64url"), counter: 0 });
    const claims: TokenClaims = {
      kind: "data",
      nodeId: this.nodeId,
      target,
      ms: this.now(),
      seq: s.id,
      counter: ++s.counter,
    };
    return signToken(this.secret, method, claims);
  }
}
