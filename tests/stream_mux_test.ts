/**
 * Tests of the stream multiplexer, over a fake stream: answers reach their
 * requests by id in any order; a request past its deadline fails, is never
 * sent again, and its late answer is dropped; a stream that ends fails what
 * is unanswered on it with its error and the next request opens a new one;
 * backpressure (a full stream, the in-flight bound) holds requests until
 * there is room, and one that expires while held is never sent.
 */
import assert from "node:assert/strict";
import { type MuxEvents, StreamMux } from "../lib/stream_mux.ts";

interface Frame {
  id: number;
  body: string;
}

/** Fake streams: every frame written, and the events of each opened stream to drive by hand. */
function fakeStreams(opts: { full?: (written: number) => boolean } = {}) {
  const opened: { events: MuxEvents<Frame>; written: Frame[]; ended: boolean }[] = [];
  const open = (events: MuxEvents<Frame>) => {
    const s = { events, written: [] as Frame[], ended: false };
    opened.push(s);
    return {
      write: (f: Frame) => (s.written.push(f), !(opts.full?.(s.written.length) ?? false)),
      end: () => (s.ended = true, undefined),
    };
  };
  return { opened, open };
}

class TimedOut extends Error {}

function mux(
  open: (e: MuxEvents<Frame>) => { write(f: Frame): boolean; end(): void },
  timeoutMs = 1000,
  maxInFlight?: number,
) {
  return new StreamMux<Frame, Frame>({
    open,
    idOf: (f) => f.id,
    timeoutMs,
    timedOut: () => new TimedOut(`no answer within ${timeoutMs} ms`),
    maxInFlight,
  });
}

Deno.test("answers reach their requests by id, in whatever order they come, over one stream", async () => {
  const { opened, open } = fakeStreams();
  const m = mux(open);
  const a = m.request((id) => ({ id, body: "a" }));
  const b = m.request((id) => ({ id, body: "b" }));
  const c = m.request((id) => ({ id, body: "c" }));
  assert.equal(opened.length, 1);
  const [fa, fb, fc] = opened[0].written;
  assert.deepEqual([fa.body, fb.body, fc.body], ["a", "b", "c"]);
  assert.equal(new Set([fa.id, fb.id, fc.id]).size, 3);
  opened[0].events.reply({ id: fc.id, body: "C" });
  opened[0].events.reply({ id: fa.id, body: "A" });
  opened[0].events.reply({ id: fb.id, body: "B" });
  assert.deepEqual((await Promise.all([a, b, c])).map((f) => f.body), ["A", "B", "C"]);
  assert.equal(m.pending, 0);
});

Deno.test("a request past its deadline fails, is not sent again, and its late answer is dropped", async () => {
  const { opened, open } = fakeStreams();
  const timeoutMs = 40;
  const m = mux(open, timeoutMs);
  const t0 = performance.now();
  const late = m.request((id) => ({ id, body: "late" }));
  await assert.rejects(late, TimedOut);
  const took = performance.now() - t0;
  console.log(`timed out after ${took.toFixed(0)} ms (timeout ${timeoutMs} ms)`);
  assert.ok(took >= timeoutMs - 1 && took < timeoutMs * 10, `timed out after ${took} ms`);
  const [sent] = opened[0].written;
  opened[0].events.reply({ id: sent.id, body: "too late" });
  // The stream stays open and in use; the expired request was written once only.
  const next = m.request((id) => ({ id, body: "next" }));
  assert.deepEqual(opened[0].written.map((f) => f.body), ["late", "next"]);
  opened[0].events.reply({ id: opened[0].written[1].id, body: "NEXT" });
  assert.equal((await next).body, "NEXT");
  assert.equal(opened.length, 1);
});

