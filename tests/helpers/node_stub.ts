/**
 * Raw NodeService calls to one node of a test cluster, as a peer (or an
 * outsider pretending to be one) would make them. Errors come back as
 * KvError with the gRPC status code. The cluster closes each stub when it
 * stops, before its nodes.
 */
import * as grpc from "@grpc/grpc-js";
import type { TestCluster } from "./cluster.ts";
import { kvstorePackage } from "../../lib/grpc/proto.ts";
import { serverStream, statusError, unary } from "../../lib/grpc/call.ts";
import { text } from "./cluster.ts";
import { signingInterceptor } from "../../lib/security/call_signing.ts";
import { TokenSigner } from "../../lib/security/token.ts";
import { channelCredentials, type ClientTls } from "../../lib/security/tls.ts";

/** Options of {@link NodeStub}. */
export interface NodeStubOptions {
  /** The node id the calls claim to come from (default "node1"). */
  as?: string;
  /**
   * The secret the calls' tokens are made with: the cluster's by default (a
   * peer), null for none (an outsider), or another one (a wrong secret).
   */
  secret?: Uint8Array | null;
  /** The clock the tokens are made with (an expired token: a clock in the past). */
  clock?: () => number;
  /** The node id the tokens are made for (default: the node called). */
  target?: string;
  /** TLS to speak (default: the cluster harness's client TLS, else plaintext); null for plaintext. */
  tls?: ClientTls | null;
}

/** NodeService calls to one node. */
export class NodeStub {
  readonly as: string;
  readonly #client: grpc.Client;

  constructor(cluster: TestCluster, to: string, opts: NodeStubOptions = {}) {
    this.as = opts.as ?? "node1";
    const NodeService = kvstorePackage().NodeService;
    const secret = opts.secret === undefined ? cluster.secret : opts.secret ?? undefined;
    const signer = secret && new TokenSigner(secret, this.as, opts.clock);
    const interceptors = signer ? [signingInterceptor(signer, { target: () => opts.target ?? to })] : [];
    const address = cluster.node(to).address;
    const { credentials, options } = channelCredentials(
      address,
      opts.tls === undefined ? cluster.clientTls : opts.tls ?? undefined,
    );
    this.#client = new NodeService(address, credentials, { ...options, interceptors });
    cluster.closeOnStop(this);
  }

  /** Closes the stub's channel (a GOAWAY to the node, which Deno 2.9.3 survives). */
  close(): void {
    this.#client.close();
  }

  /** One unary call; rejects with a KvError carrying the status. */
  async call<Res>(method: string, req: unknown, timeoutMs = 5000): Promise<Res> {
    try {
      return await unary<Res>(this.#client, method, req, timeoutMs);
    } catch (err) {
      throw statusError(err);
    }
  }

  /** A whole server stream's messages; rejects with a KvError carrying the status. */
  async stream<Res>(method: string, req: unknown, timeoutMs = 5000): Promise<Res[]> {
    const out: Res[] = [];
    try {
      for await (const m of serverStream<Res>(this.#client, method, req, timeoutMs)) out.push(m);
    } catch (err) {
      throw statusError(err);
    }
    return out;
  }

  /**
   * A bidirectional stream: writes `frames`, half-closes, and resolves to
   * every message the node sent back once it ends the stream with OK;
   * rejects with a KvError carrying any other status.
   */
  exchange<Res>(method: string, frames: unknown[], timeoutMs = 5000): Promise<Res[]> {
    const fn = (this.#client as unknown as Record<string, DuplexMethod>)[method];
    const call = fn.call(this.#client, new grpc.Metadata(), { deadline: Date.now() + timeoutMs });
    const out: Res[] = [];
    return new Promise((resolve, reject) => {
      call.on("data", (m: unknown) => out.push(m as Res));
      call.on("error", (err) => reject(statusError(err)));
      call.on("end", () => resolve(out));
      for (const f of frames) call.write(f);
      call.end();
    });
  }
}

type DuplexMethod = (
  meta: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientDuplexStream<unknown, unknown>;

/** A ReplicateRequest as node `from` would send it. */
export function replicateItem(
  r: { key: string; value?: string; timestamp: number; from: string; op?: "PUT" | "DELETE" },
) {
  return {
    key: r.key,
    value: text.encode(r.value ?? ""),
    timestamp: r.timestamp,
    primary_node: r.from,
    operation: r.op ?? "PUT",
    version_node: r.from,
    hint_for: "",
  };
}
