/**
 * The secret and certificates a node or client works with, read once.
 *
 * The cluster file names them (`security.*`, see config.ts); this module
 * reads the files into the Buffers gRPC wants (grpc-js checks
 * `Buffer.isBuffer`, so `node:fs` is used, not `Deno.readFileSync`) and
 * fails fast, naming the setting, when one cannot be used. What a node
 * with neither a secret nor TLS accepts is protected_mode.ts.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { type ClusterConfig, ConfigError, type NodeConfig } from "../config.ts";
import { errorMessage } from "../errors.ts";

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
  /** Take node traffic from anywhere without a secret or TLS (else protected mode: protected_mode.ts). */
  insecure?: boolean;
  /** The token KeyValueStore callers must present (client_auth.ts). */
  clientToken?: Buffer;
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
    out.secret = checkSecret(readSecretFile(sec.clusterSecretFile, config.source, path), config.source, path);
  }
  if (sec.insecure) out.insecure = true;
  if (sec.clientTokenFile !== undefined) {
    const path = "security.client_token_file";
    out.clientToken = checkSecret(
      readSecretFile(sec.clientTokenFile, config.source, path),
      config.source,
      path,
    );
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

/** A secret's file, without its trailing newline (echo ... > file), which is not part of the secret. */
function readSecretFile(file: string, source: string, setting: string): Buffer {
  return Buffer.from(readFile(file, source, setting).toString("utf8").replace(/\s+$/, ""), "utf8");
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
