/**
 * The ceiling of the benchmark: a gRPC server that answers the store's
 * client calls from a plain in-process Map, with nothing else to do.
 *
 * It speaks the same proto (lib/grpc/proto.ts) with the same channel options
 * as a node, and answers messages of the same shape, so the cost of a call
 * here is what gRPC on this runtime costs by itself: no node of the cluster
 * can be faster per call. Run in its own process:
 *
 *   deno run -A bench/ceiling_server.ts --port PORT
 *
 * It prints `listening on PORT` once it serves and stops on SIGINT/SIGTERM.
 */
import * as grpc from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import { channelOptions } from "../lib/grpc/call.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import type {
  GetRequestMsg,
  GetResponseMsg,
  MultiGetRequestMsg,
  MultiPutRequestMsg,
  PutRequestMsg,
  PutResponseMsg,
} from "../lib/grpc/messages.ts";

const NODE_ID = "ceiling";
const EMPTY = new Uint8Array(0);

/** A stored value with the version a node would keep beside it. */
interface Held {
  value: Uint8Array;
  timestamp: number;
}

/** Starts the ceiling server on a port; resolves to the server and the bound port. */
export async function serveCeiling(port: number): Promise<{ server: grpc.Server; port: number }> {
  const map = new Map<string, Held>();
  let clock = 0;
  const put = (req: PutRequestMsg): PutResponseMsg => {
    const timestamp = req.timestamp || Math.max(Date.now() * 1000, ++clock);
    clock = timestamp;
    map.set(req.key, { value: req.value, timestamp });
    return {
      success: true,
      message: "stored",
      node_id: NODE_ID,
      replicas_count: 1,
      error_code: 0,
      timestamp,
    };
  };
  const get = (key: string): GetResponseMsg => {
    const held = map.get(key);
    return {
      found: held !== undefined,
      value: held?.value ?? EMPTY,
      message: held ? "found" : "key not found",
      node_id: NODE_ID,
      timestamp: held?.timestamp ?? 0,
      error_code: 0,
      key,
    };
  };
  const server = new grpc.Server(channelOptions(64 << 20));
  server.addService(kvstorePackage().KeyValueStore.service, {
    Put: (
      call: grpc.ServerUnaryCall<PutRequestMsg, PutResponseMsg>,
      cb: grpc.sendUnaryData<PutResponseMsg>,
    ) => cb(null, put(call.request)),
    Get: (
      call: grpc.ServerUnaryCall<GetRequestMsg, GetResponseMsg>,
      cb: grpc.sendUnaryData<GetResponseMsg>,
    ) => cb(null, get(call.request.key)),
    MultiPut: (
      call: grpc.ServerUnaryCall<MultiPutRequestMsg, unknown>,
      cb: grpc.sendUnaryData<{ results: PutResponseMsg[] }>,
    ) => cb(null, { results: call.request.items.map(put) }),
    MultiGet: (
      call: grpc.ServerUnaryCall<MultiGetRequestMsg, unknown>,
      cb: grpc.sendUnaryData<{ results: GetResponseMsg[] }>,
    ) => cb(null, { results: call.request.keys.map(get) }),
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  return { server, port: bound };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" } } });
  const { server, port } = await serveCeiling(Number(values.port ?? 0));
  console.log(`listening on ${port}`);
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => resolve());
  });
  server.forceShutdown();
  Deno.exit(0);
}
