/**
 * The gateway's pure parts: request parsing across reads (multi-bulk and
 * inline), the protocol errors that close a connection, reply encoding in
 * RESP2 and RESP3, glob patterns, GETRANGE's offsets, SCAN cursor numbers
 * and the command table's shape.
 */
import assert from "node:assert/strict";
import { ProtocolError, RequestParser, splitInline } from "../lib/resp/parser.ts";
import { arr, bulk, bulks, int, map, NIL, ReplyWriter, status } from "../lib/resp/reply.ts";
import { globMatcher } from "../lib/resp/glob.ts";
import { range } from "../lib/resp/handlers/strings.ts";
import { CommandTable } from "../lib/resp/table.ts";
import { MAX_OPEN_SCANS, ScanCursors } from "../lib/resp/scan_cursors.ts";
import { unknownCommand } from "../lib/resp/dispatch.ts";

const enc = new TextEncoder();
const dec = (cmds: Uint8Array[][]) => cmds.map((c) => c.map((a) => new TextDecoder().decode(a)));
const limits = { maxBulkBytes: 100, maxQueryBytes: 1000 };

Deno.test("commands split anywhere across reads are parsed once complete, in order", () => {
  const wire = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
  for (let cut = 1; cut < wire.length; cut++) {
    const p = new RequestParser(limits);
    const got = [...p.push(enc.encode(wire.slice(0, cut))), ...p.push(enc.encode(wire.slice(cut)))];
    assert.deepEqual(dec(got), [["SET", "k", "hello"], ["GET", "k"], ["PING"]], `cut at ${cut}`);
    assert.equal(p.pending, 0);
  }
});

Deno.test("bulk strings are binary-safe: CR LF and any byte inside a value", () => {
  const value = Uint8Array.from({ length: 256 }, (_, i) => i);
  const p = new RequestParser({ maxBulkBytes: 1000, maxQueryBytes: 10_000 });
  const head = enc.encode("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$256\r\n");
  const msg = new Uint8Array(head.length + 258);
  msg.set(head);
  msg.set(value, head.length);
  msg.set(enc.encode("\r\n"), head.length + 256);
  const [cmd] = p.push(msg);
  assert.deepEqual(cmd[2], value);
});

Deno.test("inline commands split as Redis's sdssplitargs does", () => {
  assert.deepEqual(splitInline("  SET  key   value "), ["SET", "key", "value"]);
  assert.deepEqual(splitInline('SET k "a b\\r\\n\\x41"'), ["SET", "k", "a b\r\nA"]);
  assert.deepEqual(splitInline("SET k 'it\\'s'"), ["SET", "k", "it's"]);
  assert.deepEqual(splitInline(""), []);
  assert.throws(() => splitInline('SET k "open'), /unbalanced quotes/);
  const p = new RequestParser(limits);
  assert.deepEqual(dec(p.push(enc.encode("\r\nPING\nECHO hi\r\n"))), [["PING"], ["ECHO", "hi"]]);
});

Deno.test("a bulk longer than the limit is refused from its header, before its bytes arrive", () => {
  const p = new RequestParser(limits);
  assert.throws(() => p.push(enc.encode("*2\r\n$3\r\nGET\r\n$101\r\n")), (e: unknown) => {
    return e instanceof ProtocolError && e.message === "Protocol error: invalid bulk length";
  });
  assert.deepEqual(
    dec(new RequestParser(limits).push(enc.encode(`*1\r\n$100\r\n${"x".repeat(100)}\r\n`)))[0][0].length,
    100,
  );
  assert.throws(() => new RequestParser(limits).push(enc.encode("*x\r\n")), /invalid multibulk length/);
  assert.throws(() => new RequestParser(limits).push(enc.encode("*2000000\r\n")), /invalid multibulk length/);
  assert.throws(() => new RequestParser(limits).push(enc.encode("*1\r\n+OK\r\n")), /expected '\$', got '\+'/);
  assert.throws(() => new RequestParser(limits).push(enc.encode("*1\r\n$-5\r\n")), /invalid bulk length/);
});

Deno.test("an unfinished command past the query limit is refused", () => {
  const p = new RequestParser({ maxBulkBytes: 10_000, maxQueryBytes: 100 });
  assert.throws(() => p.push(enc.encode(`*1\r\n$5000\r\n${"x".repeat(200)}`)), /query buffer/);
});

function encoded(proto: 2 | 3, ...replies: Parameters<ReplyWriter["write"]>[0][]): string {
  const w = new ReplyWriter(proto);
  for (const r of replies) w.write(r);
  return new TextDecoder().decode(w.take());
}

