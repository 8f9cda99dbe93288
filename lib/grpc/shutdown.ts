/**
 * Ending a gRPC server within a bound.
 *
 * `tryShutdown` stops listening, sends every connection a GOAWAY and waits
 * for the calls still running to finish; a call that never finishes (a
 * stream to a peer that froze) would hold it forever, so after `maxMs` the
 * server is shut down by force, cancelling what is left.
 */
import type * as grpc from "@grpc/grpc-js";

/** How the server ended: every call finished, or the rest were cancelled. */
export type ShutdownOutcome = "graceful" | "forced";

/** Shuts `server` down gracefully, by force after `maxMs`; resolves once it is down. */
export function shutdownServer(server: grpc.Server, maxMs: number): Promise<ShutdownOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve("forced");
    }, maxMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve("graceful");
    });
  });
}
