/** Tests of the warning throttle under a clock the test moves. */
import assert from "node:assert/strict";
import { Throttle } from "../lib/throttle.ts";

Deno.test("one warning per source per interval, with the count held back in between", () => {
  let now = 0;
  const t = new Throttle(1000, () => now);
  assert.equal(t.take("a"), 0);
  assert.equal(t.take("a"), undefined);
  assert.equal(t.take("a"), undefined);
  assert.equal(t.take("b"), 0, "another source is not held back");
  now = 999;
  assert.equal(t.take("a"), undefined);
  now = 1000;
  assert.equal(t.take("a"), 3, "three held back since the last warning");
  assert.equal(t.take("a"), undefined);
});

Deno.test("the throttle remembers at most maxSources sources, forgetting the oldest", () => {
  let now = 0;
  const t = new Throttle(1000, () => now, 2);
  assert.equal(t.take("a"), 0);
  assert.equal(t.take("b"), 0);
  assert.equal(t.take("c"), 0); // forgets "a"
  assert.equal(t.take("a"), 0, "a forgotten source warns again");
  assert.equal(t.take("c"), undefined);
  now = 5;
  assert.equal(t.take("c"), undefined);
});
