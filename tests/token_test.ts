/**
 * Tests of node authentication tokens and of the replay stores: what a
 * token binds (method, caller, target, time, and for control calls the
 * request), the window, nonces and counters accepted once, bounded stores
 * that refuse when full, and the cost of signing and checking (printed).
 */
import assert from "node:assert/strict";
import {
  requestDigest,
  signToken,
  type TokenClaims,
  TokenSigner,
  verifyToken,
} from "../lib/security/token.ts";
import { ReplayGuard } from "../lib/security/replay.ts";
import { Hmac256 } from "../lib/security/hmac.ts";
import { createHmac, randomBytes } from "node:crypto";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const DATA = "/kvstore.NodeService/Replicate";
const CONTROL = "/kvstore.NodeService/PushMembership";
const T = 1_800_000_000_000;
const opts = { nowMs: T, windowMs: 60_000, self: "node2" };
const digest = requestDigest(new TextEncoder().encode("the request"));

function data(c: Partial<TokenClaims> = {}): string {
  const claims = {
    kind: "data",
    nodeId: "node1",
    target: "node2",
    ms: T,
    seq: "AAAAAAAAAAA",
    counter: 1,
    ...c,
  };
  return signToken(SECRET, DATA, claims as TokenClaims);
}

Deno.test("a data token made with the secret verifies for its method and target and names its node", () => {
  const v = verifyToken(SECRET, DATA, data(), opts);
  assert.ok(v.ok);
  assert.equal(v.claims.nodeId, "node1");
  assert.equal(v.claims.counter, 1);
  assert.match(data(), /^d~node1~node2~1800000000000~AAAAAAAAAAA-1~[A-Za-z0-9_-]{43}$/);
});

Deno.test("a token is refused for another method, target, secret, or with any part changed", () => {
  const token = data();
  const refused = (t: string | undefined, o: { secret?: Uint8Array; path?: string; self?: string } = {}) => {
    const v = verifyToken(o.secret ?? SECRET, o.path ?? DATA, t, { ...opts, self: o.self ?? "node2" });
    assert.equal(v.ok, false, `${t} accepted`);
    return v.ok ? "" : v.reason;
  };
  assert.match(refused(token, { path: "/kvstore.NodeService/ReplicateBatch" }), /do not match/);
  assert.match(
    refused(token, { secret: new TextEncoder().encode("another secret, just as long!!") }),
    /do not match/,
  );
  assert.match(refused(token, { self: "node3" }), /made for "node2", not this node/);
  assert.match(refused(token.replace("node1", "node3")), /do not match/);
  assert.match(refused(token.replace("~node2~", "~node3~"), { self: "node3" }), /do not match/);
  assert.match(refused(token.replace("-1~", "-2~")), /do not match/);
  assert.match(refused(token.replace("~1800000000000~", "~1800000000001~")), /do not match/);
  const mac = token.slice(-43);
  assert.match(refused(token.slice(0, -43) + (mac[0] === "A" ? "B" : "A") + mac.slice(1)), /do not match/);
  assert.match(refused(undefined), /no node credentials/);
  for (
    const bad of ["garbage", `node1.${T}.${mac}`, `d~no de~node2~${T}~AAAAAAAAAAA-1~${mac}`, `${token}x`]
  ) {
    assert.match(refused(bad), /malformed/, bad);
  }
  assert.match(refused(token, { path: CONTROL }), /wrong kind/, "a data token for a control method");
});

Deno.test("a control token binds its request: another message, target or method is refused", () => {
  const signer = new TokenSigner(SECRET, "node1", () => T);
  const token = signer.control(CONTROL, "node2", digest);
  const check = (o: { digest?: Uint8Array; self?: string; path?: string } = {}) =>
    verifyToken(SECRET, o.path ?? CONTROL, token, {
      ...opts,
      self: o.self ?? "node2",
      digest: o.digest ?? digest,
    });
  assert.equal(check().ok, true);
  const other = requestDigest(new TextEncoder().encode("another request"));
  assert.match(String((check({ digest: other }) as { reason: string }).reason), /this request/);
  assert.match(String((check({ self: "node3" }) as { reason: string }).reason), /not this node/);
  assert.match(
    String((check({ path: "/kvstore.NodeService/ChangeMembership" }) as { reason: string }).reason),
    /do not match/,
  );
  assert.match(String((check({ path: DATA }) as { reason: string }).reason), /wrong kind/);
  assert.notEqual(signer.control(CONTROL, "node2", digest), token, "a fresh nonce per call");
});

Deno.test("a token is valid within the window around the receiver's clock, and says the receiver's clock beyond", () => {
  for (const at of [T - 60_000, T, T + 60_000]) {
    assert.equal(verifyToken(SECRET, DATA, data({ ms: at }), opts).ok, true);
  }
  for (const at of [T - 60_001, T + 60_001, 0]) {
    const v = verifyToken(SECRET, DATA, data({ ms: at }), opts);
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.time, true);
    assert.match(v.ok ? "" : v.reason, new RegExp(`expired or not yet valid.*receiver's clock ${T}`));
  }
});

