/** The Prometheus registry: text format, cumulative buckets, label escaping, collectors. */
import assert from "node:assert/strict";
import { Registry } from "../lib/admin/metrics.ts";

Deno.test("counters and gauges render with HELP, TYPE and their labels", async () => {
  const r = new Registry();
  const calls = r.counter("kvstore_x_total", "Calls", ["method", "code"]);
  const series = calls.labels("Put", "OK");
  series.inc();
  series.inc(2);
  calls.labels("Get", "NOT_FOUND").inc();
  r.gauge("kvstore_keys", "Keys").labels().set(42);
  const text = await r.render();
  assert.match(text, /^# HELP kvstore_x_total Calls\n# TYPE kvstore_x_total counter\n/);
  assert.match(text, /\nkvstore_x_total\{method="Put",code="OK"\} 3\n/);
  assert.match(text, /\nkvstore_x_total\{method="Get",code="NOT_FOUND"\} 1\n/);
  assert.match(text, /# TYPE kvstore_keys gauge\nkvstore_keys 42\n/);
  assert.equal(calls.labels("Put", "OK"), series, "a series is created once and kept");
});

Deno.test("a histogram renders cumulative buckets, +Inf, sum and count", async () => {
  const r = new Registry();
  const h = r.histogram("kvstore_d_seconds", "Latency", ["method"], [0.01, 0.1, 1]);
  const s = h.labels("Put");
  for (const v of [0.005, 0.01, 0.05, 0.5, 7]) s.observe(v);
  const text = await r.render();
  assert.match(text, /kvstore_d_seconds_bucket\{method="Put",le="0.01"\} 2\n/);
  assert.match(text, /kvstore_d_seconds_bucket\{method="Put",le="0.1"\} 3\n/);
  assert.match(text, /kvstore_d_seconds_bucket\{method="Put",le="1"\} 4\n/);
  assert.match(text, /kvstore_d_seconds_bucket\{method="Put",le="\+Inf"\} 5\n/);
  assert.match(text, /kvstore_d_seconds_sum\{method="Put"\} 7.56[45]\d*\n/);
  assert.match(text, /kvstore_d_seconds_count\{method="Put"\} 5\n/);
});

Deno.test("label values are escaped and a wrong number of them is refused", async () => {
  const r = new Registry();
  const c = r.counter("kvstore_e_total", "E", ["peer"]);
  c.labels('a"b\\c\nd').inc();
  assert.match(await r.render(), /kvstore_e_total\{peer="a\\"b\\\\c\\nd"\} 1/);
  assert.throws(() => c.labels("a", "b"), /1 label values expected/);
});

Deno.test("collectors run before each render", async () => {
  const r = new Registry();
  const g = r.gauge("kvstore_g", "G");
  let n = 0;
  r.collect(() => g.labels().set(++n));
  assert.match(await r.render(), /kvstore_g 1\n/);
  assert.match(await r.render(), /kvstore_g 2\n/);
});
