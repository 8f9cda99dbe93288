/**
 * Tests of `lib/security/client_scans.ts`: callers' cursors are random, one
 * page each and bound to their connection; they never name a storage
 * cursor; open scans are capped per connection; idle ones expire and have
 * their storage scans closed. The clock is a parameter: no sleeping.
 */
import assert from "node:assert/strict";
import { ClientScans } from "../lib/security/client_scans.ts";
import { Code, KvError } from "../lib/errors.ts";

const A = "127.0.0.1:40001", B = "127.0.0.1:40002";

function table(max = 4) {
  let now = 1_000;
  const closed: string[] = [];
  const scans = new ClientScans({
    maxPerConnection: max,
    idleMs: 60_000,
    closeScan: (c) => closed.push(c),
    now: () => now,
  });
  return { scans, closed, advance: (ms: number) => now += ms };
}

function refusal(fn: () => unknown): KvError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KvError) return err;
    throw err;
  }
  assert.fail("was not refused");
}

/** A scan taken through one page, its storage going on at `storageCursor`: the caller's cursor. */
function firstPage(scans: ClientScans, connection: string, storageCursor: string): string {
  return scans.settle(scans.take(connection, ""), storageCursor);
}

Deno.test("a caller's cursor is 128 random bits that map to the storage cursor, on its own connection", () => {
  const { scans } = table();
  const cursor = firstPage(scans, A, "7");
  assert.match(cursor, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(cursor, "7");
  assert.notEqual(firstPage(scans, A, "8"), cursor, "each cursor is drawn afresh");
  assert.equal(scans.take(A, cursor).storageCursor, "7");
});

Deno.test("storage cursors, guessed numbers and random strings name no scan: INVALID_ARGUMENT", () => {
  const { scans } = table();
  firstPage(scans, A, "1");
  for (const guess of ["0", "1", "2", "200", "AAAAAAAAAAAAAAAAAAAAAA", "x"]) {
    assert.equal(refusal(() => scans.take(A, guess)).code, Code.INVALID_ARGUMENT, guess);
  }
});

Deno.test("a cursor from another connection is refused, and stays good on its own", () => {
  const { scans } = table();
  const cursor = firstPage(scans, A, "3");
  const err = refusal(() => scans.take(B, cursor));
  assert.equal(err.code, Code.INVALID_ARGUMENT);
  assert.match(err.message, /not handed out on this connection/);
  assert.equal(scans.take(A, cursor).storageCursor, "3");
});

Deno.test("a cursor serves one page: replayed, it is refused", () => {
  const { scans } = table();
  const cursor = firstPage(scans, A, "3");
  const lease = scans.take(A, cursor);
  assert.equal(refusal(() => scans.take(A, cursor)).code, Code.INVALID_ARGUMENT, "while its page is read");
  const next = scans.settle(lease, "4");
  assert.equal(refusal(() => scans.take(A, cursor)).code, Code.INVALID_ARGUMENT, "after its page");
  assert.equal(scans.take(A, next).storageCursor, "4");
});

Deno.test("open scans per connection are capped: a new one ends the oldest unused, pages in flight are refused", () => {
  const { scans, closed } = table(3);
  const cursors: string[] = [];
  for (let i = 0; i < 3; i++) cursors.push(firstPage(scans, A, String(i + 1)));
  assert.equal(scans.take(A, "").storageCursor, "", "a fourth scan starts");
  assert.deepEqual(closed, ["1"], "the oldest unused scan was ended");
  assert.equal(refusal(() => scans.take(A, cursors[0])).code, Code.INVALID_ARGUMENT, "its cursor is gone");
  assert.equal(scans.openScans(A), 3);
  // Three pages being read at once: nothing to end, so a fourth is refused.
  scans.take(A, cursors[1]);
  scans.take(A, cursors[2]);
  const err = refusal(() => scans.take(A, ""));
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.match(err.message, /limits\.max_scans_per_connection/);
  assert.equal(scans.take(B, "").storageCursor, "", "another connection still opens scans");
  assert.equal(scans.openScans(A), 3);
});

Deno.test("a scan paged to its end, or failed, frees its place", () => {
  const { scans, closed } = table(1);
  const cursor = firstPage(scans, A, "5");
  assert.equal(scans.settle(scans.take(A, cursor), ""), "", "the last page hands out no cursor");
  assert.equal(scans.openScans(A), 0);
  const again = firstPage(scans, A, "6");
  scans.abandon(scans.take(A, again));
  assert.deepEqual(closed, ["6"], "a failed page's storage scan is closed");
  assert.equal(scans.openScans(A), 0);
});

Deno.test("an idle scan expires: its cursor is refused, its storage scan closed, its place freed", () => {
  const { scans, closed, advance } = table(1);
  const old = firstPage(scans, A, "9");
  advance(30_000);
  const fresh = firstPage(scans, B, "10");
  advance(30_001);
  assert.equal(scans.openScans(A), 0);
  assert.deepEqual(closed, ["9"], "only the scan idle for longer than idleMs");
  assert.equal(refusal(() => scans.take(A, old)).code, Code.INVALID_ARGUMENT);
  assert.equal(scans.take(B, fresh).storageCursor, "10");
  assert.equal(scans.take(A, "").storageCursor, "", "the expired scan's place is free again");
});
