/**
 * Certificates for a cluster, made with the openssl command-line tool.
 *
 * One CA, one certificate per node (common name = node id, which NodeService
 * checks; subject alternative names = the node id and its host, as an IP
 * address or a DNS name) usable as server and as client, and one client
 * certificate (common name `kvstore-client`, client use only, so it can use
 * KeyValueStore under `require_client_cert` but never act as a node). An
 * existing CA in the folder is reused, so adding a node later issues its
 * certificate from the same CA. Keys are P-256, private keys mode 0600.
 */
import { isIP } from "node:net";

/** A node to issue a certificate for. */
export interface CertNode {
  id: string;
  host: string;
}

/** Options of {@link writeCerts}. */
export interface CertOptions {
  /** Validity of new certificates in days. */
  days?: number;
  /** The openssl executable. */
  openssl?: string;
}

/** The common name of the client certificate. */
export const CLIENT_CN = "kvstore-client";

/** Writes the CA (unless present), node and client certificates into `out`; returns the files written. */
export async function writeCerts(
  out: string,
  nodes: readonly CertNode[],
  opts: CertOptions = {},
): Promise<string[]> {
  const run = (args: string[]) => openssl(opts.openssl ?? "openssl", args, out);
  const days = String(opts.days ?? 3650);
  await Deno.mkdir(out, { recursive: true });
  const written: string[] = [];
  if (!(await exists(`${out}/ca.pem`) && await exists(`${out}/ca.key`))) {
    await run([
      "req",
      "-x509",
      ...NEW_KEY,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      days,
      "-subj",
      "/CN=kvstore cluster CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    written.push("ca.pem", "ca.key");
  }
  for (const n of nodes) {
    await issue(run, n.id, n.id, [`DNS:${n.id}`, hostName(n.host)], "serverAuth,clientAuth", days);
    written.push(`${n.id}.pem`, `${n.id}.key`);
  }
  await issue(run, "client", CLIENT_CN, [`DNS:${CLIENT_CN}`], "clientAuth", days);
  written.push("client.pem", "client.key");
  for (const f of written.filter((f) => f.endsWith(".key"))) await Deno.chmod(`${out}/${f}`, 0o600);
  for (const n of [...nodes.map((n) => n.id), "client"]) await Deno.remove(`${out}/${n}.csr`);
  return written;
}

// deno-fmt-ignore-next-line
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function issue(
  run: (args: string[]) => Promise<void>,
  file: string,
  cn: string,
  sans: string[],
  usage: string,
  days: string,
): Promise<void> {
  const ext = [
    `subjectAltName=${[...new Set(sans)].join(",")}`,
    `extendedKeyUsage=${usage}`,
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
  ].join("\n");
  const extFile = await Deno.makeTempFile({ prefix: "kvstore-ext-" });
  try {
    await Deno.writeTextFile(extFile, `${ext}\n`);
    await run(["req", ...NEW_KEY, "-keyout", `${file}.key`, "-out", `${file}.csr`, "-subj", `/CN=${cn}`]);
    await run([
      "x509",
      "-req",
      "-in",
      `${file}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${file}.pem`,
      "-days",
      days,
      "-extfile",
      extFile,
    ]);
  } finally {
    await Deno.remove(extFile);
  }
}

/** A host as a subject alternative name: IP:1.2.3.4 or DNS:name. */
function hostName(host: string): string {
  return isIP(host) ? `IP:${host}` : `DNS:${host}`;
}

async function openssl(cmd: string, args: string[], cwd: string): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(cmd, { args, cwd, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `"${cmd}" not found: install the openssl command-line tool (apt-get install -y openssl)`,
      );
    }
    throw err;
  }
  if (!result.success) {
    const stderr = new TextDecoder().decode(result.stderr).trim();
    throw new Error(`openssl ${args[0]} failed (exit ${result.code}): ${stderr}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
