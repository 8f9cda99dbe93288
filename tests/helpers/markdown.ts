/**
 * Reading the project's Markdown as GitHub renders it, for the tests that
 * hold the docs to what they say: headings and their anchors, the links of
 * a page, and the fenced blocks of a section.
 *
 * Only what the docs use is handled: ATX headings, inline links and images,
 * fenced blocks with backticks. Code (fenced or inline) is never read as
 * a link, as GitHub does not.
 */

/** A fenced block: its info string (`sh`, `ts`...) and its lines. */
export interface FencedBlock {
  lang: string;
  lines: string[];
}

/** A link of a page: where it points and the line it is on (1-based). */
export interface MarkdownLink {
  target: string;
  line: number;
}

/** The page's lines outside fenced blocks, numbered from 1 (fenced lines come back as ""). */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((l) => {
    if (/^\s*```/.test(l)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : l;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N}_\- ]/gu, "").replace(/ /g, "-");
}

/** Every anchor a page offers: its headings' slugs, a repeated one suffixed -1, -2... as GitHub does. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(markdown)) {
    const m = /^#{1,6} (.+?)\s*#*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, "$1"));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every link and image target of a page, code left out. */
export function links(markdown: string): MarkdownLink[] {
  const out: MarkdownLink[] = [];
  // A link's text may wrap onto the next line, so lines are joined before matching.
  const lines = prose(markdown).map((l) => l.replace(/`[^`]*`/g, (c) => " ".repeat(c.length)));
  const joined = lines.join("\n");
  for (const m of joined.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) {
    const at = m.index ?? 0;
    const line = joined.slice(0, at).split("\n").length;
    out.push({ target: m[1], line });
  }
  return out;
}

/**
 * The fenced blocks under a heading (exact heading line, e.g. "## A first
 * walk-through"), up to the next heading of the same or a higher level.
 */
export function blocksUnder(markdown: string, heading: string): FencedBlock[] {
  const level = heading.indexOf(" ");
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`no "${heading}" heading`);
  const blocks: FencedBlock[] = [];
  let open: FencedBlock | undefined;
  for (const line of lines.slice(start + 1)) {
    if (open) {
      if (/^```\s*$/.test(line)) {
        blocks.push(open);
        open = undefined;
      } else open.lines.push(line);
      continue;
    }
    const h = /^(#+) /.exec(line);
    if (h && h[1].length <= level) break;
    const f = /^```(\S*)/.exec(line);
    if (f) open = { lang: f[1], lines: [] };
  }
  return blocks;
}
