/**
 * etcd as a row of the benchmark: three members started on free ports in a
 * temporary directory, and a load client speaking etcd's own gRPC KV API.
 *
 * The client is a plain one like the store's any-node client: it sends
 * calls round-robin over the three members (a follower passes a Put to the
 * leader, as a kvstore node forwards to the owner). Puts are etcd Puts;
 * gets are Ranges of one key with etcd's default, linearizable, reads;
 * batches are one Txn of that many Puts or Ranges. The messages are a small
 * subset of etcd's rpc.proto (same field numbers), embedded here, so only
 * the `etcd` binary is needed (Debian: etcd-server).
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { Buffer } from "node:buffer";
import { Code, KvError } from "../lib/errors.ts";
import { statusError, unary } from "../lib/grpc/call.ts";
import type { PutItem, ValueInput } from "../lib/grpc/kv_client.ts";
import type { LoadClient } from "../lib/bench/load.ts";
import type { ReadResult, WriteResult } from "../lib/transport.ts";
import { freePort } from "../tests/helpers/ports.ts";
import { Proc, type ProcessGroup, sleep } from "./_procs.ts";

const ETCD_PROTO = `syntax = "proto3";
package etcdserverpb;
service KV {
  rpc Range(RangeRequest) returns (RangeResponse);
  rpc Put(PutRequest) returns (PutResponse);
  rpc Txn(TxnRequest) returns (TxnResponse);
}
message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
message KeyValue {
  bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3; int64 version = 4; bytes value = 5;
  int64 lease = 6;
}
message RangeRequest { bytes key = 1; bytes range_end = 2; int64 limit = 3; int64 revision = 4; bool serializable = 7; }
message RangeResponse { ResponseHeader header = 1; repeated KeyValue kvs = 2; bool more = 3; int64 count = 4; }
message PutRequest { bytes key = 1; bytes value = 2; int64 lease = 3; }
message PutResponse { ResponseHeader header = 1; }
message RequestOp { oneof request { RangeRequest request_range = 1; PutRequest request_put = 2; } }
message ResponseOp { oneof response { RangeResponse response_range = 1; PutResponse response_put = 2; } }
message TxnRequest { repeated RequestOp success = 2; }
message TxnResponse { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; }
`;

interface KeyValueMsg {
  key: Uint8Array;
  value: Uint8Array;
  mod_revision: number;
}
interface RangeResponseMsg {
  header: { revision: number };
  kvs: KeyValueMsg[];
}
interface PutResponseMsg {
  header: { revision: number; member_id: number };
}
interface TxnResponseMsg {
  header: { revision: number };
  responses: { response_range?: RangeResponseMsg; response_put?: PutResponseMsg }[];
}

/** The path of the `etcd` binary, if it is installed. */
export function etcdPath(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/etcd`).isFile) return `${dir}/etcd`;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** Three running etcd members. */
export interface EtcdCluster {
  addresses: string[];
  procs: Proc[];
  stop(): Promise<void>;
}

/** Starts three members in `dir` on free ports; resolves once a Put through each one succeeds. */
export async function startEtcd(group: ProcessGroup, dir: string): Promise<EtcdCluster> {
  const members = [1, 2, 3].map((i) => ({ name: `etcd${i}`, client: freePort(), peer: freePort() }));
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  const procs = members.map((m) => {
    const args = [
      ...["--name", m.name, "--data-dir", `${dir}/${m.name}`],
      ...["--listen-client-urls", `http://127.0.0.1:${m.client}`],
      ...["--advertise-client-urls", `http://127.0.0.1:${m.client}`],
      ...["--listen-peer-urls", `http://127.0.0.1:${m.peer}`],
      ...["--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`],
      ...["--initial-cluster", initial, "--initial-cluster-token", "kvstore-bench"],
      ...["--initial-cluster-state", "new", "--logger", "zap", "--log-level", "warn"],
      // The benchmark's preload writes 500 keys per Txn (etcd's default limit is 128).
      ...["--max-txn-ops", "1000"],
    ];
    const proc = new Proc(m.name, etcdPath() ?? "etcd", args);
    group.add({ stop: () => proc.stop("SIGKILL") }, m.name);
    return proc;
  });
  const cluster: EtcdCluster = {
    addresses: members.map((m) => `127.0.0.1:${m.client}`),
    procs,
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    },
  };
  const deadline = Date.now() + 60_000;
  for (const address of cluster.addresses) {
    const probe = new EtcdClient([address], 2000);
    while (true) {
      const dead = procs.find((p) => !p.running);
      if (dead) throw new Error(`${dead.name} exited while starting:\n${dead.output()}`);
      try {
        await probe.put("bench-ready", "1");
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`etcd did not start: ${(err as Error).message}`);
        await sleep(200);
      }
    }
  }
  return cluster;
}

