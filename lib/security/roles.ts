/**
 * What an authenticated caller may do on NodeService: the roles.
 *
 * - A node (a current member, or one draining out, callers.ts) may call
 *   every method; the messages that name their sender (Heartbeat's node_id,
 *   the pulls' requesting_node_id) must name the caller itself, so a member
 *   cannot act under another member's name.
 * - A joiner (not a member) may call JoinCluster for itself alone: the
 *   request's node_id must be its name, and under TLS its certificate must
 *   be a node certificate (server use), not a client one. A member may ask
 *   for any join, as it may propose one with ChangeMembership.
 * - The operator (`client remove-node`): with the cluster secret, a token
 *   made under the name "operator" may call ChangeMembership to remove a
 *   node and nothing else; with TLS alone, the operator presents a node's
 *   certificate and acts as that node.
 * A client certificate names no member, so it gets none of these; it may
 * still call KeyValueStore, GetMembership, health and reflection, which
 * this gate does not cover.
 */
import type { CallerSet } from "./callers.ts";

/** The name a `client remove-node` signs its token with when it holds the cluster secret. */
export const OPERATOR_ID = "operator";

/** The request field that names the sender, per method that has one. */
const SENDER_FIELD: Record<string, string> = {
  Heartbeat: "node_id",
  StreamRecords: "requesting_node_id",
  GetDigests: "requesting_node_id",
  StreamBuckets: "requesting_node_id",
};

/** Who the call proved it comes from. */
export interface Caller {
  id: string;
  /** Whether a token made with the cluster secret proved the id. */
  bySecret: boolean;
  /** The caller's certificate allows server use (a node's, not a client's), under TLS. */
  nodeCert?: boolean;
}

/** Why a role refuses a call; `stranger` when the caller is no node at all (UNAUTHENTICATED, not PERMISSION_DENIED). */
export interface RoleRefusal {
  reason: string;
  stranger: boolean;
}

/** Why `caller` may not make this call of `method` with `request`, or undefined when it may. */
export function roleRefusal(
  method: string,
  caller: Caller,
  request: unknown,
  callers: CallerSet,
): RoleRefusal | undefined {
  // A member may ask for any join (it may propose one with ChangeMembership anyway).
  if (method === "JoinCluster" && !callers.has(caller.id)) return joinerRefusal(caller, request);
  if (method === "ChangeMembership" && caller.id === OPERATOR_ID && caller.bySecret) {
    const kind = (request as { kind?: unknown } | undefined)?.kind;
    return kind === "CHANGE_REMOVE"
      ? undefined
      : denied(`the operator may only remove nodes (not ${String(kind)})`);
  }
  if (!callers.has(caller.id)) {
    return { reason: `"${caller.id}" is not a node of this cluster`, stranger: true };
  }
  const named = senderNamed(method, request);
  if (named !== undefined && named !== "" && named !== caller.id) {
    return denied(`the request names "${named}" but comes from "${caller.id}"`);
  }
  return undefined;
}

/** A caller that is not a member may ask to join as itself, with a node's certificate under TLS. */
function joinerRefusal(caller: Caller, request: unknown): RoleRefusal | undefined {
  const named = (request as { node_id?: unknown } | undefined)?.node_id;
  if (named !== caller.id) {
    return denied(`a joiner may ask to join only as itself ("${caller.id}"), not "${named}"`);
  }
  if (caller.nodeCert === false) {
    return denied(`certificate "${caller.id}" is a client certificate, not a node's`);
  }
  return undefined;
}

function denied(reason: string): RoleRefusal {
  return { reason, stranger: false };
}

function senderNamed(method: string, request: unknown): string | undefined {
  const field = SENDER_FIELD[method];
  if (!field || typeof request !== "object" || request === null) return undefined;
  const v = (request as Record<string, unknown>)[field];
  return typeof v === "string" ? v : undefined;
}

const EKU_OID = [0x06, 0x03, 0x55, 0x1d, 0x25];
const SERVER_AUTH_OID = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/**
 * Whether a DER certificate may serve as a node's: it has no extended key
 * usage (any use), or its usages include server authentication. `main.ts
 * certs` gives nodes serverAuth and clientAuth, the client clientAuth only.
 */
export function allowsServerUse(der: Uint8Array): boolean {
  const eku = indexOf(der, EKU_OID, 0);
  return eku < 0 || indexOf(der, SERVER_AUTH_OID, eku) >= 0;
}

function indexOf(hay: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
