/**
 * Checks a node's own TLS files before it uses them: the certificate must
 * be issued by the CA the node trusts and name the node (common name = its
 * id), since peers admit a NodeService caller by that name (node_guard.ts).
 * A node started with `--join` has no cluster file to have been checked
 * against, so this tells a misconfigured joiner what is wrong at once
 * instead of after a refused handshake.
 */
import { X509Certificate } from "node:crypto";
import type { TlsFiles } from "./settings.ts";
import { errorMessage } from "../errors.ts";

/** Why `files` cannot serve as node `id`'s TLS identity, or undefined when they can. */
export function nodeCertProblem(files: TlsFiles, id: string): string | undefined {
  let cert: X509Certificate, ca: X509Certificate;
  try {
    cert = new X509Certificate(files.cert);
  } catch (err) {
    return `the certificate is not a PEM certificate: ${errorMessage(err)}`;
  }
  try {
    ca = new X509Certificate(files.ca);
  } catch (err) {
    return `the CA file is not a PEM certificate: ${errorMessage(err)}`;
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn !== id) return `the certificate's common name is "${cn ?? ""}", not this node's id "${id}"`;
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return `the certificate (issuer "${oneLine(cert.issuer)}") is not signed by the CA "${
      oneLine(ca.subject)
    }"`;
  }
  const now = Date.now();
  if (Date.parse(cert.validTo) < now) return `the certificate expired on ${cert.validTo}`;
  if (Date.parse(cert.validFrom) > now) return `the certificate is not valid before ${cert.validFrom}`;
  return undefined;
}

function oneLine(dn: string): string {
  return dn.split("\n").join(", ");
}