Deno.test("the signer counts per stream and makes a fresh nonce per control call", () => {
  const signer = new TokenSigner(SECRET, "node1", () => T);
  const claims = (t: string) => {
    const v = verifyToken(SECRET, DATA, t, opts);
    assert.ok(v.ok);
    return v.claims;
  };
  const a1 = claims(signer.data(DATA, "node2", "data"));
  const a2 = claims(signer.data(DATA, "node2", "data"));
  const b1 = claims(signer.data(DATA, "node2", "bulk"));
  assert.equal(a1.seq, a2.seq);
  assert.deepEqual([a1.counter, a2.counter, b1.counter], [1, 2, 1]);
  assert.notEqual(a1.seq, b1.seq, "one session per stream");
});

Deno.test("replay guard: a control nonce is accepted once; a full nonce store refuses, then frees expired ones", () => {
  const g = new ReplayGuard({ windowMs: 60_000, maxNonces: 2 });
  const c = (seq: string, ms = T): TokenClaims => ({
    kind: "control",
    nodeId: "node1",
    target: "node2",
    ms,
    seq,
    counter: 0,
  });
  assert.equal(g.check(c("n1"), T), undefined);
  assert.match(String(g.check(c("n1"), T)?.reason), /already used/);
  assert.equal(g.check(c("n2"), T), undefined);
  assert.deepEqual(g.check(c("n3"), T)?.full, true, "full: refused, nothing forgotten");
  assert.match(String(g.check(c("n3"), T)?.reason), /too many control calls/);
  assert.match(String(g.check(c("n1"), T)?.reason), /already used/, "still remembered");
  assert.equal(g.check(c("n3", T + 61_000), T + 61_000), undefined, "expired entries make room");
  assert.equal(g.size.nonces, 1);
});

Deno.test("replay guard: data counters within the window are accepted once, out of order; older ones refused", () => {
  const g = new ReplayGuard({ windowMs: 60_000, bits: 64, maxSessions: 1 });
  const d = (counter: number, seq = "S") =>
    ({ kind: "data", nodeId: "node1", target: "node2", ms: T, seq, counter }) as TokenClaims;
  for (const n of [1, 3, 2, 10, 5]) assert.equal(g.check(d(n), T), undefined, `${n}`);
  for (const n of [1, 2, 3, 5, 10]) {
    assert.match(String(g.check(d(n), T)?.reason), /already used/, `${n} again`);
  }
  assert.equal(g.check(d(4), T), undefined, "a gap below the highest is accepted once");
  assert.equal(g.check(d(100), T), undefined);
  assert.match(String(g.check(d(36), T)?.reason), /too old/, "64 or more below the highest");
  assert.equal(g.check(d(37), T), undefined, "63 below: still in the window");
  assert.equal(g.check(d(100_000), T), undefined, "a jump clears the window");
  assert.match(String(g.check(d(100_000), T)?.reason), /already used/);
  assert.equal(g.check(d(99_999), T), undefined);
  assert.match(
    String(g.check(d(1, "other"), T)?.reason),
    /too many node sessions/,
    "full: a new session is refused",
  );
  assert.equal(g.check(d(1, "other"), T)?.full, true);
  assert.equal(g.check(d(1, "other"), T + 60_001), undefined, "once the old session expired");
});

Deno.test("the JavaScript HMAC-SHA256 equals node:crypto's for random keys and messages of every length", () => {
  for (let len = 0; len < 300; len++) {
    const key = randomBytes(len % 3 === 0 ? 100 : 32);
    const msg = randomBytes(len);
    assert.deepEqual(
      new Hmac256(key).mac(msg),
      new Uint8Array(createHmac("sha256", key).update(msg).digest()),
      `${len}`,
    );
  }
});

Deno.test("signing and checking data tokens: calls per second (printed, not asserted)", () => {
  const n = 20_000;
  const signer = new TokenSigner(SECRET, "node1");
  const guard = new ReplayGuard({ windowMs: 60_000 });
  let t0 = performance.now();
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) tokens.push(signer.data(DATA, "node2", "data"));
  const signMs = performance.now() - t0;
  t0 = performance.now();
  for (const t of tokens) {
    const v = verifyToken(SECRET, DATA, t, { nowMs: Date.now(), windowMs: 60_000, self: "node2" });
    assert.ok(v.ok && guard.check(v.claims, Date.now()) === undefined);
  }
  const verifyMs = performance.now() - t0;
  const perS = (ms: number) => Math.round(n / (ms / 1000));
  const msg = new TextEncoder().encode(tokens[0]);
  t0 = performance.now();
  for (let i = 0; i < n; i++) createHmac("sha256", SECRET).update(msg).digest();
  const nodeHmacMs = performance.now() - t0;
  const h = new Hmac256(SECRET);
  t0 = performance.now();
  for (let i = 0; i < n; i++) h.mac(msg);
  const jsHmacMs = performance.now() - t0;
  console.log(
    `one HMAC of a token: node:crypto createHmac ${(nodeHmacMs * 1000 / n).toFixed(1)} us, ` +
      `Hmac256 (pads precomputed) ${(jsHmacMs * 1000 / n).toFixed(1)} us`,
  );
  console.log(
    `data tokens: sign ${perS(signMs)}/s (${(signMs * 1000 / n).toFixed(1)} us), verify+replay check ` +
      `${perS(verifyMs)}/s (${(verifyMs * 1000 / n).toFixed(1)} us); sign+verify ${
        perS(signMs + verifyMs)
      } calls/s on one core`,
  );
});
