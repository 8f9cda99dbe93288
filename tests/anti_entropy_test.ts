/** Tests of lib/anti_entropy.ts: the record digest peers compare. */
import assert from "node:assert/strict";
import { recordDigest } from "../lib/anti_entropy.ts";
import type { RecordVersion } from "../lib/record.ts";

/** The digest's definition, as every version of the store computes it: FNV-1a over this string. */
function byDefinition(r: RecordVersion): number {
  const expiry = r.expiresAtMs ? `\u0000${r.expiresAtMs}` : "";
  const s = `${r.key}\u0000${r.timestamp}\u0000${r.versionNode}\u0000${r.tombstone ? 1 : 0}${expiry}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

Deno.test("recordDigest equals FNV-1a of key, timestamp, version node and tombstone flag joined by NULs", () => {
  const timestamps = [0, 1, 9, 10, 99, 100, 99_999_999, 100_000_000, 100_000_001, 1_796_146_547_721_123];
  timestamps.push(2 ** 53 - 1, 1e15, 999_999_999_999_999, 1.5, -3, 1e21, 2 ** 60);
  for (const timestamp of timestamps) {
    for (const key of ["", "a", "user:42", "ключ", "\ud800x"]) {
      for (const tombstone of [false, true]) {
        const r = { key, timestamp, versionNode: "node-é1", tombstone };
        assert.equal(recordDigest(r), byDefinition(r), JSON.stringify(r));
      }
    }
  }
  for (let i = 0; i < 20_000; i++) {
    const r = {
      key: `k${i}`,
      timestamp: Math.floor(Math.random() * 2 ** 53),
      versionNode: `n${i % 7}`,
      tombstone: i % 3 === 0,
    };
    assert.equal(recordDigest(r), byDefinition(r), JSON.stringify(r));
  }
});

Deno.test("recordDigest covers the expiry of a record that has one, so copies that disagree on it differ", () => {
  const base = { key: "k", timestamp: 1_796_146_547_721_123, versionNode: "node1", tombstone: false };
  for (const expiresAtMs of [1, 1_796_146_547_721, 2 ** 53 - 1]) {
    const r = { ...base, expiresAtMs };
    assert.equal(recordDigest(r), byDefinition(r));
    assert.notEqual(recordDigest(r), recordDigest(base));
  }
  assert.notEqual(recordDigest({ ...base, expiresAtMs: 1000 }), recordDigest({ ...base, expiresAtMs: 1001 }));
  assert.equal(recordDigest({ ...base, expiresAtMs: 0 }), recordDigest(base), "0 is no expiry");
});
