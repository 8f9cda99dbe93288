/**
 * Who `client remove-node` acts as, from the credentials it was given.
 *
 * - A node certificate (`--tls-cert`/`--tls-key` of a member; server use,
 *   roles.ts): the operator acts as that node, signing tokens (with the
 *   secret, when given) under the certificate's name, which TLS requires.
 * - The cluster secret without a node certificate: tokens made under the
 *   name "operator", which nodes accept for removing a node only; over TLS
 *   nodes refuse it (a token's name must be its certificate's).
 * - Neither: the call goes unsigned; nodes with a secret or TLS refuse it.
 * The command prints which one it used.
 */
import { X509Certificate } from "node:crypto";
import { allowsServerUse, OPERATOR_ID } from "./roles.ts";
import type { ClientTls } from "./tls.ts";

/** The name tokens are made under (undefined: unsigned) and a line saying which credential that is. */
export interface OperatorIdentity {
  signAs?: string;
  credential: string;
}

/** The operator's identity from its TLS files and whether it holds the secret. */
export function operatorIdentity(tls: ClientTls | undefined, hasSecret: boolean): OperatorIdentity {
  const node = tls?.cert ? nodeCertName(tls.cert) : undefined;
  const secret = hasSecret ? " and the cluster secret" : "";
  if (node) {
    return { signAs: hasSecret ? node : undefined, credential: `node certificate "${node}"${secret}` };
  }
  const cert = tls?.cert ? "client certificate, " : "";
  if (hasSecret) return { signAs: OPERATOR_ID, credential: `${cert}cluster secret (as "${OPERATOR_ID}")` };
  return { credential: tls?.cert ? "client certificate only (no node credential)" : "none" };
}

/** The common name of a PEM certificate that may serve as a node's, or undefined. */
function nodeCertName(pem: Uint8Array): string | undefined {
  try {
    const cert = new X509Certificate(pem);
    if (!allowsServerUse(new Uint8Array(cert.raw))) return undefined;
    return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  } catch {
    return undefined;
  }
}
