/**
 * The secret and certificates a node or client works with, read once.
 *
 * The cluster file names them (`security.*`, see config.ts); this module
 * reads the files into the Buffers gRPC wants (grpc-js checks
 * `Buffer.isBuffer`, so `node:fs` is used, not `Deno.readFileSync`) and
 * fails fast, naming the setting, when one cannot be used. A node with
 * neither a secret nor TLS says so at startup (`warnIfOpen`), since anyone
 * who reaches its port can then act as a node.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { type ClusterConfig, ConfigError, type NodeConfig } from "../config.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";

/** A secret shorter than this is refused: it could be guessed. */
export const MIN_SECRET_BYTES = 16;

/** PEM files of one TLS endpoint. */
export interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** What a node needs to authenticate its peers and to be authenticated. */
export interface NodeSecurity {
  /** The cluster secret, when node traffic carries HMAC tokens. */
  secret?: Buffer;
  /** The node's TLS files, when both services speak TLS. */
  tls?: TlsFiles & { requireClientCert: boolean };
}

/** Reads the secret and this node's TLS files named by the cluster file. */
export function loadNodeSecurity(config: ClusterConfig, self: NodeConfig): NodeSecurity {
  const sec = config.security;
  const out: NodeSecurity = {};
  if (sec.clusterSecret !== undefined) {
    out.secret = checkSecret(
      Buffer.from(sec.clusterSecret, "utf8"),
      config.source,
      "security.cluster_secret",
    );
  }
  if (sec.clusterSecretFile !== undefined) {
    const path = "security.cluster_secret_file";
    // A trailing newline (echo ... > file) is not part of the secret.
    const text = readFile(sec.clusterSecretFile, config.source, path).toString("utf8").replace(/\s+$/, "");
    out.secret = checkSecret(Buffer.from(text, "utf8"), config.source, path);
  }
  if (sec.tls) {
    out.tls = {
      ca: readFile(sec.tls.caFile, config.source, "security.tls.ca_file"),
      cert: readFile(self.tlsCertFile!, config.source, "security.tls.cert_file"),
      key: readFile(self.tlsKeyFile!, config.source, "security.tls.key_file"),
      requireClientCert: sec.tls.requireClientCert,
    };
  }
  return out;
}

/** Reads a file into a Buffer; a failure names the setting that named the file. */
export function readFile(file: string, source: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(source, setting, `cannot read ${file}: ${errorMessage(err)}`);
  }
}

function checkSecret(secret: Buffer, source: string, setting: string): Buffer {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      source,
      setting,
      `the secret is ${secret.length} bytes; at least ${MIN_SECRET_BYTES}`,
    );
  }
  return secret;
}

/** A new random cluster secret: `bytes` random bytes as hex text (what a secret file holds). */
export function randomSecret(bytes = 32): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * The TLS a tool run beside the cluster (the `cluster` command's probe)
 * uses: the cluster's CA, and the first node's certificate for clusters
 * that require one. Undefined for a plaintext cluster.
 */
export function operatorTls(config: ClusterConfig): TlsFiles | undefined {
  if (!config.security.tls) return undefined;
  return loadNodeSecurity(config, config.nodes[0]).tls;
}

/** Says at startup when anyone who reaches the port can act as a node. */
export function warnIfOpen(log: Logger, security: NodeSecurity): void {
  if (security.secret || security.tls) return;
  log.warn(
    "node traffic is unauthenticated: anyone who reaches this port can replicate, forward and delete " +
      "as a node; set security.cluster_secret_file (and security.tls) in the cluster file",
  );
}
