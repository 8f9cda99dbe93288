/**
 * Tests of the NodeService gate with fake calls: which calls reach their
 * handler, the status and reason of refused ones (unary and streaming),
 * tokens bound to their target, request and sequence, roles (joiner,
 * operator, members under their own names, certificates), the receiver's
 * clock on a refusal for time, the drain period of a removed node, and one
 * warning per source and interval.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { guardNodeService, verifiedCaller } from "../lib/security/node_guard.ts";
import { signingInterceptor } from "../lib/security/call_signing.ts";
import { AUTH_METADATA_KEY, RECEIVER_TIME_KEY, requestDigest, TokenSigner } from "../lib/security/token.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { Logger } from "../lib/log.ts";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const T = 1_800_000_000_000;
const NODES = ["node1", "node2"];
const SELF = "node1";
const DEF = kvstorePackage().NodeService.service;

interface FakeCall {
  metadata: grpc.Metadata;
  request?: unknown;
  getAuthContext: () => { sslPeerCertificate?: { subject: { CN: string } } };
  getPeer: () => string;
  emit: (event: string, status: unknown) => boolean;
  emitted: unknown[];
}

function fakeCall(opts: { token?: string; cn?: string; peer?: string; request?: unknown } = {}): FakeCall {
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set(AUTH_METADATA_KEY, opts.token);
  const emitted: unknown[] = [];
  return {
    metadata,
    request: opts.request ?? {},
    getAuthContext: () => (opts.cn ? { sslPeerCertificate: { subject: { CN: opts.cn } } } : {}),
    getPeer: () => opts.peer ?? "ipv4:10.1.2.3:5555",
    emit: (event, status) => (emitted.push([event, status]), true),
    emitted,
  };
}

const path = (m: string) => `/kvstore.NodeService/${m}`;
const signer = (id: string, clock = () => T) => new TokenSigner(SECRET, id, clock);

/** A data call's token from `id` to `target`. */
function dataToken(id: string, method: string, target = SELF): string {
  return signer(id).data(path(method), target);
}

/** A control call from `id` carrying `request`, its token bound to it. */
function controlCall(id: string, method: string, request: unknown, o: { target?: string; cn?: string } = {}) {
  const digest = requestDigest(DEF[method].requestSerialize(request));
  return fakeCall({ request, cn: o.cn, token: signer(id).control(path(method), o.target ?? SELF, digest) });
}

/** The guarded service, with handlers that record that they ran. */
function setup(
  o: { secret?: Uint8Array; requireNodeCert?: boolean; members?: () => string[]; drainMs?: number },
) {
  const ran: string[] = [];
  const lines: string[] = [];
  let now = T;
  const impl = Object.fromEntries(
    Object.keys(DEF).map((name) => [name, (call: object, cb?: (e: unknown, r: unknown) => void) => {
      ran.push(`${name}:${verifiedCaller(call) ?? "-"}`);
      cb?.(null, {});
    }]),
  ) as unknown as grpc.UntypedServiceImplementation;
  let epoch = 0;
  let last = "";
  const guarded = guardNodeService(DEF, impl, {
    secret: o.secret,
    requireNodeCert: o.requireNodeCert ?? false,
    self: SELF,
    nodeIds: o.members
      ? () => {
        const ids = o.members!();
        if (ids.join() !== last) (last = ids.join(), epoch++);
        return { epoch, members: ids.map((id) => ({ id })) };
      }
      : NODES,
    drainMs: o.drainMs,
    windowMs: 60_000,
    log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }),
    now: () => now,
    recheckMs: 10,
  });
  const unary = (name: string, call: FakeCall) => {
    let answer: unknown;
    (guarded[name] as unknown as (c: FakeCall, cb: (e: unknown) => void) => void)(call, (e) => answer = e);
    return answer as { code: number; details: string; metadata?: grpc.Metadata } | null;
  };
  return { guarded, ran, lines, unary, setNow: (t: number) => now = t };
}

Deno.test("without a secret or TLS the service is returned as it is", () => {
  const impl = {} as grpc.UntypedServiceImplementation;
  const log = new Logger({ level: "error", format: "text" });
  assert.equal(
    guardNodeService(DEF, impl, { requireNodeCert: false, self: SELF, nodeIds: NODES, windowMs: 1, log }),
    impl,
  );
});

Deno.test("with a secret, only calls with a valid token for their own method and this node reach the handler", () => {
  const s = setup({ secret: SECRET });
  assert.equal(s.unary("Replicate", fakeCall({ token: dataToken("node2", "Replicate") })), null);
  const refused = s.unary("Replicate", fakeCall({ token: dataToken("node2", "Heartbeat") }));
  assert.equal(refused?.code, grpc.status.UNAUTHENTICATED);
  assert.match(refused!.details, /^Replicate refused: node credentials do not match the cluster secret$/);
  assert.match(
    s.unary("Replicate", fakeCall({ token: dataToken("node2", "Replicate", "node3") }))!.details,
    /made for "node3", not this node/,
  );
  assert.match(s.unary("Heartbeat", fakeCall())!.details, /Heartbeat refused: no node credentials/);
  const stranger = s.unary("Heartbeat", fakeCall({ token: dataToken("node9", "Heartbeat") }));
  assert.match(stranger!.details, /"node9" is not a node of this cluster/);
  assert.equal(s.unary("GetMembership", fakeCall()), null, "GetMembership stays open");
  assert.deepEqual(s.ran, ["Replicate:node2", "GetMembership:-"]);
});

