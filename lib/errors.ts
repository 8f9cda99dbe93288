/**
 * Errors that carry a status code clients understand.
 *
 * The codes are gRPC's numbers, so the edge passes them through unchanged,
 * but nothing here depends on gRPC: the core logic throws these and stays
 * testable without sockets.
 */

/** Status codes the store answers with (gRPC's numbering). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** One of the {@link Code} values. */
export type StatusCode = (typeof Code)[keyof typeof Code];

/** An error with a status code and a message meant for the client. */
export class KvError extends Error {
  constructor(readonly code: StatusCode, message: string) {
    // A message may quote a caller's key; grpc-js URI-encodes status details
    // and throws (crashing the node) on a lone surrogate, so none is kept.
    super(message.toWellFormed());
    this.name = "KvError";
  }
}

/** A peer could not be reached (refused, timed out, reset): try another. */
export class PeerUnavailableError extends KvError {
  constructor(readonly peer: string, reason: string, code: StatusCode = Code.UNAVAILABLE) {
    super(code, `node ${peer} unreachable: ${reason}`);
    this.name = "PeerUnavailableError";
  }
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
