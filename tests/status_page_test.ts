/**
 * The status page in a real browser: headless Chromium loads node1's page of
 * a running 3-node cluster, the DOM shows the three nodes up, node4 joins
 * (`server --join`) and appears, node3 is killed -9, and the same page
 * (refreshing by itself, no reload) shows it down; the events list names
 * node4's join. Screenshots at a phone's and a desktop's size are saved in
 * the test's temporary directory.
 */
import assert from "node:assert/strict";
import { clusterTest, endCluster, sleep, TestCluster } from "./helpers/cluster.ts";
import { BrowserPage, chromiumPath } from "./helpers/chromium.ts";
import { freePort } from "./helpers/ports.ts";

const hasChromium = chromiumPath() !== undefined;

/** The page's node cards as [id, state] pairs. */
const CARDS = `[...document.querySelectorAll("article.node")].map((e) => [e.dataset.node, e.dataset.state])`;

async function waitForCards(page: BrowserPage, want: string[][], ms: number): Promise<number> {
  const t0 = Date.now();
  let last: string[][] = [];
  while (Date.now() - t0 < ms) {
    last = await page.evaluate<string[][]>(CARDS);
    if (JSON.stringify(last) === JSON.stringify(want)) return Date.now() - t0;
    await sleep(200);
  }
  throw new Error(`page shows ${JSON.stringify(last)} after ${ms} ms, wanted ${JSON.stringify(want)}`);
}

clusterTest(
  "the status page shows three nodes up in a real browser, node4 once it joined, then node3 down after kill -9",
  async () => {
    if (!hasChromium) throw new Error("chromium is required in CI: apt-get install -y chromium");
    const cluster = await TestCluster.start({ nodes: 3 });
    const page = await BrowserPage.open();
    const shots = await Deno.makeTempDir({ prefix: "kvstore-status-page-" });
    try {
      const client = await cluster.client();
      for (let i = 0; i < 30; i++) await client.put(`page-${i}`, "x");
      await page.viewport(390, 844, true);
      await page.navigate(`http://127.0.0.1:${cluster.node("node1").adminPort}/`);
      await waitForCards(page, [["node1", "up"], ["node2", "up"], ["node3", "up"]], 20_000);
      const arcs = await page.evaluate<number>(`document.querySelectorAll("svg path.arc").length`);
      assert.ok(arcs >= 3, `ring drawn (${arcs} arcs)`);
      assert.equal(await page.evaluate<string>(`document.querySelector("svg text").textContent`), "3/3");
      const width = await page.evaluate<number>(`document.documentElement.scrollWidth`);
      assert.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width} px wide)`);
      await page.screenshot(`${shots}/phone.png`, true);
      await page.viewport(1280, 800);
      await page.screenshot(`${shots}/desktop.png`);

      const node4 = cluster.addNode("node4");
      node4.adminPort = freePort();
      await cluster.startJoiner("node4", ["node2"], ["--admin-port", String(node4.adminPort)]);
      const four = [["node1", "up"], ["node2", "up"], ["node3", "up"], ["node4", "up"]];
      const joinedMs = await waitForCards(page, four, 30_000);
      console.log(`  the page showed node4 up ${joinedMs} ms after it started to join`);
      assert.match(
        await page.evaluate<string>(`document.getElementById("meta").textContent`),
        /membership epoch 2/,
      );
      // The events list says so too (as each member that adopted the new list saw it).
      const joined = await page.evaluate<number>(
        `document.querySelectorAll('#event-list li[data-kind="join"][data-node="node4"]').length`,
      );
      assert.ok(joined >= 1, `node4's join in the events list (${joined} entries)`);

      await cluster.kill("node3");
      const ms = await waitForCards(
        page,
        [["node1", "up"], ["node2", "up"], ["node3", "down"], ["node4", "up"]],
        20_000,
      );
      console.log(`  the page showed node3 down ${ms} ms after kill -9 (it refreshes every 2 s)`);
      assert.equal(await page.evaluate<string>(`document.querySelector("svg text").textContent`), "3/4");
      await page.screenshot(`${shots}/desktop-node3-down.png`);
      for (const f of ["phone.png", "desktop.png", "desktop-node3-down.png"]) {
        const size = (await Deno.stat(`${shots}/${f}`)).size;
        assert.ok(size > 10_000, `${f}: ${size} bytes`);
      }
      console.log(`  screenshots in ${shots}`);
    } finally {
      await page.close();
      await endCluster(cluster);
    }
  },
  { timeoutMs: 120_000, ignore: !hasChromium && !Deno.env.get("CI") },
);