Deno.test("a data token is accepted once; a control token once, for its own request and target", () => {
  const s = setup({ secret: SECRET });
  const token = dataToken("node2", "Replicate");
  assert.equal(s.unary("Replicate", fakeCall({ token })), null);
  assert.match(s.unary("Replicate", fakeCall({ token }))!.details, /already used \(a replay\)/);
  const list = { epoch: 7, members: [] };
  const push = controlCall("node2", "PushMembership", list);
  assert.equal(s.unary("PushMembership", push), null);
  assert.match(s.unary("PushMembership", push)!.details, /already used/, "the same call again");
  const token2 = controlCall("node2", "PushMembership", list).metadata.get(AUTH_METADATA_KEY)[0] as string;
  const otherList = fakeCall({ token: token2, request: { epoch: 1_000_000_000, members: [] } });
  assert.match(
    s.unary("PushMembership", otherList)!.details,
    /do not match the cluster secret and this request/,
  );
  assert.match(
    s.unary("PushMembership", controlCall("node2", "PushMembership", list, { target: "node3" }))!.details,
    /made for "node3"/,
  );
  assert.deepEqual(s.ran, ["Replicate:node2", "PushMembership:node2"]);
});

Deno.test("a token refused for its time carries the receiver's clock in a trailer", () => {
  const s = setup({ secret: SECRET });
  const late = fakeCall({ token: signer("node2", () => T - 61_000).data(path("Heartbeat"), SELF) });
  const refused = s.unary("Heartbeat", late)!;
  assert.match(refused.details, new RegExp(`expired or not yet valid.*receiver's clock ${T}`));
  assert.equal(refused.metadata?.get(RECEIVER_TIME_KEY)[0], String(T));
});

Deno.test("a refused stream ends with the UNAUTHENTICATED status instead of running", () => {
  const s = setup({ secret: SECRET });
  const call = fakeCall();
  (s.guarded.StreamRecords as unknown as (c: FakeCall) => void)(call);
  assert.deepEqual(s.ran, []);
  const [event, status] = call.emitted[0] as [string, { code: number; details: string }];
  assert.equal(event, "error");
  assert.equal(status.code, grpc.status.UNAUTHENTICATED);
  assert.match(status.details, /^StreamRecords refused: no node credentials/);
});

