/**
 * Anti-entropy: replicas that drifted apart are repaired in the background.
 *
 * A dropped asynchronous replication or a lost hint leaves two copies of a
 * key different while every node stays up. Periodically each node compares,
 * with each live peer, digests of the keys both should hold, split into
 * 2^bucket_bits buckets by ring position; for the buckets that differ it
 * pulls the peer's records and pushes its own, and last-write-wins settles
 * each key. Only the differing buckets cross the wire.
 */
import { ringHash } from "./ring.ts";
import type { RingLike } from "./membership/live_ring.ts";
import type { Logger } from "./log.ts";
import type { PeerTransport } from "./transport.ts";
import { type ChunkLimits, scanAllVersions, scanChunks, type Storage } from "./storage/mod.ts";
import type { KvRecord, RecordVersion } from "./record.ts";
import { errorMessage, PeerUnavailableError } from "./errors.ts";

/** Which keys two nodes share, and the bucket of each. */
export class SharedRanges {
  constructor(private readonly ring: RingLike, private readonly replicationFactor: number) {}

  /** The key's bucket if both nodes should hold it, else -1. */
  bucketIfShared(key: string, a: string, b: string, bucketBits: number): number {
    const position = ringHash(key);
    const nodes = this.ring.walk(position, this.replicationFactor);
    return nodes.includes(a) && nodes.includes(b) ? position >>> (32 - bucketBits) : -1;
  }
}

/**
 * A 32-bit digest of one record's key and version: FNV-1a over the UTF-16
 * units of `${key}\0${timestamp}\0${versionNode}\0${tombstone ? 1 : 0}`,
 * followed by `\0${expiresAtMs}` for a record that expires (so records
 * without expiry digest as before, and copies that disagree on an expiry
 * differ and are repaired) (the definition peers share), computed without
 * building that string: a digest pass runs over every record a node holds,
 * once per peer and round.
 */
export function recordDigest(r: RecordVersion): number {
  let h = fnvChars(0x811c9dc5, r.key);
  h = fnvUnit(h, 0);
  h = Number.isSafeInteger(r.timestamp) && r.timestamp >= 0
    ? fnvDigits(h, r.timestamp)
    : fnvChars(h, String(r.timestamp));
  h = fnvUnit(h, 0);
  h = fnvChars(h, r.versionNode);
  h = fnvUnit(h, 0);
  h = fnvUnit(h, r.tombstone ? 0x31 : 0x30);
  if (r.expiresAtMs) h = fnvDigits(fnvUnit(h, 0), r.expiresAtMs);
  return h >>> 0;
}

function fnvUnit(h: number, unit: number): number {
  return Math.imul(h ^ unit, 0x01000193);
}

