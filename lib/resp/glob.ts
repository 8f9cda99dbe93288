/**
 * Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET): `*`, `?`, `[abc]`,
 * `[^a]`, `[a-z]` and `\x` to match x literally, over the whole string.
 */

/** A matcher for `pattern`, compiled once per command. */
export function globMatcher(pattern: string): (s: string) => boolean {
  if (pattern === "*") return () => true;
  const re = new RegExp(`^${globToRegex(pattern)}$`, "su");
  return (s) => re.test(s);
}

function globToRegex(p: string): string {
  let out = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "\\" && i + 1 < p.length) out += escape(p[++i]);
    else if (c === "[") {
      const end = classEnd(p, i + 1);
      if (end < 0) {
        out += escape(c);
        continue;
      }
      let body = p.slice(i + 1, end);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      out += `[${negate ? "^" : ""}${body.replace(/[\]\[\\^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else out += escape(c);
  }
  return out;
}

/** Where a `[` class closes, or -1 when it does not (then `[` is literal). */
function classEnd(p: string, from: number): number {
  for (let j = from; j < p.length; j++) {
    if (p[j] === "\\") j++;
    else if (p[j] === "]" && j > from) return j;
  }
  return -1;
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\\/-]/g, (m) => `\\${m}`);
}
