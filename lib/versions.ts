/**
 * Bounded versions: how far ahead of a node's clock a version may be.
 *
 * A last-write-wins version far in the future freezes its key: every honest
 * write after it loses. So a client timestamp more than
 * `limits.max_clock_skew_ms` ahead of the node's clock is refused, and a
 * version arriving from a peer (replication, hints, recovery, anti-entropy,
 * read repair) more than twice that is refused and logged: a coordinator
 * may legitimately stamp a version up to the limit ahead of its own clock,
 * and its clock may be ahead of this node's by as much again.
 *
 * Client timestamps are read by magnitude, since clients send seconds
 * (`int(time.time())`), milliseconds (`Date.now()`) or microseconds (the
 * store's unit). A coarse timestamp names an interval (one second, one
 * millisecond); the coordinator versions the write with its own clock's
 * reading clamped into that interval, so writes keep their real-time order
 * against cluster-stamped ones and among themselves as far as the client's
 * unit can tell.
 */
import { Code, KvError } from "./errors.ts";
import type { KvRecord } from "./record.ts";
import type { Logger } from "./log.ts";
import type { PeerTransport } from "./transport.ts";
import { Throttle } from "./throttle.ts";

/**
 * Timestamps below this are seconds since the epoch: 1e11 s is the year
 * 5138, while 1e11 ms is 1973-03-03, so only a millisecond timestamp from
 * before March 1973 would be misread.
 */
export const SECONDS_BELOW = 1e11;

/**
 * Timestamps from {@link SECONDS_BELOW} up to this are milliseconds; from it
 * on, microseconds (1e14 µs is again 1973-03-03).
 */
export const MILLIS_BELOW = 1e14;

/** The microseconds a client timestamp can stand for, both ends included. */
export interface MicrosRange {
  from: number;
  to: number;
}

/** Reads a positive client timestamp by magnitude as a range of microseconds. */
export function clientRange(timestamp: number): MicrosRange {
  if (timestamp < SECONDS_BELOW) return { from: timestamp * 1e6, to: timestamp * 1e6 + 999_999 };
  if (timestamp < MILLIS_BELOW) return { from: timestamp * 1e3, to: timestamp * 1e3 + 999 };
  return { from: timestamp, to: timestamp };
}

/**
 * The version a coordinator gives a write with a client timestamp: its
 * clock's reading, clamped into the interval the timestamp names.
 */
export function clientVersion(timestamp: number, clockNow: () => number): number {
  const { from, to } = clientRange(timestamp);
  if (from === to) return from;
  return Math.min(Math.max(clockNow(), from), to);
}

/**
 * Refuses a client timestamp (non-zero) more than `maxSkewMs` ahead of
 * `nowMs`, with INVALID_ARGUMENT naming the limit.
 */
export function checkClientAhead(timestamp: number, nowMs: number, maxSkewMs: number): void {
  const aheadMs = Math.floor(clientRange(timestamp).from / 1000) - nowMs;
  if (aheadMs > maxSkewMs) {
    throw new KvError(
      Code.INVALID_ARGUMENT,
      `timestamp ${timestamp} is ${describeMs(aheadMs)} ahead of this node's clock; ` +
        `the limit is ${maxSkewMs} ms (limits.max_clock_skew_ms)`,
    );
  }
}

/** How far ahead of a node's clock a version from a peer may be, in ms. */
export function peerLimitMs(maxSkewMs: number): number {
  return 2 * maxSkewMs;
}

function describeMs(ms: number): string {
  const days = ms / 86_400_000;
  return days >= 2 ? `${Math.round(days)} days` : `${ms} ms`;
}

/** Options of {@link VersionGuard}. */
export interface VersionGuardOptions {
  maxSkewMs: number;
  log: Logger;
  /** Wall-clock milliseconds; injected by tests. */
  now?: () => number;
  /** One warning per source per this interval (default 60 s). */
  warnIntervalMs?: number;
}

/** Filters versions from peers that are too far ahead, with rate-limited warnings. */
export class VersionGuard {
  readonly #throttle: Throttle;
  readonly #now: () => number;

  constructor(private readonly o: VersionGuardOptions) {
    this.#now = o.now ?? Date.now;
    this.#throttle = new Throttle(o.warnIntervalMs ?? 60_000, this.#now);
  }

  /** Whether a version from a peer is acceptable now. */
  accepts(timestamp: number): boolean {
    return timestamp <= (this.#now() + peerLimitMs(this.o.maxSkewMs)) * 1000;
  }

  /** The records that pass; the others are logged (once per source and interval) and dropped. */
  admit<R extends Pick<KvRecord, "key" | "timestamp">>(records: R[], source: string): R[] {
    const ok = records.filter((r) => this.accepts(r.timestamp));
    if (ok.length < records.length) this.#warn(records.find((r) => !this.accepts(r.timestamp))!, source);
    return ok.length === records.length ? records : ok;
  }

  #warn(first: Pick<KvRecord, "key" | "timestamp">, source: string): void {
    const held = this.#throttle.take(source);
    if (held === undefined) return;
    this.o.log.warn("refused versions from a peer too far ahead of this node's clock", {
      source,
      key: first.key.slice(0, 64),
      ahead_ms: Math.floor(first.timestamp / 1000) - this.#now(),
      limit_ms: peerLimitMs(this.o.maxSkewMs),
      earlier_refusals_not_logged: held,
    });
  }
}

/**
 * A transport whose records fetched from peers (recovery, anti-entropy,
 * read repair) pass the guard: one place covers every pull.
 */
export function boundedTransport(inner: PeerTransport, guard: VersionGuard): PeerTransport {
  return {
    heartbeat: (peer, info) => inner.heartbeat(peer, info),
    forwardWrites: (peer, writes) => inner.forwardWrites(peer, writes),
    forwardReads: (peer, keys) => inner.forwardReads(peer, keys),
    replicate: (peer, items) => inner.replicate(peer, items),
    readRecords: async (peer, keys) => guard.admit(await inner.readRecords(peer, keys), peer),
    streamRecords: (peer, opts) => guarded(inner.streamRecords(peer, opts), guard, peer),
    digests: (peer, bits) => inner.digests(peer, bits),
    streamBuckets: (peer, opts) => guarded(inner.streamBuckets(peer, opts), guard, peer),
  };
}

async function* guarded(
  chunks: AsyncIterable<KvRecord[]>,
  guard: VersionGuard,
  peer: string,
): AsyncGenerator<KvRecord[]> {
  for await (const chunk of chunks) yield guard.admit(chunk, peer);
}