/** The benchmark's load client for etcd: round-robin over the members. */
export class EtcdClient implements LoadClient {
  readonly #stubs: grpc.Client[];
  #turn = 0;

  constructor(readonly addresses: string[], private readonly timeoutMs = 5000) {
    const root = protobuf.parse(ETCD_PROTO, { keepCase: true }).root;
    const def = protoLoader.fromJSON(root.toJSON(), {
      keepCase: true,
      longs: Number,
      defaults: true,
      arrays: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      etcdserverpb: { KV: grpc.ServiceClientConstructor };
    };
    const creds = grpc.credentials.createInsecure();
    this.#stubs = addresses.map((a) => new pkg.etcdserverpb.KV(a, creds, { "grpc.enable_channelz": 0 }));
  }

  async put(key: string, value: ValueInput): Promise<WriteResult> {
    const res = await this.#call<PutResponseMsg>("Put", { key: bytes(key), value: bytes(value) });
    return written(key, res.header.revision);
  }

  async get(key: string): Promise<ReadResult> {
    return readOf(key, await this.#call<RangeResponseMsg>("Range", { key: bytes(key) }));
  }

  delete(key: string): Promise<WriteResult> {
    throw new KvError(Code.UNIMPLEMENTED, `etcd client: delete of ${key} is not part of the benchmark`);
  }

  async multiPut(items: readonly PutItem[]): Promise<WriteResult[]> {
    const res = await this.#call<TxnResponseMsg>("Txn", {
      success: items.map((i) => ({ request_put: { key: bytes(i.key), value: bytes(i.value) } })),
    });
    return items.map((i) => written(i.key, res.header.revision));
  }

  async multiGet(keys: readonly string[]): Promise<ReadResult[]> {
    const res = await this.#call<TxnResponseMsg>("Txn", {
      success: keys.map((k) => ({ request_range: { key: bytes(k) } })),
    });
    return keys.map((k, i) => readOf(k, res.responses[i].response_range!));
  }

  multiDelete(keys: readonly string[]): Promise<WriteResult[]> {
    throw new KvError(Code.UNIMPLEMENTED, `etcd client: delete of ${keys.length} keys is not benchmarked`);
  }

  async #call<Res>(method: string, req: unknown): Promise<Res> {
    try {
      return await unary<Res>(this.#stubs[this.#turn++ % this.#stubs.length], method, req, this.timeoutMs);
    } catch (err) {
      throw statusError(err);
    }
  }
}

function written(key: string, revision: number): WriteResult {
  return {
    key,
    ok: true,
    code: Code.OK,
    message: "stored",
    nodeId: "etcd",
    replicas: 3,
    timestamp: revision,
  };
}

function readOf(key: string, res: RangeResponseMsg): ReadResult {
  const kv = res.kvs[0];
  return {
    key,
    found: kv !== undefined,
    value: kv?.value ?? new Uint8Array(0),
    timestamp: kv?.mod_revision ?? 0,
    nodeId: "etcd",
    code: Code.OK,
    message: kv ? "found" : "key not found",
  };
}

function bytes(v: ValueInput): Uint8Array {
  return typeof v === "string" ? Buffer.from(v, "utf8") : v;
}
