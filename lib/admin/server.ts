/**
 * The admin HTTP listener of a node (Deno.serve on its bind address and
 * `admin_port`): what operators and their tools look at.
 *
 *   /metrics           Prometheus text format
 *   /healthz           200 while the process runs
 *   /readyz            200 while the node should get traffic (as the gRPC
 *                      health service says: ACTIVE, storage up, not stopping),
 *                      503 with the reason otherwise
 *   /                  the status page (ring, nodes, ops/s, p99), refreshing itself
 *   /status.json       the page's data: this node and every peer's admin listener
 *   /status/self.json  this node alone (what peers ask for)
 *   /inspect.json?key= the key inspector: where a key lives and each copy's
 *                      version, never its value (client token, rate limit:
 *                      inspect_gate.ts)
 */
import type { KvNode } from "../node.ts";
import type { NodeHealth } from "../grpc/health.ts";
import type { NodeMetrics } from "./node_metrics.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
import { clusterStatus, selfStatus } from "./status.ts";
import { STATUS_PAGE } from "./page.ts";
import { InspectGate } from "./inspect_gate.ts";
import { inspectKey, type KeyPlaces, placesOf } from "./inspect.ts";

/** Options of {@link serveAdmin}. */
export interface AdminOptions {
  node: KvNode;
  metrics: NodeMetrics;
  health: NodeHealth;
  hostname: string;
  port: number;
  /** The client token (security.client_token_file): the key inspector needs it. */
  clientToken?: Uint8Array;
}

/** A running admin listener. */
export interface AdminServer {
  port: number;
  shutdown(): Promise<void>;
}

/** How long /status.json waits for a peer's admin listener. */
const PEER_TIMEOUT_MS = 800;

/** Starts the admin listener unless its port is 0; throws when the port cannot be bound. */
export function startAdmin(o: AdminOptions): AdminServer | undefined {
  if (o.port === 0) return undefined;
  let server;
  try {
    server = serve(o);
  } catch (err) {
    throw new Error(`cannot start the admin listener on ${o.hostname}:${o.port}: ${(err as Error).message}`);
  }
  return { port: server.addr.port, shutdown: () => server.shutdown() };
}

function serve(o: AdminOptions): Deno.HttpServer<Deno.NetAddr> {
  const gate = new InspectGate({
    clientToken: o.clientToken,
    maxKeyBytes: o.node.config.limits.maxKeyBytes,
    log: o.node.log,
    events: o.node.events,
  });
  const places = placesOf(o.node);
  return Deno.serve(
    { hostname: o.hostname, port: o.port, onListen: () => {} },
    (req, info) =>
      route(req, o, () => inspect(req, places, gate, (info.remoteAddr as Deno.NetAddr).hostname))
        .catch((err) => text(500, `error: ${(err as Error).message}\n`)),
  );
}

async function route(req: Request, o: AdminOptions, inspector: () => Promise<Response>): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") return text(405, "only GET\n");
  switch (new URL(req.url).pathname) {
    case "/metrics":
      return new Response(await o.metrics.registry.render(), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    case "/healthz":
      return text(200, "ok\n");
    case "/readyz":
      return readiness(o);
    case "/status.json":
      return json(await clusterStatus(o.node, o.metrics, { timeoutMs: PEER_TIMEOUT_MS }));
    case "/status/self.json":
      return json(selfStatus(o.node, o.metrics));
    case "/inspect.json":
      return await inspector();
    case "/":
      return new Response(STATUS_PAGE, {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    default:
      return text(404, "not found: try /, /metrics, /healthz, /readyz, /status.json, /inspect.json?key=\n");
  }
}

async function inspect(
  req: Request,
  places: KeyPlaces,
  gate: InspectGate,
  source: string,
): Promise<Response> {
  const key = new URL(req.url).searchParams.get("key");
  const admitted = gate.admit(key, req.headers.get("authorization"), source);
  if (typeof admitted !== "string") return json({ error: admitted.message }, admitted.status);
  return json(await inspectKey(places, admitted));
}

function readiness(o: AdminOptions): Response {
  if (o.health.status() === "SERVING") return text(200, "ready\n");
  const reason = o.node.notServingReason();
  const why = reason === undefined
    ? "shutting down"
    : o.node.storage.healthy()
    ? `node is ${o.node.status()}: ${reason}`
    : reason;
  return text(503, `not ready: ${why}\n`);
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}