Deno.test("under TLS a caller needs a certificate naming a node, and the token must name the certificate", () => {
  const s = setup({ requireNodeCert: true });
  assert.match(s.unary("Replicate", fakeCall())!.details, /no client certificate signed by the cluster's CA/);
  assert.match(
    s.unary("Replicate", fakeCall({ cn: "kvstore-client" }))!.details,
    /"kvstore-client" is not a node/,
  );
  assert.equal(s.unary("Replicate", fakeCall({ cn: "node2" })), null);
  const both = setup({ secret: SECRET, requireNodeCert: true });
  assert.notEqual(both.unary("Replicate", fakeCall({ cn: "node2" })), null);
  assert.notEqual(both.unary("Replicate", fakeCall({ token: dataToken("node2", "Replicate") })), null);
  const asOther = both.unary("Replicate", fakeCall({ cn: "node1", token: dataToken("node2", "Replicate") }));
  assert.match(asOther!.details, /the token names "node2" but the certificate "node1"/);
  assert.equal(
    both.unary("Replicate", fakeCall({ cn: "node2", token: dataToken("node2", "Replicate") })),
    null,
  );
});

Deno.test("roles: a client certificate cannot change, join or push; a joiner joins only as itself", () => {
  const s = setup({ requireNodeCert: true });
  const change = { kind: "CHANGE_REMOVE", node_id: "node2" };
  assert.match(
    s.unary("ChangeMembership", fakeCall({ cn: "kvstore-client", request: change }))!.details,
    /is not a node/,
  );
  assert.match(
    s.unary("PushMembership", fakeCall({ cn: "kvstore-client", request: {} }))!.details,
    /is not a node/,
  );
  const join = (cn: string, id: string) => s.unary("JoinCluster", fakeCall({ cn, request: { node_id: id } }));
  assert.equal(join("kvstore-client", "evil")?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(join("node9", "node9"), null);
  assert.match(join("node9", "node8")!.details, /only as itself \("node9"\), not "node8"/);
  const beat = s.unary("Heartbeat", fakeCall({ cn: "node2", request: { node_id: "node1" } }));
  assert.match(beat!.details, /the request names "node1" but comes from "node2"/);
  assert.deepEqual(s.ran, ["JoinCluster:node9"]);
});

Deno.test("roles with a secret: the operator may remove and nothing else; a joiner joins as itself", () => {
  const s = setup({ secret: SECRET });
  const remove = { kind: "CHANGE_REMOVE", node_id: "node2" };
  assert.equal(s.unary("ChangeMembership", controlCall("operator", "ChangeMembership", remove)), null);
  const join = { kind: "CHANGE_JOIN", node_id: "node9", host: "10.0.0.9", port: 1 };
  assert.equal(
    s.unary("ChangeMembership", controlCall("operator", "ChangeMembership", join))?.code,
    grpc.status.PERMISSION_DENIED,
  );
  assert.match(
    s.unary("Replicate", fakeCall({ token: dataToken("operator", "Replicate") }))!.details,
    /"operator" is not a node/,
  );
  assert.equal(s.unary("JoinCluster", controlCall("node9", "JoinCluster", { node_id: "node9" })), null);
  assert.match(
    s.unary("JoinCluster", controlCall("node9", "JoinCluster", { node_id: "node8" }))!.details,
    /only as itself/,
  );
  assert.match(
    s.unary("JoinCluster", fakeCall({ request: { node_id: "node9" } }))!.details,
    /no node credentials/,
  );
  assert.equal(
    s.unary("JoinCluster", controlCall("node2", "JoinCluster", { node_id: "node7" })),
    null,
    "a member",
  );
  assert.deepEqual(s.ran, ["ChangeMembership:operator", "JoinCluster:node9", "JoinCluster:node2"]);
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

/** Runs one call through `interceptor`; resolves to the metadata it started with. */
async function intercepted(interceptor: grpc.Interceptor, method: string, message: unknown) {
  let sent: grpc.Metadata | undefined;
  const next = () =>
    ({
      start: (metadata: grpc.Metadata) => sent = metadata,
      sendMessage() {},
      sendMessageWithContext() {},
      halfClose() {},
      cancelWithStatus() {},
      getPeer: () => "",
    }) as unknown as grpc.InterceptingCall;
  const def = DEF[method];
  const call = interceptor(
    {
      method_definition: { path: def.path, requestSerialize: def.requestSerialize },
    } as unknown as grpc.InterceptorOptions,
    next,
  );
  call.start(new grpc.Metadata(), {});
  await Promise.resolve();
  const beforeMessage = sent;
  call.sendMessage(message);
  await Promise.resolve();
  return { beforeMessage, sent: sent?.get(AUTH_METADATA_KEY)[0] as string | undefined };
}

Deno.test("the signing interceptor signs data calls at start, and control calls over their message", async () => {
  const interceptor = signingInterceptor(signer("node2"), { target: () => SELF, stream: "control" });
  const hb = await intercepted(interceptor, "Heartbeat", { node_id: "node2" });
  assert.ok(hb.beforeMessage, "a data call starts at once");
  const s = setup({ secret: SECRET });
  assert.equal(s.unary("Heartbeat", fakeCall({ token: hb.sent, request: { node_id: "node2" } })), null);
  const list = { epoch: 3, members: [{ node_id: "node1", host: "h", port: 1 }] };
  const push = await intercepted(interceptor, "PushMembership", list);
  assert.equal(push.beforeMessage, undefined, "a control call waits for its message");
  // The receiver decodes the message (defaults filled in) and hashes it again: the same digest.
  const decoded = DEF.PushMembership.requestDeserialize(DEF.PushMembership.requestSerialize(list));
  assert.equal(s.unary("PushMembership", fakeCall({ token: push.sent, request: decoded })), null);
  assert.deepEqual(s.ran, ["Heartbeat:node2", "PushMembership:node2"]);
});

Deno.test("a removed node may call for the drain period after this node sees it leave, then not", () => {
  let members = ["node1", "node2"];
  const s = setup({ secret: SECRET, members: () => members, drainMs: 5000 });
  const beat = () =>
    s.unary("Heartbeat", fakeCall({ token: dataToken("node2", "Heartbeat"), request: { node_id: "node2" } }));
  assert.equal(beat(), null);
  members = ["node1"];
  s.setNow(T + 1000);
  assert.equal(beat(), null, "draining");
  s.setNow(T + 6001);
  assert.match(beat()!.details, /"node2" is not a node of this cluster/);
  members = ["node1", "node2"];
  assert.equal(beat(), null, "back as a member");
});

Deno.test("a long-lived stream ends UNAUTHENTICATED once its caller may no longer call, and stops checking when it ends", async () => {
  const opened: string[] = [];
  let members = ["node1", "node2"];
  const s = setup({ secret: SECRET, members: () => members, drainMs: 0 });
  const open = () => {
    const call = Object.assign(new EventEmitter(), fakeCall({ token: dataToken("node2", "ForwardStream") }));
    const emitted: unknown[] = [];
    call.emit = (
      event: string,
      status: unknown,
    ) => (emitted.push([event, status]), EventEmitter.prototype.emit.call(call, event, status));
    (s.guarded.ForwardStream as unknown as (c: unknown) => void)(call);
    opened.push("stream");
    return { call, emitted };
  };
  const kept = open();
  const ended = open();
  ended.call.emit("finish", undefined);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(kept.emitted, [], "a member's stream stays open");
  members = ["node1"];
  s.setNow(T + 1);
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