function fnvChars(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** The decimal digits of a non-negative safe integer, as String(n) writes them. */
function fnvDigits(h: number, n: number): number {
  // Two parts below 1e8 each, so the digits come from 32-bit integer arithmetic.
  const high = Math.floor(n / 1e8);
  let low = n - high * 1e8;
  let count = 0;
  for (let i = 0; i < 8 && (low > 0 || high > 0 || count === 0); i++) {
    digits[count++] = low % 10;
    low = (low / 10) | 0;
  }
  for (let rest = high; rest > 0; rest = (rest / 10) | 0) digits[count++] = rest % 10;
  while (count > 0) h = Math.imul(h ^ (0x30 + digits[--count]), 0x01000193);
  return h;
}

const digits = new Uint8Array(20);

/**
 * Records per page of a digest scan. Scans pause to let the node serve
 * (storage/mod.ts), so a node's own digest scan and its peers' run
 * interleaved, and whatever pages are in hand when the young generation is
 * collected survive into the old one: with 1M records, three interleaved
 * scans of 1000-record pages grew the heap by 34 MB, of 250-record pages by
 * under 5 MB, in the same time.
 */
const DIGEST_PAGE = 250;

/** Per-bucket digests (XOR of record digests) of the keys `self` shares with `peer`. */
export async function bucketDigests(
  storage: Storage,
  shared: SharedRanges,
  self: string,
  peer: string,
  bucketBits: number,
): Promise<number[]> {
  const digests = new Uint32Array(1 << bucketBits);
  // Versions only: a digest pass over a million records allocates no values.
  for await (const page of scanAllVersions(storage, DIGEST_PAGE)) {
    for (const r of page) {
      const b = shared.bucketIfShared(r.key, self, peer, bucketBits);
      if (b >= 0) digests[b] ^= recordDigest(r);
    }
  }
  return [...digests];
}

/** Options of {@link AntiEntropy}. */
export interface AntiEntropyOptions {
  self: string;
  /** The peers now (membership changes at run time). */
  peers: () => readonly string[];
  transport: PeerTransport;
  storage: Storage;
  shared: SharedRanges;
  log: Logger;
  intervalMs: number;
  bucketBits: number;
  limits: ChunkLimits;
  /** Whether a node is up and serving (both sides must be). */
  canServe: (id: string) => boolean;
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
}

/** What one exchange with a peer repaired. */
export interface RepairReport {
  peer: string;
  buckets: number;
  pulled: number;
  pushed: number;
}

/** What anti-entropy has done since start (for metrics). */
export interface AntiEntropyTotals {
  /** Exchanges with a peer that completed. */
  exchanges: number;
  /** Exchanges that failed. */
  failures: number;
  /** Records repaired: pulled from peers plus pushed to them. */
  repaired: number;
}

/** The periodic digest comparison with every peer. */
export class AntiEntropy {
  #timer?: ReturnType<typeof setInterval>;
  #running = false;
  readonly totals: AntiEntropyTotals = { exchanges: 0, failures: 0, repaired: 0 };

  constructor(private readonly o: AntiEntropyOptions) {}

  start(): void {
    if (this.o.intervalMs > 0) this.#timer = setInterval(() => this.runOnce(), this.o.intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round with every live peer; overlapping rounds are skipped. */
  async runOnce(): Promise<RepairReport[]> {
    if (this.#running || !this.o.canServe(this.o.self)) return [];
    this.#running = true;
    const reports: RepairReport[] = [];
    const started = performance.now();
    try {
      for (const peer of this.o.peers()) {
        if (!this.o.canServe(peer)) continue;
        try {
          const report = await this.#exchange(peer);
          reports.push(report);
          this.totals.exchanges++;
          this.totals.repaired += report.pulled + report.pushed;
          if (report.pulled + report.pushed > 0) this.o.log.info("anti-entropy repaired", { ...report });
        } catch (err) {
          this.totals.failures++;
          if (err instanceof PeerUnavailableError) this.o.onUnreachable(peer, err);
          this.o.log.warn("anti-entropy with peer failed", { peer, error: errorMessage(err) });
        }
      }
    } finally {
      this.#running = false;
    }
    // One line a round: when it ran and what it cost (the benchmark times its memory by it).
    this.o.log.info("anti-entropy round finished", {
      peers: reports.length,
      buckets: reports.reduce((n, r) => n + r.buckets, 0),
      repaired: reports.reduce((n, r) => n + r.pulled + r.pushed, 0),
      ms: Math.round(performance.now() - started),
    });
    return reports;
  }

  async #exchange(peer: string): Promise<RepairReport> {
    const { self, bucketBits, storage, shared, transport } = this.o;
    const [theirs, ours] = await Promise.all([
      transport.digests(peer, bucketBits),
      bucketDigests(storage, shared, self, peer, bucketBits),
    ]);
    const buckets = ours.map((d, b) => (d !== theirs[b] ? b : -1)).filter((b) => b >= 0);
    const report: RepairReport = { peer, buckets: buckets.length, pulled: 0, pushed: 0 };
    if (buckets.length === 0) return report;
    for await (const chunk of transport.streamBuckets(peer, { bucketBits, buckets, ...this.o.limits })) {
      report.pulled += (await storage.apply(chunk)).filter(Boolean).length;
    }
    for await (
      const chunk of recordsInBuckets(storage, shared, self, peer, bucketBits, buckets, this.o.limits)
    ) {
      report.pushed += await transport.replicate(peer, chunk.map((record) => ({ record })));
    }
    return report;
  }
}

/** The records `self` holds in some buckets of the keys it shares with `peer`. */
export function recordsInBuckets(
  storage: Storage,
  shared: SharedRanges,
  self: string,
  peer: string,
  bucketBits: number,
  buckets: readonly number[],
  limits: ChunkLimits,
): AsyncGenerator<KvRecord[]> {
  const wanted = new Set(buckets);
  return scanChunks(storage, (r) => wanted.has(shared.bucketIfShared(r.key, self, peer, bucketBits)), limits);
}
