/**
 * Unit tests of the gateway's expiry argument reader (lib/resp/expiry_args.ts):
 * which option combinations Redis accepts, how expire times become a ttl or
 * an instant, and the store's 10-year limit. Redis's own replies for the
 * same commands are compared in resp_expiry_test.ts against redis-server.
 */
import assert from "node:assert/strict";
import { expireAllowed, expireAt, expireFlags, stringOptions, writeExpiry } from "../lib/resp/expiry_args.ts";
import { RespError } from "../lib/resp/args.ts";
import { MAX_TTL_MS } from "../lib/expiry.ts";

const b = (...a: string[]) => a.map((s) => new TextEncoder().encode(s));
const NOW = 1_700_000_000_000;

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RespError && e.reply.k === "err") return e.reply.s;
    throw e;
  }
  throw new Error("not refused");
}

Deno.test("stringOptions: Redis's combinations for SET and GETEX", () => {
  assert.deepEqual(stringOptions(b("set", "k", "v"), 3, "set"), { conditional: [] });
  const ex = stringOptions(b("set", "k", "v", "ex", "1", "EX", "7"), 3, "set");
  assert.equal(ex.expiry?.kind, "ex");
  assert.equal(new TextDecoder().decode(ex.expiry?.arg), "7", "a repeated kind: the last counts");
  assert.deepEqual(stringOptions(b("set", "k", "v", "GET", "nx", "PXAT", "5"), 3, "set").conditional, [
    "GET",
    "NX",
  ]);
  assert.deepEqual(stringOptions(b("getex", "k", "persist"), 2, "getex").conditional, ["PERSIST"]);
  for (
    const bad of [
      ["ex", "1", "px", "1"],
      ["nx", "xx"],
      ["keepttl", "ex", "1"],
      ["exat", "1", "keepttl"],
      ["ex"],
      ["persist"],
      ["bogus"],
    ]
  ) {
    assert.equal(
      refused(() => stringOptions(b("set", "k", "v", ...bad), 3, "set")),
      "ERR syntax error",
      bad.join(),
    );
  }
  for (const bad of [["nx"], ["get"], ["keepttl"], ["ex", "1", "persist"]]) {
    assert.equal(
      refused(() => stringOptions(b("getex", "k", ...bad), 2, "getex")),
      "ERR syntax error",
      bad.join(),
    );
  }
});

Deno.test("writeExpiry: EX/PX as a ttl, EXAT/PXAT as an instant, Redis's errors, the store's limit", () => {
  const [one] = b("1");
  assert.deepEqual(writeExpiry(one, "ex", "set", NOW), { ttlMs: 1000 });
  assert.deepEqual(writeExpiry(one, "px", "set", NOW), { ttlMs: 1 });
  assert.deepEqual(writeExpiry(one, "exat", "set", NOW), { expiresAtMs: 1000 }, "a past instant is accepted");
  assert.deepEqual(writeExpiry(b(String(NOW + 5))[0], "pxat", "set", NOW), { expiresAtMs: NOW + 5 });
  for (const v of ["0", "-1"]) {
    assert.equal(
      refused(() => writeExpiry(b(v)[0], "ex", "setex", NOW)),
      "ERR invalid expire time in 'setex' command",
    );
  }
  assert.equal(
    refused(() => writeExpiry(b("1.5")[0], "px", "set", NOW)),
    "ERR value is not an integer or out of range",
  );
  assert.equal(
    refused(() => writeExpiry(b("9223372036854775807")[0], "ex", "set", NOW)),
    "ERR invalid expire time in 'set' command",
  );
  assert.equal(
    refused(() => writeExpiry(b("9223372036854775807")[0], "exat", "set", NOW)),
    "ERR invalid expire time in 'set' command",
    "seconds that overflow as ms",
  );
  assert.deepEqual(writeExpiry(b(String(MAX_TTL_MS))[0], "px", "set", NOW), { ttlMs: MAX_TTL_MS });
  assert.match(
    refused(() => writeExpiry(b(String(MAX_TTL_MS + 1))[0], "px", "psetex", NOW)),
    /^ERR invalid expire time in 'psetex' command: more than 10 years ahead/,
  );
});

Deno.test("expireFlags and expireAt: Redis's option errors; any time, negative ones too", () => {
  assert.deepEqual(expireFlags(b("expire", "k", "1"), 3), []);
  assert.deepEqual(expireFlags(b("expire", "k", "1", "xx", "gt"), 3), ["XX", "GT"]);
  assert.equal(refused(() => expireFlags(b("expire", "k", "1", "Foo"), 3)), "ERR Unsupported option Foo");
  assert.equal(
    refused(() => expireFlags(b("expire", "k", "1", "lt", "nx"), 3)),
    "ERR NX and XX, GT or LT options at the same time are not compatible",
  );
  assert.equal(
    refused(() => expireFlags(b("expire", "k", "1", "gt", "lt"), 3)),
    "ERR GT and LT options at the same time are not compatible",
  );
  assert.equal(expireAt(b("10")[0], "expire", NOW), NOW + 10_000);
  assert.equal(expireAt(b("10")[0], "pexpire", NOW), NOW + 10);
  assert.equal(expireAt(b("10")[0], "expireat", NOW), 10_000);
  assert.equal(expireAt(b("-10")[0], "pexpireat", NOW), 0, "far past is just past");
  assert.equal(expireAt(b("-10")[0], "expire", NOW), NOW - 10_000);
  assert.equal(
    refused(() => expireAt(b("9223372036854775807")[0], "pexpire", NOW)),
    "ERR invalid expire time in 'pexpire' command",
  );
  assert.match(refused(() => expireAt(b(String(MAX_TTL_MS))[0], "expire", NOW)), /10 years ahead/);
});

Deno.test("expireAllowed: EXPIRE's NX/XX/GT/LT by Redis 7.0's rules, no expiry counting as infinite", () => {
  const cases: [string[], number, number, boolean][] = [
    [[], 0, 5, true],
    [["NX"], 0, 5, true],
    [["NX"], 9, 5, false],
    [["XX"], 0, 5, false],
    [["XX"], 9, 5, true],
    [["GT"], 0, 5, false],
    [["GT"], 9, 5, false],
    [["GT"], 5, 5, false],
    [["GT"], 4, 5, true],
    [["LT"], 0, 5, true],
    [["LT"], 5, 5, false],
    [["LT"], 9, 5, true],
    [["XX", "LT"], 0, 5, false],
    [["XX", "GT"], 4, 5, true],
  ];
  for (const [flags, current, at, want] of cases) {
    assert.equal(expireAllowed(flags, current, at), want, `${flags.join(" ")} current ${current} at ${at}`);
  }
});
