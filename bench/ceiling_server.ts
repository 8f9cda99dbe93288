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
 *
 * With `--peers A,B,C --self I` it is one of three such servers that split
 * the keys by the store's ring (HashRing, ids c0..c2, 150 virtual nodes)
 * and pass each call for a key it does not own to the owner, coalesced
 * into MultiPut/MultiGet calls (a node sends its coalesced forwards as
 * frames of one stream instead), with no replication, versions or failover.
 * Three of them loaded round-robin show what a bare forward of two calls in
 * three costs on this runtime.
 */
import * as grpc from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import { channelOptions, unary } from "../lib/grpc/call.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { HashRing } from "../lib/ring.ts";
import { Coalescer } from "../lib/coalesce.ts";
import type {
  GetRequestMsg,
  GetResponseMsg,
  MultiGetRequestMsg,
  MultiGetResponseMsg,
  MultiPutRequestMsg,
  MultiPutResponseMsg,
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

/** Where the other servers of a forwarding trio listen, and which of them this one is. */
export interface Trio {
  addresses: readonly string[];
  self: number;
}

type Handler<Req, Res> = (req: Req) => Res | Promise<Res>;

/** The four methods, answering from a Map, and the Map's own put and get of one key. */
function mapHandlers() {
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
  return {
    put,
    get,
    Put: put,
    Get: (req: GetRequestMsg) => get(req.key),
    MultiPut: (req: MultiPutRequestMsg): MultiPutResponseMsg => ({ results: req.items.map(put) }),
    MultiGet: (req: MultiGetRequestMsg): MultiGetResponseMsg => ({ results: req.keys.map(get) }),
  };
}

/**
 * The same methods for one server of a trio: keys it owns are answered from
 * the Map, the rest passed to their owner. Concurrent forwards to one owner
 * leave together as one MultiPut or MultiGet (lib/coalesce.ts, which
 * batches a node's forwards too).
 */
function trioHandlers(trio: Trio, local: ReturnType<typeof mapHandlers>) {
  const ids = trio.addresses.map((_, i) => `c${i}`);
  const self = ids[trio.self];
  const ring = new HashRing(ids, 150);
  const Client = kvstorePackage().KeyValueStore;
  const clients = new Map(
    trio.addresses.flatMap((a, i) =>
      i === trio.self
        ? []
        : [[ids[i], new Client(a, grpc.credentials.createInsecure(), channelOptions(64 << 20))]]
    ),
  );
  const limits = { maxItems: 500, maxBytes: 1 << 20 };
  const puts = new Coalescer<PutRequestMsg, PutResponseMsg>(
    async (peer, items) =>
      (await unary<MultiPutResponseMsg>(
        clients.get(peer)!,
        "MultiPut",
        { items, origin_node_id: self },
        5000,
      ))
        .results,
    { ...limits, sizeOf: (r) => r.key.length + r.value.length },
  );
  const gets = new Coalescer<string, GetResponseMsg>(
    async (peer, keys) =>
      (await unary<MultiGetResponseMsg>(
        clients.get(peer)!,
        "MultiGet",
        { keys, read_from_replica: false, origin_node_id: self },
        5000,
      )).results,
    { ...limits, sizeOf: (k) => k.length },
  );
  /** Answers a batch part by part, by owner, and puts the results back in order. */
  const split = async <T, R>(
    items: T[],
    keyOf: (t: T) => string,
    part: (owner: string, items: T[]) => Promise<R[]>,
  ) => {
    const groups = new Map<string, number[]>();
    items.forEach((t, i) => {
      const owner = ring.owner(keyOf(t));
      const g = groups.get(owner);
      if (g) g.push(i);
      else groups.set(owner, [i]);
    });
    const out = new Array<R>(items.length);
    await Promise.all([...groups].map(async ([owner, at]) => {
      const results = await part(owner, at.map((i) => items[i]));
      at.forEach((i, j) => out[i] = results[j]);
    }));
    return out;
  };
  const putAll = (items: PutRequestMsg[]) =>
    split(
      items,
      (r) => r.key,
      async (owner, part) => owner === self ? part.map(local.put) : await puts.call(owner, part),
    );
  const getAll = (keys: string[]) =>
    split(
      keys,
      (k) => k,
      async (owner, part) => owner === self ? part.map(local.get) : await gets.call(owner, part),
    );
  return {
    close: () => clients.forEach((c) => c.close()),
    Put: async (req: PutRequestMsg) => (await putAll([req]))[0],
    Get: async (req: GetRequestMsg) => (await getAll([req.key]))[0],
    MultiPut: async (req: MultiPutRequestMsg) => ({ results: await putAll(req.items) }),
    MultiGet: async (req: MultiGetRequestMsg) => ({ results: await getAll(req.keys) }),
  };
}

/** Serves a handler as a grpc-js unary method. */
function serveUnary<Req, Res>(handle: Handler<Req, Res>) {
  return async (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
    try {
      cb(null, await handle(call.request));
    } catch (err) {
      cb({ code: grpc.status.UNAVAILABLE, details: String(err) });
    }
  };
}

/**
 * Starts a ceiling server on a port (one of a forwarding trio when `trio`
 * is given); resolves to the bound port and how to stop it.
 */
export async function serveCeiling(port: number, trio?: Trio): Promise<{ port: number; close: () => void }> {
  const local = mapHandlers();
  const forwarding = trio && trioHandlers(trio, local);
  const h = forwarding ?? local;
  const server = new grpc.Server(channelOptions(64 << 20));
  server.addService(kvstorePackage().KeyValueStore.service, {
    Put: serveUnary(h.Put),
    Get: serveUnary(h.Get),
    MultiPut: serveUnary(h.MultiPut),
    MultiGet: serveUnary(h.MultiGet),
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  const close = () => {
    server.forceShutdown();
    forwarding?.close();
  };
  return { port: bound, close };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { port: { type: "string" }, peers: { type: "string" }, self: { type: "string" } },
  });
  const trio = values.peers ? { addresses: values.peers.split(","), self: Number(values.self) } : undefined;
  const { port, close } = await serveCeiling(Number(values.port ?? 0), trio);
  console.log(`listening on ${port}`);
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => resolve());
  });
  close();
  Deno.exit(0);
}
