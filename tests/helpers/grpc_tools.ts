/**
 * Clients of the standard gRPC services a node offers beside the store's
 * own: health checking (grpc.health.v1) and server reflection (v1), built the
 * way a generic tool would, from the services' public protos.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";

/** A grpc.health.v1.Health client. */
export function healthClient(address: string): grpc.Client {
  const Health = grpc.makeGenericClientConstructor(healthService, "Health");
  return new Health(address, grpc.credentials.createInsecure());
}

type CheckMethod = (
  req: unknown,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: { status: string }) => void,
) => void;

/** Health Check of a service ("" = the whole server): SERVING, NOT_SERVING, or the error. */
export function healthCheck(client: grpc.Client, service = ""): Promise<string> {
  const check = (client as unknown as Record<string, CheckMethod>).Check;
  return new Promise((resolve) => {
    check.call(client, { service }, { deadline: Date.now() + 2000 }, (err, res) => {
      resolve(err ? `error ${err.code}: ${err.details}` : String(res.status));
    });
  });
}

/** Starts a Health Watch stream; every status it sends is pushed onto `seen`. */
export function healthWatch(
  client: grpc.Client,
  seen: string[],
  service = "",
): grpc.ClientReadableStream<unknown> {
  const watch = (client as unknown as Record<string, (req: unknown) => grpc.ClientReadableStream<unknown>>)
    .Watch;
  const call = watch.call(client, { service });
  call.on("data", (m: { status: string }) => seen.push(String(m.status)));
  call.on("error", () => seen.push("(stream ended)"));
  return call;
}

const REFLECTION_PROTO = new URL(
  "../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
  import.meta.url,
).pathname;

/** One request on a reflection stream (grpc.reflection.v1), and its answer. */
function reflect(address: string, request: Record<string, string>): Promise<Record<string, unknown>> {
  const def = protoLoader.loadSync(REFLECTION_PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  const call = (client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, unknown>>)
    .ServerReflectionInfo.call(client);
  return new Promise((resolve, reject) => {
    call.on("data", (m: Record<string, unknown>) => {
      resolve(m);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  });
}

/** The service names a server lists through reflection. */
export async function reflectedServices(address: string): Promise<string[]> {
  const m = await reflect(address, { list_services: "" }) as {
    list_services_response?: { service: { name: string }[] };
  };
  return (m.list_services_response?.service ?? []).map((s) => s.name).sort();
}

/** The serialized file descriptors reflection gives for a symbol (what `grpcurl describe` reads). */
export async function reflectedFiles(address: string, symbol: string): Promise<Uint8Array[]> {
  const m = await reflect(address, { file_containing_symbol: symbol }) as {
    file_descriptor_response?: { file_descriptor_proto: Uint8Array[] };
    error_response?: { error_message: string };
  };
  if (m.error_response) throw new Error(m.error_response.error_message);
  return m.file_descriptor_response?.file_descriptor_proto ?? [];
}
