/**
 * TLS credentials for the gRPC server and channels.
 *
 * A node serves both services over TLS with its certificate and asks every
 * caller for a client certificate signed by the cluster's CA. With
 * `require_client_cert` a caller without one is refused during the
 * handshake; without it the handshake succeeds and only NodeService refuses
 * the call (node_guard.ts), so plain TLS clients keep using KeyValueStore.
 *
 * Channels verify the server against the CA. Deno's node:tls refuses an IP
 * address as the TLS server name, so for an IP target the channel sends a
 * placeholder name and checks the certificate's IP subject alternative name
 * against the target itself (grpc-js calls our checkServerIdentity).
 */
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { NodeSecurity } from "./settings.ts";

/** The TLS files a client (or a node calling its peers) uses. */
export interface ClientTls {
  /** CA to verify servers against; the system's roots without one. */
  ca?: Buffer;
  /** Client certificate and key, for mutual TLS. */
  cert?: Buffer;
  key?: Buffer;
}

/** Server name sent for IP targets; the certificate is checked against the IP instead. */
const IP_TARGET_NAME = "kvstore-node.invalid";

/** The server's credentials: plaintext without `tls`. */
export function serverCredentials(tls: NodeSecurity["tls"]): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const creds = grpc.ServerCredentials.createSsl(
    tls.ca,
    [{ private_key: tls.key, cert_chain: tls.cert }],
    true,
  );
  if (!tls.requireClientCert) {
    // grpc-js can only request a client certificate by requiring it; this
    // keeps the request (so a node's certificate is checked and seen by
    // node_guard.ts) but lets clients without one finish the handshake.
    const options = (creds as unknown as { serverConstructorOptions: { rejectUnauthorized?: boolean } })
      .serverConstructorOptions;
    options.rejectUnauthorized = false;
  }
  return creds;
}

/** Credentials and extra channel options for a channel to `address` ("host:port"). */
export function channelCredentials(
  address: string,
  tls: ClientTls | undefined,
): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  const host = hostOf(address);
  const credentials = grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, {
    checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert),
  });
  const options = isIP(host)
    ? { "grpc.ssl_target_name_override": IP_TARGET_NAME, "grpc.default_authority": IP_TARGET_NAME }
    : {};
  return { credentials, options };
}

/** The host of "host:port" or "[v6]:port". */
function hostOf(address: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(address) ?? /^(.*):\d+$/.exec(address);
  return m ? m[1] : address;
}
