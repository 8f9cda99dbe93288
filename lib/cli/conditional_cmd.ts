/**
 * The client commands of conditional writes and counters: `put --if-absent
 * | --if-exists | --if-version V`, `delete --if-version V`, `incr KEY
 * [DELTA]` (`--float`: INCRBYFLOAT). A version is printed and given as
 * `TIMESTAMP@NODE` (`get --version` prints it). A conditional write that is
 * not applied exits 1 and prints the key's current value and version.
 */
import { Buffer } from "node:buffer";
import type { ConditionalWrite, KvClient } from "../grpc/kv_client.ts";
import type { ReadResult } from "../transport.ts";
import { type Condition, formatVersion, parseVersion } from "../lwt/ops.ts";
import { EXIT, UsageError } from "./common.ts";

/** The condition flags of put and delete. */
export interface ConditionFlags {
  "if-absent"?: boolean;
  "if-exists"?: boolean;
  "if-version"?: string;
}

export const CONDITION_HELP = `  --if-absent          put: only if KEY is absent (per-key consensus)
  --if-exists          put/delete: only if KEY exists
  --if-version V       put/delete: only if KEY's version is V (TIMESTAMP@NODE, see get --version)
  --version            get: print the version as TIMESTAMP@NODE
  --float              incr: DELTA is a float (INCRBYFLOAT)`;

/** The condition the flags name, or undefined when none (a plain write). */
export function conditionFrom(f: ConditionFlags): Condition | undefined {
  const named = [f["if-absent"], f["if-exists"], f["if-version"] !== undefined].filter(Boolean).length;
  if (named > 1) throw new UsageError("give one of --if-absent, --if-exists, --if-version");
  if (f["if-absent"]) return { kind: "absent" };
  if (f["if-exists"]) return { kind: "exists" };
  if (f["if-version"] !== undefined) return { kind: "version", version: parseVersion(f["if-version"]) };
  return undefined;
}

/** Prints a conditional write's answer; exit 0 applied, 1 not applied. */
export function printConditional(r: ConditionalWrite, op: string, key: string, json: boolean): number {
  const current = r.current && {
    value: Buffer.from(r.current.value).toString("utf8"),
    version: formatVersion(r.current.version),
  };
  const text = r.applied
    ? `${op} ${key}: applied (node ${r.nodeId}, version ${formatVersion(r.version!)})`
    : `${op} ${key}: NOT APPLIED (${r.message}${
      current ? `; current "${current.value}" version ${current.version}` : ""
    })`;
  const obj = {
    op,
    key,
    applied: r.applied,
    message: r.message,
    node: r.nodeId,
    version: r.version && formatVersion(r.version),
    current,
  };
  console.log(json ? JSON.stringify(obj) : text);
  return r.applied ? EXIT.OK : EXIT.NOT_FOUND;
}

/** `incr KEY [DELTA]`: prints the new value. */
export async function incrCommand(
  client: KvClient,
  rest: string[],
  float: boolean,
  json: boolean,
): Promise<number> {
  if (rest.length < 1 || rest.length > 2) throw new UsageError("usage: client incr KEY [DELTA] [--float]");
  const [key, delta] = rest;
  let r;
  if (float) {
    if (delta === undefined) throw new UsageError("incr --float needs DELTA");
    r = await client.incrementFloat(key, Number(delta));
  } else {
    if (delta !== undefined && !/^-?\d+$/.test(delta)) {
      throw new UsageError(`DELTA "${delta}" is not an integer`);
    }
    r = await client.increment(key, delta === undefined ? 1n : BigInt(delta));
  }
  const obj = { op: "INCR", key, value: r.value, node: r.nodeId, version: formatVersion(r.version) };
  console.log(json ? JSON.stringify(obj) : r.value);
  return EXIT.OK;
}

/** The version of a read, as `get --version` prints it. */
export function readVersion(r: ReadResult): string {
  return r.found ? formatVersion({ timestamp: r.timestamp, versionNode: r.versionNode ?? "" }) : "";
}
