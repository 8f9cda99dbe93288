/**
 * `kvstore certs`: a CA, node and client certificates in one step.
 *
 * Node ids and hosts come from the cluster file unless `--nodes` / `--hosts`
 * name them. The files are made by the openssl command-line tool
 * (lib/security/certs.ts); the command prints the `security` section to put
 * in the cluster file.
 */
import { writeCerts } from "../security/certs.ts";
import { configFrom, EXIT, parseFlags, UsageError } from "./common.ts";
import { errorMessage } from "../errors.ts";
import { isNodeId } from "../config.ts";

const HELP = `kvstore certs --out DIR [flags]

Writes a CA (ca.pem, ca.key; an existing one in DIR is reused), a certificate per node
(NODE.pem, NODE.key: common name and DNS name = the node id, plus its host as an IP or DNS
name) and a client certificate (client.pem, client.key), using the openssl command-line tool.

  --out DIR            folder to write into (created if missing)
  --nodes a,b,c        node ids (default: every node of the cluster file)
  --hosts h1,h2,h3     their hosts, in the same order (default: from the cluster file, else 127.0.0.1)
  --config FILE        cluster file (default: the embedded config/cluster.json)
  --days N             validity of the new certificates (default 3650)
  -h, --help           this help`;

/** Runs the certs mode; resolves with the exit code. */
export async function certsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    out: { type: "string" },
    nodes: { type: "string" },
    hosts: { type: "string" },
    config: { type: "string" },
    days: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.out) throw new UsageError("--out DIR is required");
  const nodes = pickNodes(values);
  const days = values.days === undefined ? 3650 : Number(values.days);
  if (!Number.isInteger(days) || days < 1) throw new UsageError(`--days must be a whole number >= 1`);
  try {
    const files = await writeCerts(values.out, nodes, { days });
    console.log(`wrote ${files.join(", ")} to ${values.out}`);
  } catch (err) {
    console.error(`error: ${errorMessage(err)}`);
    return EXIT.ERROR;
  }
  const dir = values.out;
  console.log(
    `In the cluster file: "security": { "tls": { "ca_file": "${dir}/ca.pem" } }, and in each node's entry
"tls_cert_file": "${dir}/ID.pem", "tls_key_file": "${dir}/ID.key" (relative paths are read from the
cluster file's folder). Clients: --tls --ca ${dir}/ca.pem [--cert ${dir}/client.pem --key ${dir}/client.key].`,
  );
  return EXIT.OK;
}

function pickNodes(
  values: { nodes?: string; hosts?: string; config?: string },
): { id: string; host: string }[] {
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter((x) => x !== "");
  const ids = values.nodes !== undefined ? list(values.nodes) : undefined;
  const hosts = values.hosts !== undefined ? list(values.hosts) : undefined;
  if (ids && hosts && ids.length !== hosts.length) {
    throw new UsageError(`--nodes names ${ids.length} nodes but --hosts ${hosts.length} hosts`);
  }
  if (ids) {
    for (const id of ids) {
      if (!isNodeId(id)) {
        throw new UsageError(`node id "${id}" may hold only letters, digits, _ . -`);
      }
    }
    const known = values.config !== undefined || !hosts ? configFrom(values.config).nodes : [];
    return ids.map((id, i) => ({
      id,
      host: hosts?.[i] ?? known.find((n) => n.id === id)?.host ?? "127.0.0.1",
    }));
  }
  const nodes = configFrom(values.config).nodes;
  if (hosts && hosts.length !== nodes.length) {
    throw new UsageError(
      `--hosts names ${hosts.length} hosts but the cluster file has ${nodes.length} nodes`,
    );
  }
  return nodes.map((n, i) => ({ id: n.id, host: hosts?.[i] ?? n.host }));
}
