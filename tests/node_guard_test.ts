/**
 * Tests of the NodeService gate with fake calls: which calls reach their
 * handler, the status and reason of refused ones (unary and streaming),
 * the certificate rule under TLS, and one warning per source and interval.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { guardNodeService, signingInterceptor } from "../lib/security/node_guard.ts";
import { AUTH_METADATA_KEY, signToken, TokenSigner } from "../lib/security/token.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { Logger } from "../lib/log.ts";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const T = 1_800_000_000_000;
const NODES = ["node1", "node2"];

interface FakeCall {
  metadata: grpc.Metadata;
  getAuthContext: () => { sslPeerCertificate?: { subject: { CN: string } } };
  getPeer: () => string;
  emit: (event: string, status: unknown) => boolean;
  emitted: unknown[];
}

function fakeCall(opts: { token?: string; cn?: string; peer?: string } = {}): FakeCall {
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set(AUTH_METADATA_KEY, opts.token);
  const emitted: unknown[] = [];
  return {
    metadata,
    getAuthContext: () => (opts.cn ? { sslPeerCertificate: { subject: { CN: opts.cn } } } : {}),
    getPeer: () => opts.peer ?? "ipv4:10.1.2.3:5555",
    emit: (event, status) => (emitted.push([event, status]), true),
    emitted,
  };
}

/** The guarded service, with handlers that record that they ran. */
function setup(o: { secret?: Uint8Array; requireNodeCert?: boolean }) {
  const ran: string[] = [];
  const lines: string[] = [];
  const def = kvstorePackage().NodeService.service;
  const impl = Object.fromEntries(
    Object.keys(def).map((name) => [name, (_call: unknown, cb?: (e: unknown, r: unknown) => void) => {
      ran.push(name);
      cb?.(null, {});
    }]),
  ) as unknown as grpc.UntypedServiceImplementation;
  const guarded = guardNodeService(def, impl, {
    secret: o.secret,
    requireNodeCert: o.requireNodeCert ?? false,
    nodeIds: NODES,
    windowMs: 60_000,
    log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }),
    now: () => T,
  });
  const unary = (name: string, call: FakeCall) => {
    let answer: unknown;
    (guarded[name] as unknown as (c: FakeCall, cb: (e: unknown) => void) => void)(call, (e) => answer = e);
    return answer as { code: number; details: string } | null;
  };
  return { guarded, ran, lines, unary };
}

const path = (m: string) => `/kvstore.NodeService/${m}`;

Deno.test("without a secret or TLS the service is returned as it is", () => {
  const def = kvstorePackage().NodeService.service;
  const impl = {} as grpc.UntypedServiceImplementation;
  assert.equal(
    guardNodeService(def, impl, {
      requireNodeCert: false,
      nodeIds: NODES,
      windowMs: 1,
      log: new Logger({ level: "error", format: "text" }),
    }),
    impl,
  );
});

Deno.test("with a secret, only calls with a valid token for their own method reach the handler", () => {
  const s = setup({ secret: SECRET });
  assert.equal(
    s.unary("Replicate", fakeCall({ token: signToken(SECRET, path("Replicate"), "node2", T) })),
    null,
  );
  const refused = s.unary("Replicate", fakeCall({ token: signToken(SECRET, path("Heartbeat"), "node2", T) }));
  assert.equal(refused?.code, grpc.status.UNAUTHENTICATED);
  assert.match(refused!.details, /^Replicate refused: node credentials do not match the cluster secret$/);
  assert.match(s.unary("Heartbeat", fakeCall())!.details, /Heartbeat refused: no node credentials/);
  const stranger = s.unary(
    "Heartbeat",
    fakeCall({ token: signToken(SECRET, path("Heartbeat"), "node9", T) }),
  );
  assert.match(stranger!.details, /"node9" is not a node of this cluster/);
  assert.equal(s.unary("GetMembership", fakeCall()), null, "GetMembership stays open");
  assert.deepEqual(s.ran, ["Replicate", "GetMembership"]);
});

Deno.test("a refused stream ends with the UNAUTHENTICATED status instead of running", () => {
  const s = setup({ secret: SECRET });
  const call = fakeCall();
  (s.guarded.StreamRecords as unknown as (c: FakeCall) => void)(call);
  assert.deepEqual(s.ran, []);
  assert.equal(call.emitted.length, 1);
  const [event, status] = call.emitted[0] as [string, { code: number; details: string }];
  assert.equal(event, "error");
  assert.equal(status.code, grpc.status.UNAUTHENTICATED);
  assert.match(status.details, /^StreamRecords refused: no node credentials/);
});

