/**
 * The client commands `expire KEY DURATION` and `persist KEY`: conditional
 * writes at the version read (../grpc/set_expiry.ts), so a write made
 * meanwhile is never overwritten by the value read. Exit 0 when the expiry
 * was changed (or PERSIST found none to remove), 1 when the key was not
 * found or expired first; UNAVAILABLE says what conditional writes need.
 */
import type { KvClient } from "../grpc/kv_client.ts";
import { type ExpiryChange, setExpiry } from "../grpc/set_expiry.ts";
import { formatVersion } from "../lwt/ops.ts";
import { Code, errorMessage, KvError } from "../errors.ts";
import { EXIT } from "./common.ts";

/** Runs `expire` (`ttlMs`) or `persist` (null) on `key` and prints the outcome; resolves with the exit code. */
export async function expiryCommand(client: KvClient, key: string, ttlMs: number | null, json: boolean) {
  const op = ttlMs === null ? "PERSIST" : "EXPIRE";
  let change: ExpiryChange;
  try {
    change = await setExpiry(client, key, ttlMs);
  } catch (err) {
    if (!(err instanceof KvError) || err.code !== Code.UNAVAILABLE) throw err;
    throw new KvError(
      Code.UNAVAILABLE,
      `${errorMessage(err)} (${op} is a conditional write: it needs a majority of the key's replicas, ` +
        `at replication factor 2 both of them; try again once they are reachable)`,
    );
  }
  console.log(
    json ? JSON.stringify(jsonOf(op, key, ttlMs, change)) : `${op} ${key}: ${textOf(ttlMs, change)}`,
  );
  return change.outcome === "applied" || change.outcome === "unchanged" ? EXIT.OK : EXIT.NOT_FOUND;
}

function textOf(ttlMs: number | null, c: ExpiryChange): string {
  switch (c.outcome) {
    case "absent":
      return `not found (nothing to ${ttlMs === null ? "persist" : "expire"})`;
    case "gone":
      return "expired or deleted before the change applied (nothing written)";
    case "unchanged":
      return "no expiry (nothing written)";
    case "applied": {
      const what = ttlMs === null ? "expiry removed" : `expires in ${ttlMs} ms`;
      const races = c.attempts > 1 ? `, after ${c.attempts - 1} lost race(s)` : "";
      return `applied, ${what} (node ${c.nodeId}, version ${formatVersion(c.version)}${races})`;
    }
  }
}

function jsonOf(op: string, key: string, ttlMs: number | null, c: ExpiryChange): Record<string, unknown> {
  const base = { op, key, outcome: c.outcome, applied: c.outcome === "applied", ttl_ms: ttlMs };
  if (c.outcome !== "applied") return base;
  return { ...base, node: c.nodeId, version: formatVersion(c.version), attempts: c.attempts };
}
