/**
 * The gateway's compare-and-set loop (lib/resp/cas.ts) against a scripted
 * store: a lost race re-decides from the record the store hands back and
 * writes at its version, never unconditionally; retries are bounded and
 * end in -TRYAGAIN with nothing written; UNAVAILABLE becomes -TRYAGAIN.
 */
import assert from "node:assert/strict";
import type { KvNode } from "../lib/node.ts";
import type { KvRecord } from "../lib/record.ts";
import type { Condition } from "../lib/lwt/ops.ts";
import { Code, KvError } from "../lib/errors.ts";
import { readModifyWrite } from "../lib/resp/cas.ts";
import { MAX_ATTEMPTS } from "../lib/cas_loop.ts";
import { RespError } from "../lib/resp/args.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const rec = (value: string, timestamp: number): KvRecord => ({
  key: "k",
  value: enc.encode(value),
  timestamp,
  versionNode: "n1",
  tombstone: false,
});

/** A node whose read answers `read` and whose putIf answers from `putIf`, recording each condition. */
function fakeNode(read: KvRecord, putIf: (c: Condition) => { applied: boolean; current?: KvRecord }) {
  const conditions: Condition[] = [];
  const node = {
    config: { limits: { maxMessageBytes: 1 << 20 } },
    coordinator: {
      read: (keys: string[]) =>
        Promise.resolve(
          keys.map(() => ({ ...read, found: true, code: Code.OK, message: "", nodeId: "n1" })),
        ),
    },
    lwt: {
      putIf: (_k: string, _v: Uint8Array, c: Condition) => {
        conditions.push(c);
        return Promise.resolve(putIf(c));
      },
    },
  } as unknown as KvNode;
  return { node, conditions };
}

const append = (held: { value: Uint8Array } | undefined) => {
  const next = (held ? dec.decode(held.value) : "") + "+";
  return { write: enc.encode(next), answer: next };
};

Deno.test("a lost race re-decides from the store's current record and writes at its version", async () => {
  const newer = rec("b", 20);
  const { node, conditions } = fakeNode(
    rec("a", 10),
    (c) =>
      c.kind === "version" && c.version.timestamp === 20
        ? { applied: true }
        : { applied: false, current: newer },
  );
  assert.equal(await readModifyWrite(node, "APPEND", "k", append), "b+");
  assert.deepEqual(conditions.map((c) => c.kind === "version" ? c.version.timestamp : c.kind), [10, 20]);
});

Deno.test("retries are bounded: past them -TRYAGAIN, and every attempt was conditional", async () => {
  let n = 0;
  const { node, conditions } = fakeNode(
    rec("a", 10),
    () => ({ applied: false, current: rec("a", 11 + n++) }),
  );
  await assert.rejects(
    () => readModifyWrite(node, "APPEND", "k", append),
    (e: unknown) =>
      e instanceof RespError && e.reply.k === "err" && e.reply.s.startsWith("TRYAGAIN 'APPEND' lost"),
  );
  assert.equal(conditions.length, MAX_ATTEMPTS);
  assert.ok(conditions.every((c) => c.kind === "version"));
});

Deno.test("UNAVAILABLE from the store is -TRYAGAIN with its reason", async () => {
  const { node } = fakeNode(rec("a", 10), () => {
    throw new KvError(Code.UNAVAILABLE, "needs 2 of the key's replicas, 1 voted");
  });
  await assert.rejects(
    () => readModifyWrite(node, "GETSET", "k", append),
    (e: unknown) =>
      e instanceof RespError && e.reply.k === "err" &&
      e.reply.s === "TRYAGAIN needs 2 of the key's replicas, 1 voted",
  );
});
