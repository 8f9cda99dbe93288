/**
 * Tests of bounded versions: client timestamps read by magnitude, the
 * version a coordinator gives them, and the bound on versions from peers.
 */
import assert from "node:assert/strict";
import {
  boundedTransport,
  checkClientAhead,
  clientRange,
  clientVersion,
  MILLIS_BELOW,
  peerLimitMs,
  SECONDS_BELOW,
  VersionGuard,
} from "../lib/versions.ts";
import { Code, KvError } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import type { KvRecord } from "../lib/record.ts";
import type { PeerTransport } from "../lib/transport.ts";

const NOW_MS = 1_800_000_000_000;
const NOW_US = NOW_MS * 1000;

Deno.test("a timestamp is seconds below 1e11, milliseconds below 1e14, microseconds from there", () => {
  assert.deepEqual(clientRange(1_800_000_000), { from: NOW_US, to: NOW_US + 999_999 });
  assert.deepEqual(clientRange(NOW_MS), { from: NOW_US, to: NOW_US + 999 });
  assert.deepEqual(clientRange(NOW_US + 5), { from: NOW_US + 5, to: NOW_US + 5 });
  assert.equal(clientRange(SECONDS_BELOW - 1).from, (SECONDS_BELOW - 1) * 1e6);
  assert.equal(clientRange(SECONDS_BELOW).from, SECONDS_BELOW * 1e3);
  assert.equal(clientRange(MILLIS_BELOW - 1).from, (MILLIS_BELOW - 1) * 1e3);
  assert.equal(clientRange(MILLIS_BELOW).from, MILLIS_BELOW);
  // The boundaries sit in 1973 for the smaller unit and beyond the year 5000 for the larger one.
  assert.equal(new Date(SECONDS_BELOW).getUTCFullYear(), 1973);
  assert.ok(new Date(SECONDS_BELOW * 1000).getUTCFullYear() > 5000);
  assert.equal(new Date(MILLIS_BELOW / 1000).getUTCFullYear(), 1973);
});

Deno.test("a coarse timestamp is versioned with the clock's reading clamped into its interval", () => {
  const sec = 1_800_000_000;
  assert.equal(clientVersion(sec, () => NOW_US + 1234), NOW_US + 1234, "inside the second: the clock");
  assert.equal(clientVersion(sec, () => NOW_US - 5_000_000), NOW_US, "clock before it: its start");
  assert.equal(clientVersion(sec, () => NOW_US + 9_000_000), NOW_US + 999_999, "clock after it: its end");
  assert.equal(clientVersion(NOW_MS, () => NOW_US + 500), NOW_US + 500);
  assert.equal(clientVersion(NOW_MS, () => NOW_US + 5000), NOW_US + 999);
  let called = false;
  assert.equal(clientVersion(NOW_US + 7, () => (called = true, 0)), NOW_US + 7, "microseconds: as given");
  assert.equal(called, false);
});

Deno.test("checkClientAhead refuses beyond the limit with INVALID_ARGUMENT naming it, in days when far", () => {
  checkClientAhead(NOW_US + 60_000_000, NOW_MS, 60_000);
  assert.throws(() => checkClientAhead(NOW_MS + 60_001, NOW_MS, 60_000), (e: unknown) => {
    assert.ok(e instanceof KvError);
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.match(
      e.message,
      /60001 ms ahead of this node's clock; the limit is 60000 ms \(limits.max_clock_skew_ms\)/,
    );
    return true;
  });
  assert.throws(() => checkClientAhead(1_800_000_000 + 3650 * 86_400, NOW_MS, 60_000), /3650 days ahead/);
  checkClientAhead(1, NOW_MS, 60_000); // the distant past is the client's business
});

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }), lines };
}

function rec(key: string, timestamp: number): KvRecord {
  return { key, value: new Uint8Array(0), timestamp, versionNode: "node2", tombstone: false };
}

Deno.test("versions from peers up to twice the skew pass; beyond are dropped with one warning per source and interval", () => {
  let now = NOW_MS;
  const { log, lines } = capture();
  const guard = new VersionGuard({ maxSkewMs: 1000, log, now: () => now, warnIntervalMs: 10_000 });
  assert.equal(peerLimitMs(1000), 2000);
  const edge = (NOW_MS + 2000) * 1000;
  const batch = [rec("a", NOW_US), rec("b", edge), rec("c", edge + 1), rec("d", NOW_US * 2)];
  assert.deepEqual(guard.admit(batch, "node2").map((r) => r.key), ["a", "b"]);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /WARN .*refused versions from a peer.* source=node2 key=c .*limit_ms=2000/);
  guard.admit(batch, "node2");
  guard.admit(batch, "node2");
  assert.equal(lines.length, 1, "rate-limited");
  guard.admit(batch, "node3");
  assert.equal(lines.length, 2, "another source warns at once");
  now += 10_000;
  guard.admit(batch, "node2");
  assert.equal(lines.length, 3);
  assert.match(lines[2], /earlier_refusals_not_logged=2/);
  // Good batches come back as they are, without a warning.
  const good = [rec("a", NOW_US)];
  assert.equal(guard.admit(good, "node2"), good);
  assert.equal(lines.length, 3);
});

Deno.test("records pulled through a bounded transport (read, recovery stream, bucket stream) pass the guard", async () => {
  const { log } = capture();
  const guard = new VersionGuard({ maxSkewMs: 1000, log, now: () => NOW_MS });
  const far = rec("far", (NOW_MS + 3600_000) * 1000);
  const near = rec("near", NOW_US);
  async function* chunks() {
    yield [near, far];
    yield [far];
  }
  const inner = {
    readRecords: () => Promise.resolve([near, far]),
    streamRecords: () => chunks(),
    streamBuckets: () => chunks(),
  } as unknown as PeerTransport;
  const t = boundedTransport(inner, guard);
  assert.deepEqual((await t.readRecords("node2", ["near", "far"])).map((r) => r.key), ["near"]);
  for (
    const stream of [
      t.streamRecords("node2", { maxRecords: 1, maxBytes: 1 }),
      t.streamBuckets("node2", { bucketBits: 1, buckets: [0], maxRecords: 1, maxBytes: 1 }),
    ]
  ) {
    const got: string[][] = [];
    for await (const c of stream) got.push(c.map((r) => r.key));
    assert.deepEqual(got, [["near"], []]);
  }
});
