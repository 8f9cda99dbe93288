/**
 * The docs hold together: every relative link and #anchor of README.md and
 * docs/*.md reaches a file and a heading that exist (as GitHub resolves
 * them), the README stays a short front page, and the sample Grafana
 * dashboard is valid JSON naming only metrics a real node exports.
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { anchors, links } from "./helpers/markdown.ts";
import { clusterTest, endCluster, TestCluster } from "./helpers/cluster.ts";
import { ROOT } from "./helpers/examples.ts";

const README_MAX_LINES = 250;
const DASHBOARD = join(ROOT, "docs/grafana-dashboard.json");

/** README.md and every docs/*.md, as paths from the repository root. */
function pages(): string[] {
  const docs = [...Deno.readDirSync(join(ROOT, "docs"))]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ["README.md", ...docs];
}

/** What is wrong with one link of `page` ("" when it resolves). */
function brokenLink(page: string, target: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return ""; // https:, mailto: ... are not checked here
  const [path, anchor] = target.split("#", 2) as [string, string | undefined];
  const file = path === "" ? page : relative(ROOT, join(ROOT, dirname(page), decodeURIComponent(path)));
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(join(ROOT, file));
  } catch {
    return `${file} does not exist`;
  }
  if (anchor === undefined) return "";
  if (!stat.isFile || !file.endsWith(".md")) return `#${anchor} on ${file}, which is not a Markdown page`;
  const offered = anchors(Deno.readTextFileSync(join(ROOT, file)));
  return offered.has(anchor) ? "" : `${file} has no heading for #${anchor}`;
}

/** Every broken link of the docs, as "page:line: target: why". */
export function brokenLinks(): string[] {
  const out: string[] = [];
  for (const page of pages()) {
    for (const { target, line } of links(Deno.readTextFileSync(join(ROOT, page)))) {
      const why = brokenLink(page, target);
      if (why) out.push(`${page}:${line}: ${target}: ${why}`);
    }
  }
  return out;
}

Deno.test("every relative link and anchor of README.md and docs/*.md resolves", () => {
  const all = pages().flatMap((p) => links(Deno.readTextFileSync(join(ROOT, p))));
  console.log(`${pages().length} pages, ${all.length} links checked`);
  assert.ok(all.length > 40, "the docs link to each other");
  assert.deepEqual(brokenLinks(), []);
});

Deno.test("the link checker sees a missing file, a missing anchor and a link split over two lines", () => {
  const page = "docs/__links_fixture__.md";
  const path = join(ROOT, page);
  Deno.writeTextFileSync(
    path,
    "# Fixture\n\n[ok](#fixture) [ok](security.md#security) [gone](nowhere.md)\n" +
      "[no such heading](security.md#no-such-heading) and [a link\nover two lines](#nope)\n" +
      "`[code](not-a-link.md)`\n\n```sh\n[fenced](not-a-link-either.md)\n```\n",
  );
  try {
    const broken = brokenLinks().filter((b) => b.startsWith(page));
    assert.deepEqual(broken, [
      `${page}:3: nowhere.md: docs/nowhere.md does not exist`,
      `${page}:4: security.md#no-such-heading: docs/security.md has no heading for #no-such-heading`,
      `${page}:4: #nope: ${page} has no heading for #nope`,
    ]);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test(`README.md is a front page of at most ${README_MAX_LINES} lines, starting with the two commands`, () => {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  const lines = readme.trimEnd().split("\n");
  console.log(`README.md: ${lines.length} lines`);
  assert.ok(lines.length <= README_MAX_LINES, `README.md has ${lines.length} lines`);
  const first = readme.indexOf("```sh\n");
  assert.match(
    readme.slice(first, first + 200),
    /^```sh\nnpx -y deno@2\.9\.3 task cluster .*\nnpx -y deno@2\.9\.3 task test /,
  );
  assert.match(
    readme,
    /`node:util`.*`node:assert`/s,
    "says why node:util and node:assert stand in for jsr's std",
  );
});

/** The metric names a dashboard's queries use (a histogram's _bucket/_sum/_count as the histogram). */
function dashboardMetrics(dashboard: { panels: { targets: { expr: string }[] }[] }): string[] {
  const names = dashboard.panels.flatMap((p) =>
    p.targets.flatMap((t) => [...t.expr.matchAll(/\bkvstore_\w+/g)])
  );
  return [...new Set(names.map((m) => m[0].replace(/_(bucket|sum|count)$/, "")))].sort();
}

clusterTest("the sample Grafana dashboard is valid JSON and names only metrics a node exports", async () => {
  const dashboard = JSON.parse(Deno.readTextFileSync(DASHBOARD));
  const used = dashboardMetrics(dashboard);
  for (const want of ["calls_total", "duration_seconds", "clock_offset", "hints", "resp_commands_total"]) {
    assert.ok(used.some((m) => m.includes(want)), `a panel shows ${want}`);
  }
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  try {
    const res = await fetch(`http://127.0.0.1:${cluster.nodes[0].adminPort}/metrics`);
    const exported = new Set([...(await res.text()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    console.log(
      `dashboard: ${dashboard.panels.length} panels, ${used.length} metrics, node exports ${exported.size}`,
    );
    assert.deepEqual(used.filter((m) => !exported.has(m)), [], "metrics the node does not export");
  } finally {
    await endCluster(cluster);
  }
});