Deno.test("replies in RESP2 and RESP3: nulls, maps, sets, doubles and booleans differ, the rest is shared", () => {
  assert.equal(encoded(2, status("OK"), int(-3), bulk("hé"), NIL), "+OK\r\n:-3\r\n$3\r\nhé\r\n$-1\r\n");
  assert.equal(encoded(3, NIL, arr(null)), "_\r\n_\r\n");
  assert.equal(encoded(2, arr(null)), "*-1\r\n");
  assert.equal(encoded(2, map([["a", int(1)]])), "*2\r\n$1\r\na\r\n:1\r\n");
  assert.equal(encoded(3, map([["a", int(1)]])), "%1\r\n$1\r\na\r\n:1\r\n");
  assert.equal(encoded(2, { k: "set", v: [bulk("x")] }), "*1\r\n$1\r\nx\r\n");
  assert.equal(encoded(3, { k: "set", v: [bulk("x")] }), "~1\r\n$1\r\nx\r\n");
  assert.equal(encoded(2, { k: "dbl", n: 1.5 }, { k: "bool", b: true }), "$3\r\n1.5\r\n:1\r\n");
  assert.equal(encoded(3, { k: "dbl", n: 1.5 }, { k: "bool", b: false }), ",1.5\r\n#f\r\n");
  assert.equal(encoded(2, bulks(["a", null])), "*2\r\n$1\r\na\r\n$-1\r\n");
  assert.equal(
    encoded(2, { k: "err", s: "ERR bad\r\nline" }),
    "-ERR bad line\r\n",
    "an error stays one line",
  );
});

Deno.test("Redis's unknown-command reply quotes the name as sent and its first arguments", () => {
  const r = unknownCommand(["FOO", "a", "b"].map((s) => enc.encode(s)));
  assert.deepEqual(r, { k: "err", s: "ERR unknown command 'FOO', with args beginning with: 'a' 'b' " });
  assert.deepEqual(unknownCommand([enc.encode("x")]), {
    k: "err",
    s: "ERR unknown command 'x', with args beginning with: ",
  });
});

Deno.test("glob patterns: * ? [set] [^set] [a-z] and escapes, over the whole key", () => {
  const cases: [string, string, boolean][] = [
    ["*", "anything", true],
    ["user:*", "user:1", true],
    ["user:*", "xuser:1", false],
    ["h?llo", "hallo", true],
    ["h?llo", "hllo", false],
    ["h[ae]llo", "hello", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-b]llo", "hbllo", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["a.b", "axb", false],
    ["[", "[", true],
  ];
  for (const [p, s, want] of cases) assert.equal(globMatcher(p)(s), want, `${p} vs ${s}`);
});

Deno.test("GETRANGE offsets: negative from the end, inclusive, clamped", () => {
  const v = enc.encode("This is a string");
  const r = (a: number, b: number) => new TextDecoder().decode(range(v, a, b));
  assert.equal(r(0, 3), "This");
  assert.equal(r(-3, -1), "ing");
  assert.equal(r(0, -1), "This is a string");
  assert.equal(r(10, 100), "string");
  assert.equal(r(5, 3), "");
  assert.equal(r(-1, -5), "");
  assert.equal(r(-100, 2), "Thi");
  assert.equal(new TextDecoder().decode(range(new Uint8Array(0), 0, -1)), "");
});

Deno.test("SCAN cursors: numbers a double holds, per table, bounded", () => {
  const c = new ScanCursors();
  const state = { nodes: ["a"], index: 0, cursor: "" };
  const first = c.save(state);
  assert.ok(first > 0 && Number.isSafeInteger(first));
  assert.equal(c.get(first), state);
  const second = c.save(state, first);
  assert.equal(c.get(first), undefined, "the previous cursor is forgotten");
  c.drop(second);
  assert.equal(c.get(second), undefined);
  const ids = Array.from({ length: MAX_OPEN_SCANS + 1 }, () => c.save({ ...state }));
  assert.equal(c.get(ids[0]), undefined, "the oldest open scan is dropped past the bound");
  assert.ok(c.get(ids[MAX_OPEN_SCANS]));
});

Deno.test("the command table: every entry runs or says what it needs; names, arity and keys as Redis's", () => {
  const t = new CommandTable();
  for (const spec of t.all()) {
    assert.ok(spec.run || spec.needs || spec.subcommands, `${spec.name} has no handler`);
    assert.ok(!(spec.run && spec.needs), `${spec.name} both runs and waits`);
    assert.equal(spec.name, spec.name.toLowerCase());
    for (const sub of spec.subcommands ?? []) assert.ok(sub.name.startsWith(`${spec.name}|`) && sub.run);
  }
  const pick = (n: string) => {
    const s = t.find(n)!;
    return [s.arity, s.firstKey, s.lastKey, s.step];
  };
  assert.deepEqual(pick("get"), [2, 1, 1, 1]);
  assert.deepEqual(pick("set"), [-3, 1, 1, 1]);
  assert.deepEqual(pick("mget"), [-2, 1, -1, 1]);
  assert.deepEqual(pick("mset"), [-3, 1, -1, 2]);
  assert.deepEqual(pick("del"), [-2, 1, -1, 1]);
  assert.deepEqual(pick("scan"), [-2, 0, 0, 0]);
  assert.deepEqual(pick("client|setname"), [3, 0, 0, 0]);
  assert.ok(t.find("incr")!.run && !t.find("incr")!.needs, "incr runs (conditional writes)");
  for (
    const n of [
      "setex",
      "psetex",
      "ttl",
      "pttl",
      "expiretime",
      "pexpiretime",
      "expire",
      "pexpireat",
      "persist",
    ]
  ) {
    assert.ok(t.find(n)!.run && !t.find(n)!.needs, `${n} runs (the store has expiry)`);
  }
  assert.deepEqual(pick("setex"), [4, 1, 1, 1]);
  assert.deepEqual(pick("expire"), [-3, 1, 1, 1]);
  assert.deepEqual(pick("getex"), [-2, 1, 1, 1]);
  assert.ok(t.find("auth")!.flags.includes("noauth") && !t.find("get")!.flags.includes("noauth"));
});
