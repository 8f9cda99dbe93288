/**
 * Loads the gRPC service definitions from the embedded proto file.
 *
 * The proto text is imported as a module (not read from disk at run time),
 * so `deno compile` embeds it and the executable needs no file beside it.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import protoText from "../../proto/kvstore.proto" with { type: "text" };

/** How messages look in JavaScript: field names as in the proto, int64 as number, enums as names. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
};

/**
 * With `defaults: true`, protobufjs gives every decoded message a fresh empty
 * Buffer for each bytes field before setting the real value: one wasted
 * allocation per value on every request. Empty defaults share one buffer
 * instead (it has no bytes, so nothing can change it).
 */
const EMPTY_BYTES = protobuf.util.newBuffer(0);
const newBuffer = protobuf.util.newBuffer;
protobuf.util.newBuffer = (sizeOrArray?: number | number[]) =>
  Array.isArray(sizeOrArray) && sizeOrArray.length === 0 ? EMPTY_BYTES : newBuffer(sizeOrArray);

/**
 * Messages are plain objects with int64 fields as numbers (`longs: Number`),
 * yet with the `long` package present protobufjs turns every int64 into a
 * Long object on the way (`fromObject` before encoding, `decode` before
 * `toObject`): two objects per timestamp of every item of every batch.
 * Without it protobufjs reads and writes int64 as numbers directly, the same
 * values (microsecond timestamps are far below 2^53; a larger int64 loses
 * precision either way). This is protobufjs's documented switch for it.
 */
protobuf.util.Long = null as unknown as typeof protobuf.util.Long;
protobuf.configure();

/** The `kvstore` package: its two service constructors. */
export interface KvstorePackage {
  KeyValueStore: grpc.ServiceClientConstructor;
  NodeService: grpc.ServiceClientConstructor;
}

/** The embedded `proto/kvstore.proto`. */
export const PROTO_TEXT: string = protoText;

/** The package definition (services, messages and their descriptors) of proto text. */
export function kvstoreDefinition(text: string = PROTO_TEXT): protoLoader.PackageDefinition {
  const root = protobuf.parse(text, { keepCase: true }).root;
  return protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
}

/** Builds the service definitions from proto text (the embedded one by default). */
export function loadKvstorePackage(text: string = PROTO_TEXT): KvstorePackage {
  const loaded = grpc.loadPackageDefinition(kvstoreDefinition(text)) as unknown as {
    kvstore: KvstorePackage;
  };
  return loaded.kvstore;
}

let cached: KvstorePackage | undefined;

/** The embedded package, built once per process. */
export function kvstorePackage(): KvstorePackage {
  return cached ??= loadKvstorePackage();
}
