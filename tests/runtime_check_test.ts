/** The startup warning for Deno releases with the GOAWAY abort (lib/runtime_check.ts). */
import assert from "node:assert/strict";
import { parseVersion, runtimeWarning, TESTED_DENO } from "../lib/runtime_check.ts";

Deno.test("Deno 2.9.4, 2.9.5 and 2.9.6 get a warning naming the defect and the tested release", () => {
  for (const v of ["2.9.4", "2.9.5", "2.9.6", "2.9.6-rc.1"]) {
    const w = runtimeWarning(v);
    assert.ok(w, `no warning for ${v}`);
    assert.match(w, /denoland\/deno#36788/);
    assert.match(w, /abort/);
    assert.ok(w.includes(`Deno ${TESTED_DENO}`), w);
  }
});

Deno.test("releases without the defect get no warning", () => {
  for (const v of ["2.9.3", "2.9.0", "2.8.3", "2.7.14", "2.9.7", "2.10.0", "3.0.0", "1.46.3", "nonsense"]) {
    assert.equal(runtimeWarning(v), undefined, v);
  }
});

Deno.test("the tested release is 2.9.3 and versions parse with or without a suffix", () => {
  assert.equal(TESTED_DENO, "2.9.3");
  assert.deepEqual(parseVersion("2.9.6"), [2, 9, 6]);
  assert.deepEqual(parseVersion("2.10.1+abc"), [2, 10, 1]);
  assert.equal(parseVersion("v2"), undefined);
});
