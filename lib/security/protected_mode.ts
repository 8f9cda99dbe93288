/**
 * Protected mode: what keeps a node with no security settings safe.
 *
 * A node with neither a cluster secret nor TLS cannot tell a peer from
 * anyone else, so (like Redis's protected mode) it takes node traffic
 * (NodeService, `GetMembership` excepted) only from loopback addresses,
 * where every caller is on this machine. `security.insecure: true` (or
 * `server --insecure`) is the explicit way out, with a warning. A cluster
 * file whose peers are on other machines needs one of the three settings,
 * or the node refuses to start (its peers would be refused silently
 * otherwise). The check at the edge uses the connection's own address
 * (grpc-js `call.getPeer()`), nothing the caller says about itself.
 */
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { NodeConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { Throttle } from "../throttle.ts";
import { failStream } from "../grpc/call.ts";
import type { NodeSecurity } from "./settings.ts";

/** NodeService methods any caller may make: read-only, no secrets (routing clients need it). */
const OPEN_METHODS = new Set(["GetMembership"]);

/** The settings that take a node out of protected mode, as a refusal names them. */
export const WAYS_OUT =
  "set security.cluster_secret_file (a shared secret), security.tls (certificates), or security.insecure: true " +
  "(server --insecure: anyone on the network may act as a node)";

/** How a node's NodeService admits callers. */
export type SecurityMode = "authenticated" | "protected" | "insecure";

/** The mode the node's settings put it in. */
export function securityMode(security: NodeSecurity): SecurityMode {
  if (security.secret || security.tls) return "authenticated";
  return security.insecure ? "insecure" : "protected";
}

/** Whether a host (an IP literal, or "localhost") is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.x. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** The address part of a gRPC peer string ("ipv4:127.0.0.1:5000" → "127.0.0.1", "ipv6:[::1]:5000" → "::1"). */
export function peerHost(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, "");
  const m = /^\[?(.*?)\]?:\d+$/.exec(bare);
  return m ? m[1] : bare;
}

/**
 * Why node `selfId` must not start in protected mode: peers it would have
 * to refuse (on other machines), or undefined when it may start.
 */
export function unreachablePeers(
  security: NodeSecurity,
  selfId: string,
  nodes: readonly Pick<NodeConfig, "id" | "host">[],
): string | undefined {
  if (securityMode(security) !== "protected") return undefined;
  const remote = nodes.filter((n) => n.id !== selfId && !isLoopbackHost(n.host));
  if (remote.length === 0) return undefined;
  const named = remote.map((n) => `${n.id} (${n.host})`).join(", ");
  return `the cluster names nodes on non-loopback addresses (${named}) but node traffic has no protection: ` +
    `a node with no secret, no TLS and no insecure takes node calls only from loopback (protected mode); ${WAYS_OUT}`;
}

/** Says at startup which mode the node runs in, and what that means. */
export function announceMode(log: Logger, security: NodeSecurity): void {
  const mode = securityMode(security);
  if (mode === "protected") {
    log.info(
      "protected mode: no security.cluster_secret_file, no security.tls and no security.insecure, so node " +
        "traffic (NodeService) is accepted only from loopback addresses; to run nodes on other machines " +
        WAYS_OUT,
    );
  } else if (mode === "insecure") {
    log.warn(
      "security.insecure: node traffic is unauthenticated and accepted from any address: anyone who reaches " +
        "this port can replicate, forward, overwrite and delete data as a node, change the member list and " +
        "remove nodes; set security.cluster_secret_file (and security.tls) instead",
    );
  }
}

/** Options of {@link protectNodeService}. */
export interface ProtectOptions {
  log: Logger;
  /** One log line per source per this interval (default 60 s). */
  warnIntervalMs?: number;
  now?: () => number;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;
type AnyHandler = (call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => void;

/**
 * The NodeService implementation, with every method but the open ones
 * refused PERMISSION_DENIED for callers not on loopback, when the node is in
 * protected mode; the implementation itself otherwise.
 */
export function protectNodeService(
  definition: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  security: NodeSecurity,
  o: ProtectOptions,
): grpc.UntypedServiceImplementation {
  if (securityMode(security) !== "protected") return impl;
  const throttle = new Throttle(o.warnIntervalMs ?? 60_000, o.now);
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    if (OPEN_METHODS.has(name)) {
      out[name] = handler;
      continue;
    }
    const inner = handler as unknown as AnyHandler;
    const streaming = definition[name].responseStream;
    out[name] = ((call: AnyCall, cb?: grpc.sendUnaryData<unknown>) => {
      const source = peerHost(call.getPeer());
      if (isLoopbackHost(source)) return inner(call, cb);
      const held = throttle.take(source);
      if (held !== undefined) {
        o.log.warn("protected mode: refused a NodeService call from a non-loopback address", {
          source,
          method: name,
          earlier_refusals_not_logged: held,
        });
      }
      const status = {
        code: grpc.status.PERMISSION_DENIED,
        details:
          `${name} refused: this node runs in protected mode and takes node calls only from loopback ` +
          `(the caller is ${source}); ${WAYS_OUT}`,
      };
      if (streaming) failStream(call as grpc.ServerWritableStream<unknown, unknown>, status);
      else cb!(status);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}