Deno.test("under TLS a caller needs a certificate naming a configured node", () => {
  const s = setup({ requireNodeCert: true });
  assert.match(s.unary("Replicate", fakeCall())!.details, /no client certificate signed by the cluster's CA/);
  assert.match(
    s.unary("Replicate", fakeCall({ cn: "kvstore-client" }))!.details,
    /"kvstore-client" does not name a node/,
  );
  assert.equal(s.unary("Replicate", fakeCall({ cn: "node2" })), null);
  // With both, both are needed.
  const both = setup({ secret: SECRET, requireNodeCert: true });
  assert.notEqual(both.unary("Replicate", fakeCall({ cn: "node2" })), null);
  const token = signToken(SECRET, path("Replicate"), "node2", T);
  assert.notEqual(both.unary("Replicate", fakeCall({ token })), null);
  assert.equal(both.unary("Replicate", fakeCall({ token, cn: "node2" })), null);
});

Deno.test("refusals are logged once per source address per interval", () => {
  const s = setup({ secret: SECRET });
  for (let i = 0; i < 5; i++) s.unary("Replicate", fakeCall({ peer: `ipv4:10.1.2.3:${5000 + i}` }));
  s.unary("Replicate", fakeCall({ peer: "ipv6:[::1]:7000" }));
  assert.equal(s.lines.length, 2, s.lines.join("\n"));
  assert.match(
    s.lines[0],
    /WARN .*refused an unauthenticated NodeService call source=10\.1\.2\.3 method=Replicate/,
  );
  assert.match(s.lines[1], /source=::1 /);
});

Deno.test("the signing interceptor puts the signer's token for the call's method in the metadata", async () => {
  const signer = new TokenSigner(SECRET, "node1", 1000, () => T);
  const interceptor = signingInterceptor(signer);
  let sent: grpc.Metadata | undefined;
  const next = () =>
    ({
      start: (metadata: grpc.Metadata) => sent = metadata,
      sendMessage() {},
      halfClose() {},
      cancelWithStatus() {},
      getPeer: () => "",
    }) as unknown as grpc.InterceptingCall;
  const call = interceptor(
    { method_definition: { path: path("Heartbeat") } } as grpc.InterceptorOptions,
    next,
  );
  call.start(new grpc.Metadata(), {});
  await Promise.resolve();
  assert.equal(sent?.get(AUTH_METADATA_KEY)[0], signToken(SECRET, path("Heartbeat"), "node1", T));
});

Deno.test("a joining node or an operator needs only a valid token for JoinCluster and ChangeMembership", () => {
  const s = setup({ secret: SECRET });
  const as = (method: string, id: string) => fakeCall({ token: signToken(SECRET, path(method), id, T) });
  assert.equal(s.unary("JoinCluster", as("JoinCluster", "node9")), null);
  assert.equal(s.unary("ChangeMembership", as("ChangeMembership", "operator")), null);
  // Every other call still needs a member, and every call the secret.
  assert.match(s.unary("Heartbeat", as("Heartbeat", "node9"))!.details, /"node9" is not a node/);
  assert.match(s.unary("JoinCluster", fakeCall())!.details, /no node credentials/);
  assert.deepEqual(s.ran, ["JoinCluster", "ChangeMembership"]);
});

/** Some handlers behind the gate with the secret, the members asked on every call. */
function guardWithMembers(impl: object, members: () => string[], recheckMs?: number) {
  return guardNodeService(kvstorePackage().NodeService.service, impl as grpc.UntypedServiceImplementation, {
    secret: SECRET,
    requireNodeCert: false,
    nodeIds: members,
    windowMs: 60_000,
    log: new Logger({ level: "error", format: "text" }),
    now: () => T,
    recheckMs,
  });
}

Deno.test("the node ids may follow the membership: a function is asked on every call", () => {
  const ran: string[] = [];
  const impl = {
    Heartbeat: (_c: unknown, cb: (e: unknown, r: unknown) => void) => (ran.push("hb"), cb(null, {})),
  };
  let members = ["node1"];
  const guarded = guardWithMembers(impl, () => members);
  const call = () => {
    let answer: unknown;
    const c = fakeCall({ token: signToken(SECRET, path("Heartbeat"), "node4", T) });
    (guarded.Heartbeat as unknown as (c: FakeCall, cb: (e: unknown) => void) => void)(c, (e) => answer = e);
    return answer as { code: number } | null;
  };
  assert.equal(call()?.code, grpc.status.UNAUTHENTICATED);
  members = ["node1", "node4"];
  assert.equal(call(), null);
  assert.deepEqual(ran, ["hb"]);
});

Deno.test("a long-lived stream ends UNAUTHENTICATED once its caller is no longer a node, and stops checking when it ends", async () => {
  const opened: string[] = [];
  const impl = { ForwardStream: () => opened.push("stream") };
  let members = ["node1", "node2"];
  const guarded = guardWithMembers(impl, () => members, 10);
  const open = () => {
    const call = Object.assign(
      new EventEmitter(),
      fakeCall({ token: signToken(SECRET, path("ForwardStream"), "node2", T) }),
    );
    const emitted: unknown[] = [];
    call.emit = (
      event: string,
      status: unknown,
    ) => (emitted.push([event, status]), EventEmitter.prototype.emit.call(call, event, status));
    (guarded.ForwardStream as unknown as (c: unknown) => void)(call);
    return { call, emitted };
  };
  const kept = open();
  const ended = open();
  assert.deepEqual(opened, ["stream", "stream"]);
  ended.call.emit("finish", undefined); // this one ends on its own: no more checks
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(kept.emitted, [], "a member's stream stays open");
  members = ["node1"];
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(kept.emitted.length, 1);
  const [event, status] = kept.emitted[0] as [string, { code: number; details: string }];
  assert.equal(event, "error");
  assert.equal(status.code, grpc.status.UNAUTHENTICATED);
  assert.match(status.details, /^ForwardStream ended: "node2" is no longer a node of this cluster$/);
  assert.deepEqual(
    ended.emitted.map((x) => (x as [string])[0]),
    ["finish"],
    "the ended stream was not checked again",
  );
});
