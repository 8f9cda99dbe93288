/**
 * The standard gRPC health service (grpc.health.v1.Health, Check and Watch).
 *
 * Load balancers and orchestrator probes ask it whether to route to this
 * node. The answer follows the node: SERVING only while it is ACTIVE with
 * healthy storage; NOT_SERVING while it is JOINING (recovering, or its clock
 * is off to its peers: clock_watch.ts), while its storage is unreachable, and from the moment it starts shutting down, before
 * its calls drain, so balancers move away first. The empty service name is
 * the whole server; "kvstore.KeyValueStore" is answered the same way. The
 * state is polled (a few times a second), so Watch streams see changes.
 */
import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation, service as healthService, type ServingStatus } from "grpc-health-check";
import type { KvNode } from "../node.ts";

/** Service names the health service answers for. */
export const HEALTH_SERVICES = ["", "kvstore.KeyValueStore"] as const;

/** How often the node's state is re-read. */
const POLL_MS = 200;

/** The health service of one node, and how to mark it as shutting down. */
export interface NodeHealth {
  /** What the service answers now. */
  status(): ServingStatus;
  /** NOT_SERVING from now on (the node is shutting down). */
  shutdown(): void;
}

/** The gRPC definition of grpc.health.v1.Health (for reflection). */
export const HEALTH_DEFINITION = healthService;

/** Whether a node should receive traffic: ACTIVE, storage healthy, not stopping. */
export function servingStatus(node: KvNode, stopping: boolean): ServingStatus {
  return !stopping && node.status() === "ACTIVE" && node.storage.healthy() ? "SERVING" : "NOT_SERVING";
}

/** Adds the health service to a server and keeps it in step with the node. */
export function addHealthService(server: grpc.Server, node: KvNode): NodeHealth {
  let stopping = false;
  let current = servingStatus(node, stopping);
  const impl = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, current])));
  impl.addToServer(server);
  const update = () => {
    const next = servingStatus(node, stopping);
    if (next === current) return;
    current = next;
    for (const s of HEALTH_SERVICES) impl.setStatus(s, next);
  };
  const timer = setInterval(update, POLL_MS);
  Deno.unrefTimer(timer);
  return {
    status: () => current,
    shutdown: () => {
      stopping = true;
      update();
      clearInterval(timer);
    },
  };
}
