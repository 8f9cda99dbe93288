/**
 * The status page that explains, in a real browser: headless Chromium loads
 * node1's page of a running 3-node cluster that sets a client token. Each
 * card draws its five-minute sparklines; the key inspector refuses without
 * the token, then, with it, shows the key's owner and replicas (as the ring
 * places them) and each copy's version (the one the write returned), never
 * the value; node3 is killed -9 and its failure appears in the events list
 * (no reload), and the inspector then shows node3's copy unreachable.
 * Screenshots go to the test's temporary directory, or to
 * $STATUS_SHOTS_DIR when set.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, ringOf, sleep, TestCluster } from "./helpers/cluster.ts";
import { BrowserPage, chromiumPath } from "./helpers/chromium.ts";

const hasChromium = chromiumPath() !== undefined;
const TOKEN = "status-page-token-0123456789abcdef";

/** The inspector's rows as [node, role, state, version]. */
const ROWS = `[...document.querySelectorAll("#inspect-copies tbody tr")]
  .map((r) => [r.dataset.node, r.cells[1].textContent, r.dataset.state, r.dataset.version])`;

async function until<T>(page: BrowserPage, expr: string, ok: (v: T) => boolean, ms: number, what: string) {
  const t0 = Date.now();
  let last: T | undefined;
  while (Date.now() - t0 < ms) {
    // While the page loads, its elements may not exist yet.
    last = await page.evaluate<T>(expr).catch(() => undefined);
    if (last !== undefined && ok(last)) return { value: last, ms: Date.now() - t0 };
    await sleep(200);
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
}

/** Types a key (and a token) into the inspector and submits it, as a user would. */
async function inspect(page: BrowserPage, key: string, token: string): Promise<void> {
  await page.evaluate(`(() => {
    document.querySelector("#inspect-copies tbody").innerHTML = "";
    document.getElementById("inspect-summary").textContent = "";
    document.getElementById("inspect-key").value = ${JSON.stringify(key)};
    document.getElementById("inspect-token").value = ${JSON.stringify(token)};
    document.querySelector("#inspect-form button").click();
  })()`);
}

clusterTest(
  "the status page draws sparklines, inspects a key's holders and versions (with the client token), and lists node3's failure",
  async () => {
    if (!hasChromium) throw new Error("chromium is required in CI: apt-get install -y chromium");
    const dir = await Deno.makeTempDir({ prefix: "kvstore-status-explain-" });
    await Deno.writeTextFile(`${dir}/token`, `${TOKEN}\n`);
    const cluster = await TestCluster.start({
      nodes: 3,
      replicationFactor: 3,
      extra: { security: { client_token_file: `${dir}/token` } },
    });
    const page = await BrowserPage.open();
    const shots = Deno.env.get("STATUS_SHOTS_DIR") ?? dir;
    let loading = true;
    let load: Promise<void> | undefined;
    try {
      const client = await cluster.client({ clientToken: TOKEN });
      const key = "user:42:session";
      const value = "secret-value-never-shown";
      const written = await client.put(key, value);
      // A little traffic for the sparklines, while the test runs.
      load = (async () => {
        for (let i = 0; loading; i++) {
          await client.put(`load-${i % 50}`, "x").catch(() => {});
          await client.get(`load-${i % 50}`).catch(() => {});
          await sleep(20);
        }
      })();
      await page.viewport(1280, 900);
      await page.navigate(`http://127.0.0.1:${cluster.node("node1").adminPort}/`);
      await until<string>(page, `document.body.dataset.loaded`, (v) => v === "true", 20_000, "page loaded");
      const points = await until<string[]>(
        page,
        `[...document.querySelectorAll("article.node .spark")].map((e) => e.dataset.points)`,
        (v) => v.length === 3,
        20_000,
        "sparklines",
      );
      assert.deepEqual(points.value, ["60", "60", "60"], "five minutes of five-second points per node");
      const lines = await page.evaluate<number>(
        `document.querySelectorAll("article.node .spark polyline").length`,
      );
      assert.equal(lines, 6, "ops/s and p99 per node");

      await inspect(page, key, "");
      const refused = await until<string>(
        page,
        `document.getElementById("inspect-summary").textContent`,
        (v) => v !== "",
        10_000,
        "inspector answer without a token",
      );
      assert.match(refused.value, /no client token/);

      await inspect(page, key, TOKEN);
      const holders = ringOf(cluster).preferenceList(key, 3);
      const rows = await until<string[][]>(page, ROWS, (v) => v.length === 3, 10_000, "inspector rows");
      const version = `${written.timestamp}@${rows.value[0][3].split("@")[1]}`;
      assert.deepEqual(rows.value, [
        [holders[0], "owner", "live", version],
        [holders[1], "replica", "live", version],
        [holders[2], "replica", "live", version],
      ]);
      const summary = await page.evaluate<string>(`document.getElementById("inspect-summary").textContent`);
      assert.match(
        summary,
        new RegExp(`owner ${holders[0]} · replicas ${holders.join(", ")} · copies agree`),
      );
      const html = await page.evaluate<string>(`document.documentElement.outerHTML`);
      assert.ok(!html.includes(value), "the value is never shown");
      assert.equal(await page.evaluate<number>(`document.querySelectorAll("#key-marker").length`), 1);
      await page.screenshot(`${shots}/status-inspector.png`, true);

      // The same door over plain HTTP: a wrong token, then more than the rate allows.
      const url = `http://127.0.0.1:${cluster.node("node2").adminPort}/inspect.json?key=${
        encodeURIComponent(key)
      }`;
      const wrong = await fetch(url, { headers: { authorization: "Bearer wrong" } });
      assert.equal(wrong.status, 401, await wrong.text());
      // At once, so the bucket (10 a second) has no time to refill.
      const codes = await Promise.all(Array.from({ length: 30 }, async () => {
        const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
        const body = await res.text();
        assert.ok(!body.includes(value), "no value over HTTP either");
        return res.status;
      }));
      const limited = codes.filter((c) => c === 429).length;
      assert.ok(limited >= 10 && codes.includes(200), `rate-limited per source: ${codes}`);

      // A loaded machine may have made the detector flap at the start: count only failures after the kill.
      const NODE3_FAILURES =
        `document.querySelectorAll('#event-list li[data-kind="failure"][data-node="node3"]').length`;
      const before = await page.evaluate<number>(NODE3_FAILURES);
      await cluster.kill("node3");
      const failed = await until<number>(
        page,
        NODE3_FAILURES,
        (n) => n > before,
        30_000,
        "node3's failure in the events list",
      );
      console.log(`  the events list showed node3's failure ${failed.ms} ms after kill -9`);
      await inspect(page, key, TOKEN);
      const after = await until<string[][]>(page, ROWS, (v) => v.length === 3, 10_000, "inspector rows");
      assert.equal(after.value.find((r) => r[0] === "node3")?.[2], "unreachable");

      // Writes node3 misses are hinted; once it is back they are handed off, and the list says so.
      for (let i = 0; i < 5; i++) await client.put(`while-down-${i}`, "x");
      await cluster.startNode("node3");
      const back = await until<number>(
        page,
        `document.querySelectorAll('#event-list li[data-kind="hints"][data-node="node3"]').length`,
        (n) => n > 0,
        30_000,
        "hints handed off to node3 in the events list",
      );
      console.log(`  the events list showed hints handed off to node3 ${back.ms} ms after it restarted`);
      // A KeyValueStore call without the token is refused and counted, not listed.
      const anonymous = await cluster.client({ via: "node1", route: false });
      await assert.rejects(anonymous.get(key), /no client token/);
      const refusedText = (await until<string>(
        page,
        `document.getElementById("refused").textContent`,
        (t) => /(\(|, )no client token [1-9]/.test(t),
        10_000,
        "the gRPC refusal counted",
      )).value;
      console.log(`  ${refusedText}`);
      assert.match(refusedText, /inspector: no client token 1/);
      assert.match(refusedText, /inspector: wrong client token 1/);
      assert.match(refusedText, /inspector: rate limited [1-9]/);
      await page.screenshot(`${shots}/status-page.png`, true);
      for (const f of ["status-inspector.png", "status-page.png"]) {
        const size = (await Deno.stat(`${shots}/${f}`)).size;
        assert.ok(size > 10_000, `${f}: ${size} bytes`);
      }
      console.log(`  screenshots in ${shots}`);
    } finally {
      loading = false;
      await load;
      await page.close();
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000, ignore: !hasChromium && !Deno.env.get("CI") },
);
