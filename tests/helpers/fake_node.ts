/**
 * A NodeService server inside the test process with only the methods given
 * (the others answer UNIMPLEMENTED): a peer, seed or outsider that behaves in
 * one chosen way, on a free port, plaintext.
 */
import * as grpc from "@grpc/grpc-js";
import { kvstorePackage } from "../../lib/grpc/proto.ts";
import { freePort } from "./ports.ts";

/** A running fake node; `stop` lets its calls finish. */
export interface FakeNode {
  port: number;
  address: string;
  stop: () => Promise<void>;
}

/** Serves `impl` as NodeService on 127.0.0.1 and a free port. */
export async function fakeNodeService(impl: grpc.UntypedServiceImplementation): Promise<FakeNode> {
  const server = new grpc.Server();
  server.addService(kvstorePackage().NodeService.service, impl);
  const port = freePort();
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (e) => e ? reject(e) : resolve(),
    )
  );
  return {
    port,
    address: `127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