Deno.test("a stream that ends fails every unanswered request on it with its error; the next request opens a new one", async () => {
  const { opened, open } = fakeStreams();
  const m = mux(open);
  const a = m.request((id) => ({ id, body: "a" }));
  const b = m.request((id) => ({ id, body: "b" }));
  const answered = m.request((id) => ({ id, body: "answered" }));
  opened[0].events.reply({ id: opened[0].written[2].id, body: "ok" });
  const broken = new Error("connection reset");
  opened[0].events.closed(broken);
  assert.equal(await a.catch((e) => e), broken);
  assert.equal(await b.catch((e) => e), broken);
  assert.equal((await answered).body, "ok");
  assert.equal(m.pending, 0);
  const c = m.request((id) => ({ id, body: "c" }));
  assert.equal(opened.length, 2);
  assert.deepEqual(opened[1].written.map((f) => f.body), ["c"]);
  opened[1].events.reply({ id: opened[1].written[0].id, body: "C" });
  assert.equal((await c).body, "C");
});

Deno.test("the end of an old stream does not touch requests on the stream that replaced it", async () => {
  const { opened, open } = fakeStreams();
  const m = mux(open);
  const first = m.request((id) => ({ id, body: "first" }));
  m.close(); // half-closed: the first answer may still come; new requests need a new stream
  assert.equal(opened[0].ended, true);
  const second = m.request((id) => ({ id, body: "second" }));
  assert.equal(opened.length, 2);
  opened[0].events.reply({ id: opened[0].written[0].id, body: "FIRST" });
  opened[0].events.closed(new Error("old stream over"));
  assert.equal((await first).body, "FIRST");
  assert.equal(m.pending, 1);
  opened[1].events.reply({ id: opened[1].written[0].id, body: "SECOND" });
  assert.equal((await second).body, "SECOND");
});

Deno.test("a full stream holds further requests until drain, and the in-flight bound holds them until answers", async () => {
  const { opened, open } = fakeStreams({ full: (n) => n === 2 });
  const m = mux(open, 1000, 3);
  const reqs = ["a", "b", "c", "d", "e"].map((body) => m.request((id) => ({ id, body })));
  const s = opened[0];
  assert.deepEqual(s.written.map((f) => f.body), ["a", "b"], "stops writing once the stream is full");
  s.events.drain();
  assert.deepEqual(s.written.map((f) => f.body), ["a", "b", "c"], "three in flight at most");
  s.events.reply({ id: s.written[0].id, body: "A" });
  assert.deepEqual(s.written.map((f) => f.body), ["a", "b", "c", "d"]);
  for (const f of [...s.written]) s.events.reply({ id: f.id, body: f.body.toUpperCase() });
  assert.deepEqual(s.written.map((f) => f.body), ["a", "b", "c", "d", "e"]);
  s.events.reply({ id: s.written[4].id, body: "E" });
  assert.deepEqual((await Promise.all(reqs)).map((f) => f.body), ["A", "B", "C", "D", "E"]);
});

Deno.test("a request held back by a full stream that expires before drain is never written", async () => {
  const { opened, open } = fakeStreams({ full: () => true });
  const m = mux(open, 30);
  const a = m.request((id) => ({ id, body: "a" }));
  const held = m.request((id) => ({ id, body: "held" }));
  await assert.rejects(held, TimedOut);
  await assert.rejects(a, TimedOut);
  opened[0].events.drain();
  assert.deepEqual(opened[0].written.map((f) => f.body), ["a"]);
  assert.equal(m.pending, 0);
});

Deno.test("a stream that cannot be opened fails the request, and the next one tries again", async () => {
  let attempts = 0;
  const { opened, open } = fakeStreams();
  const m = mux((events) => {
    if (++attempts === 1) throw new Error("no channel");
    return open(events);
  });
  await assert.rejects(m.request((id) => ({ id, body: "a" })), /no channel/);
  const b = m.request((id) => ({ id, body: "b" }));
  opened[0].events.reply({ id: opened[0].written[0].id, body: "B" });
  assert.equal((await b).body, "B");
});
