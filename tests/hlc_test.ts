/**
 * Tests of the hybrid logical clock under a fake wall clock that the test
 * moves by hand: no sleeping, no dependence on the machine's time.
 */
import assert from "node:assert/strict";
import { HybridClock, MAX_FORWARD_DRIFT_MS } from "../lib/hlc.ts";

/** A wall clock the test sets. */
function fakeWall(startMs: number): { now: () => number; set: (ms: number) => void } {
  let ms = startMs;
  return { now: () => ms, set: (v) => ms = v };
}

const T0 = 1_700_000_000_000;

Deno.test("timestamps are the wall clock's milliseconds times 1000 when the wall clock advances", () => {
  const wall = fakeWall(T0);
  const clock = new HybridClock(wall.now);
  assert.equal(clock.now(), T0 * 1000);
  wall.set(T0 + 7);
  assert.equal(clock.now(), (T0 + 7) * 1000);
  wall.set(T0 + 7.9); // fractional milliseconds are floored
  assert.equal(clock.now(), (T0 + 7) * 1000 + 1);
  wall.set(T0 + 8);
  assert.equal(clock.now(), (T0 + 8) * 1000);
  assert.ok(Number.isSafeInteger(clock.now()));
});

Deno.test("timestamps strictly increase while the wall clock stands still", () => {
  const wall = fakeWall(T0);
  const clock = new HybridClock(wall.now);
  let last = clock.now();
  for (let i = 0; i < 5000; i++) {
    const t = clock.now();
    assert.ok(t > last, `${t} after ${last}`);
    last = t;
  }
  // The logical counter simply counts on, even past the next millisecond's first microsecond.
  assert.equal(last, T0 * 1000 + 5000);
});

Deno.test("timestamps strictly increase when the wall clock jumps forward and then steps backwards", () => {
  const wall = fakeWall(T0);
  const clock = new HybridClock(wall.now);
  const seen: number[] = [clock.now()];
  wall.set(T0 + 3_600_000); // one hour forward
  seen.push(clock.now());
  assert.equal(seen[1], (T0 + 3_600_000) * 1000);
  wall.set(T0 + 10); // back almost an hour
  for (let i = 0; i < 100; i++) seen.push(clock.now());
  wall.set(T0 - 86_400_000); // a day before the start
  seen.push(clock.now());
  wall.set(T0 + 3_600_000 + 1); // past the jump again: the wall clock leads once more
  seen.push(clock.now());
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i] > seen[i - 1], `step ${i}: ${seen[i]} <= ${seen[i - 1]}`);
  }
  assert.equal(seen.at(-1), (T0 + 3_600_000 + 1) * 1000);
});

Deno.test("observe() moves the clock past a remote timestamp ahead of the wall clock", () => {
  const wall = fakeWall(T0);
  const clock = new HybridClock(wall.now);
  const remote = (T0 + 5000) * 1000 + 42;
  clock.observe(remote);
  const t = clock.now();
  assert.ok(t > remote, `${t} not past ${remote}`);
  assert.equal(t, remote + 1);
  // An older remote timestamp changes nothing.
  clock.observe(T0 * 1000);
  assert.equal(clock.now(), remote + 2);
});

Deno.test("observe() does not follow a timestamp beyond the MAX_FORWARD_DRIFT_MS ceiling", () => {
  const wall = fakeWall(T0);
  const clock = new HybridClock(wall.now);
  const ceiling = (T0 + MAX_FORWARD_DRIFT_MS) * 1000;
  clock.observe(ceiling + 1);
  const t = clock.now();
  assert.ok(t < ceiling, `clock followed a timestamp past the ceiling: ${t}`);
  assert.equal(t, T0 * 1000);
  clock.observe(Number.MAX_SAFE_INTEGER);
  assert.equal(clock.now(), T0 * 1000 + 1);
  // Exactly at the ceiling is still followed.
  clock.observe(ceiling);
  assert.equal(clock.now(), ceiling + 1);
  // Once the wall clock has caught up, the same far timestamp is followed.
  const far = (T0 + 2 * MAX_FORWARD_DRIFT_MS) * 1000;
  clock.observe(far);
  assert.ok(clock.now() < far);
  wall.set(T0 + MAX_FORWARD_DRIFT_MS + 1);
  clock.observe(far);
  assert.equal(clock.now(), far + 1);
});
