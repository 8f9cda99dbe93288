/** Tests of node authentication tokens: signing, checking, the window, reuse. */
import assert from "node:assert/strict";
import { signToken, TokenSigner, TokenVerifier, verifyToken } from "../lib/security/token.ts";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const PATH = "/kvstore.NodeService/Replicate";
const T = 1_800_000_000_000;
const opts = { nowMs: T, windowMs: 60_000 };

Deno.test("a token made with the secret verifies for its method and names its node", () => {
  const token = signToken(SECRET, PATH, "node2", T);
  assert.deepEqual(verifyToken(SECRET, PATH, token, opts), { ok: true, nodeId: "node2" });
  assert.match(token, /^node2\.1800000000000\.[A-Za-z0-9_-]{43}$/);
});

Deno.test("a token is refused for another method, another secret, or with any part changed", () => {
  const token = signToken(SECRET, PATH, "node2", T);
  const refused = (t: string | undefined, secret = SECRET, path = PATH) => {
    const v = verifyToken(secret, path, t, opts);
    assert.equal(v.ok, false, `${t} accepted`);
    return v.ok ? "" : v.reason;
  };
  assert.match(refused(token, SECRET, "/kvstore.NodeService/ReplicateBatch"), /do not match/);
  assert.match(refused(token, new TextEncoder().encode("another secret, just as long!!")), /do not match/);
  assert.match(refused(token.replace("node2", "node3")), /do not match/);
  assert.match(refused(token.replace(".1800000000000.", ".1800000000001.")), /do not match/);
  const mac = token.slice(-43);
  const flipped = (mac[0] === "A" ? "B" : "A") + mac.slice(1);
  assert.match(refused(token.slice(0, -43) + flipped), /do not match/);
  assert.match(refused(undefined), /no node credentials/);
  assert.match(refused(""), /no node credentials/);
  for (const bad of ["garbage", "node2.abc.xyz", `node2.${T}.short`, `no de.${T}.${mac}`, `${token}x`]) {
    assert.match(refused(bad), /malformed/, bad);
  }
});

Deno.test("a token is valid within the window around the receiver's clock, and not beyond", () => {
  for (const at of [T - 60_000, T, T + 60_000]) {
    assert.equal(verifyToken(SECRET, PATH, signToken(SECRET, PATH, "node1", at), opts).ok, true, `${at - T}`);
  }
  for (const at of [T - 60_001, T + 60_001, 0]) {
    const v = verifyToken(SECRET, PATH, signToken(SECRET, PATH, "node1", at), opts);
    assert.equal(v.ok, false);
    assert.match(v.ok ? "" : v.reason, /expired or not yet valid/);
  }
});

Deno.test("the signer reuses a method's token for reuseMs, then makes a new one", () => {
  let now = T;
  const signer = new TokenSigner(SECRET, "node1", 1000, () => now);
  const first = signer.token(PATH);
  now += 999;
  assert.equal(signer.token(PATH), first);
  assert.notEqual(signer.token("/kvstore.NodeService/Heartbeat"), first, "per method");
  now += 1;
  const second = signer.token(PATH);
  assert.notEqual(second, first);
  assert.equal(verifyToken(SECRET, PATH, second, { nowMs: now, windowMs: 0 }).ok, true);
  now -= 5000; // the clock stepped back: a fresh token, not one from the future
  assert.notEqual(signer.token(PATH), second);
});

Deno.test("the verifier remembers an accepted token until its window ends, and never a refused one", () => {
  const verifier = new TokenVerifier(SECRET, 60_000, 2);
  const token = signToken(SECRET, PATH, "node2", T);
  assert.deepEqual(verifier.verify(PATH, token, T), { ok: true, nodeId: "node2" });
  assert.deepEqual(verifier.verify(PATH, token, T + 60_000), { ok: true, nodeId: "node2" });
  assert.equal(verifier.verify(PATH, token, T + 60_001).ok, false, "expired even though remembered");
  assert.equal(verifier.verify("/kvstore.NodeService/Heartbeat", token, T).ok, false, "per method");
  const forged = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
  assert.equal(verifier.verify(PATH, forged, T).ok, false);
  assert.equal(verifier.verify(PATH, forged, T).ok, false);
  for (let i = 0; i < 5; i++) {
    assert.equal(
      verifier.verify(PATH, signToken(SECRET, PATH, "node1", T + i), T).ok,
      true,
      "bounded memory",
    );
  }
  assert.equal(verifier.verify(PATH, token, T).ok, true, "forgotten, then checked again");
});

Deno.test("signing and checking a token costs microseconds (printed, not asserted)", () => {
  const n = 5000;
  let t0 = performance.now();
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) tokens.push(signToken(SECRET, PATH, "node1", T + i));
  const signUs = (performance.now() - t0) * 1000 / n;
  t0 = performance.now();
  for (let i = 0; i < n; i++) assert.ok(verifyToken(SECRET, PATH, tokens[i], { nowMs: T, windowMs: n }).ok);
  const verifyUs = (performance.now() - t0) * 1000 / n;
  const signer = new TokenSigner(SECRET, "node1");
  const verifier = new TokenVerifier(SECRET, 60_000);
  t0 = performance.now();
  for (let i = 0; i < n; i++) assert.ok(verifier.verify(PATH, signer.token(PATH), Date.now()).ok);
  const reusedUs = (performance.now() - t0) * 1000 / n;
  console.log(
    `per call: sign ${signUs.toFixed(1)} us, verify ${verifyUs.toFixed(1)} us; ` +
      `reused token signed and checked ${reusedUs.toFixed(2)} us`,
  );
});
