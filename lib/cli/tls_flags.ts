/**
 * The TLS flags the client and the load generator share:
 * `--tls`, `--ca FILE`, `--cert FILE`, `--key FILE`.
 */
import { readFileSync } from "node:fs";
import type { Buffer } from "node:buffer";
import type { ClientTls } from "../security/tls.ts";
import { errorMessage } from "../errors.ts";
import { UsageError } from "./common.ts";

/** parseArgs options of the TLS flags. */
export const TLS_FLAGS = {
  tls: { type: "boolean" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

/** Help lines of the TLS flags. */
export const TLS_HELP = `  --tls                speak TLS to the nodes (default: plaintext)
  --ca FILE            CA to verify the nodes against (implies --tls; default: the system's roots)
  --cert FILE          client certificate, for clusters with require_client_cert (with --key)
  --key FILE           its private key`;

/** The client's TLS settings from its flags, or undefined for plaintext. */
export function clientTlsFrom(
  values: { tls?: boolean; ca?: string; cert?: string; key?: string },
): ClientTls | undefined {
  if (!values.tls && values.ca === undefined && values.cert === undefined && values.key === undefined) {
    return undefined;
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("--cert and --key go together");
  }
  return {
    ca: values.ca === undefined ? undefined : read(values.ca, "--ca"),
    cert: values.cert === undefined ? undefined : read(values.cert, "--cert"),
    key: values.key === undefined ? undefined : read(values.key, "--key"),
  };
}

function read(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${errorMessage(err)}`);
  }
}
