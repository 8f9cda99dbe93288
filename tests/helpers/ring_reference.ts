/**
 * An independent, brute-force reimplementation of the placement rule on the
 * interface page (shared/kvstore-interface.md), for tests that check that
 * lib/ring.ts, or a running cluster, places keys as users' own routing tools do.
 */
import { createHash } from "node:crypto";

/** hash(s) as the interface page states it: the first 8 hex digits of MD5. */
export function md5Prefix(s: string): number {
  return parseInt(createHash("md5").update(new TextEncoder().encode(s)).digest("hex").slice(0, 8), 16);
}

/** One point of a node on the ring. */
export interface Point {
  pos: number;
  id: string;
}

/** Every point of every node, sorted by position (ties by node id). */
export function allPoints(nodeIds: readonly string[], vnodes: number): Point[] {
  const points: Point[] = [];
  for (const id of nodeIds) {
    for (let i = 0; i < vnodes; i++) points.push({ pos: md5Prefix(`${id}:${i}`), id });
  }
  return points.sort((a, b) => a.pos - b.pos || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The brute-force owner: first point at or after hash(key), else the smallest point. */
export function bruteOwner(points: readonly Point[], key: string): string {
  const h = md5Prefix(key);
  return (points.find((p) => p.pos >= h) ?? points[0]).id;
}

/** The brute-force preference list: distinct nodes clockwise from the key's point. */
export function bruteList(points: readonly Point[], key: string, count: number): string[] {
  const h = md5Prefix(key);
  let start = points.findIndex((p) => p.pos >= h);
  if (start < 0) start = 0;
  const out: string[] = [];
  for (let step = 0; step < points.length && out.length < count; step++) {
    const id = points[(start + step) % points.length].id;
    if (!out.includes(id)) out.push(id);
  }
  return out;
}
