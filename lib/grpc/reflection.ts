/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl and
 * similar tools list and call the store's services without the .proto file.
 * It describes KeyValueStore, NodeService and the health service.
 */
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { kvstoreDefinition } from "./proto.ts";
import { HEALTH_DEFINITION } from "./health.ts";

/** Adds the reflection service to a server. */
export function addReflectionService(server: grpc.Server): void {
  // Reflection reads descriptors from the definition's message types: the
  // health service's come with its request type.
  const definition = {
    ...kvstoreDefinition(),
    "grpc.health.v1.Health": HEALTH_DEFINITION,
    "grpc.health.v1.HealthCheckRequest": HEALTH_DEFINITION.Check.requestType,
  };
  new ReflectionService(definition).addToServer(server);
}
