/**
 * Recovery: a node that starts pulls the records it is responsible for.
 *
 * A node whose memory was wiped, or that was away too long for hints, asks
 * every peer for the records of the ranges where it is owner or replica. Each
 * peer streams them (server-streaming StreamRecords) in chunks bounded in
 * records and bytes, filtered by the ring so only what the node needs
 * crosses the wire; the node applies each chunk by last-write-wins, so
 * nothing newer is overwritten and tombstones keep deleted keys deleted.
 * Pulling from every peer means a range comes back if any copy survives; a
 * peer that fails mid-stream is retried, and the others' copies still land.
 * A peer that accepts connections but never answers (a frozen process) would
 * hold a pull until the stream's deadline (minutes): once the failure
 * detector holds it down and its stream has been quiet a moment, the pull is
 * cancelled and the node goes on with the copies of the others; what only
 * that peer had comes later, by its hints and anti-entropy.
 */
import type { Logger } from "./log.ts";
import type { HybridClock } from "./hlc.ts";
import type { PeerTransport } from "./transport.ts";
import { type ChunkLimits, scanChunks, type Storage } from "./storage/mod.ts";
import type { KvRecord } from "./record.ts";
import { errorMessage, PeerUnavailableError } from "./errors.ts";
import { sleep } from "./async.ts";

/** Options of {@link recoverFromPeers}. */
export interface RecoveryOptions {
  peers: readonly string[];
  transport: PeerTransport;
  storage: Storage;
  clock: HybridClock;
  log: Logger;
  limits: ChunkLimits;
  /** Told after every applied chunk: records and bytes received so far. */
  onProgress?: (records: number, bytes: number) => void;
  attempts?: number;
  /**
   * Until this time (Date.now() milliseconds) a peer that cannot be reached
   * is retried beyond `attempts`: at a cold start peers come up a little
   * apart, and a node must not give up on one that is still starting.
   */
  retryUnreachableUntil?: number;
  /** Pull only what this node gains in the membership change of this epoch. */
  forMoveOfEpoch?: number;
  /**
   * Whether the failure detector holds a peer down (FAILED): a pull from it
   * that has had no chunk for {@link QUIET_MS} is then given up, not retried.
   */
  peerDown?: (peer: string) => boolean;
}

/** How long a pull from a peer held down must have been quiet before it is given up. */
export const QUIET_MS = 1000;

/** How often a running pull looks at the failure detector's view of its peer. */
const WATCH_MS = 200;

/** What a recovery achieved. */
export interface RecoveryReport {
  records: number;
  applied: number;
  bytes: number;
  ms: number;
  peersDone: string[];
  peersFailed: string[];
}

/** Pulls this node's ranges from every peer; resolves when all streams end. */
export async function recoverFromPeers(o: RecoveryOptions): Promise<RecoveryReport> {
  const started = Date.now();
  const report: RecoveryReport = { records: 0, applied: 0, bytes: 0, ms: 0, peersDone: [], peersFailed: [] };
  await Promise.all(o.peers.map(async (peer) => {
    if (await pullFrom(peer, o, report)) report.peersDone.push(peer);
    else report.peersFailed.push(peer);
  }));
  report.ms = Date.now() - started;
  return report;
}

/**
 * Streams one peer's records into storage, retrying quietly (debug) and
 * warning only when it gives up; resolves whether it succeeded.
 */
async function pullFrom(peer: string, o: RecoveryOptions, report: RecoveryReport): Promise<boolean> {
  const attempts = o.attempts ?? 3;
  for (let attempt = 1;; attempt++) {
    const watch = watchPeer(peer, o);
    try {
      const opts = { ...o.limits, forMoveOfEpoch: o.forMoveOfEpoch, signal: watch.signal };
      for await (const chunk of o.transport.streamRecords(peer, opts)) {
        watch.progressed();
        const applied = await o.storage.apply(chunk);
        for (const r of chunk) o.clock.observe(r.timestamp);
        report.records += chunk.length;
        report.applied += applied.filter(Boolean).length;
        report.bytes += chunk.reduce((n, r) => n + r.key.length + r.value.length, 0);
        o.onProgress?.(report.records, report.bytes);
      }
      return true;
    } catch (err) {
      if (watch.signal.aborted) {
        o.log.warn("recovery from peer gave up: the failure detector holds it down and it sent nothing", {
          peer,
          attempts: attempt,
          quiet_ms: QUIET_MS,
        });
        return false;
      }
      const starting = err instanceof PeerUnavailableError && Date.now() < (o.retryUnreachableUntil ?? 0);
      if (attempt >= attempts && !starting) {
        o.log.warn("recovery from peer gave up", { peer, attempts: attempt, error: errorMessage(err) });
        return false;
      }
      o.log.debug("recovery stream from peer failed; retrying", { peer, attempt, error: errorMessage(err) });
      await sleep(Math.min(200 * attempt, 500));
    } finally {
      watch.stop();
    }
  }
}

/**
 * Aborts one attempt's stream once the peer is held down and the stream has
 * been quiet for QUIET_MS (a slow peer that still sends chunks is kept).
 */
function watchPeer(peer: string, o: RecoveryOptions) {
  const abort = new AbortController();
  let last = Date.now();
  const timer = o.peerDown
    ? setInterval(() => {
      if (Date.now() - last >= QUIET_MS && o.peerDown!(peer)) abort.abort();
    }, WATCH_MS)
    : undefined;
  return {
    signal: abort.signal,
    progressed: () => last = Date.now(),
    stop: () => clearInterval(timer),
  };
}

/**
 * The chunks a peer streams to a requester: the records whose keys it wants
 * (those whose copies it should hold, on the current or the next ring; or,
 * for a membership change, those it gains).
 */
export function recordsFor(
  storage: Storage,
  wanted: (key: string) => boolean,
  limits: ChunkLimits,
): AsyncGenerator<KvRecord[]> {
  return scanChunks(storage, (r) => wanted(r.key), limits);
}

/** The ring as recovery reads it: arcs of first owners, and the nodes a position's keys go to. */
export interface RingArcs {
  arcs(): { from: number; to: number; node: string }[];
  walk(position: number, count: number): string[];
}

/**
 * The ranges of `self` whose every other copy is on a peer recovery could
 * not pull from (`missing`): how many arcs, and their share of the ring.
 * With `before` (a range move: `ring` is the ring after the change), only
 * the ranges `self` gains, and their copies as they were on `before`.
 */
export function rangesNotPulled(
  ring: RingArcs,
  self: string,
  copies: number,
  missing: readonly string[],
  before?: RingArcs,
): { ranges: number; share: number } {
  let ranges = 0;
  let share = 0;
  for (const { from, to } of pieces(ring, before)) {
    // A piece's keys go where the walk from its end point goes (positions are fractions of 2^32).
    const position = Math.round(to * 2 ** 32) >>> 0;
    if (!ring.walk(position, copies).includes(self)) continue;
    const holders = (before ?? ring).walk(position, copies);
    if (before && holders.includes(self)) continue;
    const others = holders.filter((id) => id !== self);
    if (others.length === 0 || !others.every((id) => missing.includes(id))) continue;
    ranges++;
    share += to - from;
  }
  return { ranges, share };
}

/** What {@link warnNotPulled} reports on. */
export interface NotPulled {
  /** The ring the node holds its ranges on (after the change, for a move). */
  ring: RingArcs;
  self: string;
  copies: number;
  /** The peers a pull gave up. */
  failed: readonly string[];
  /** A range move: its epoch and the ring before it (else: recovery at a start). */
  move?: { epoch: number; before: RingArcs };
}

/**
 * Logs the ranges a pull could get from none but the peers it gave up:
 * they wait for those peers' hints and anti-entropy (recovery; nothing is
 * logged when there are none), or for the next pull from them (a move).
 */
export function warnNotPulled(log: Logger, o: NotPulled): void {
  const { ranges, share } = rangesNotPulled(o.ring, o.self, o.copies, o.failed, o.move?.before);
  const ringPercent = Math.round(share * 1000) / 10;
  const peers = o.failed.join(",");
  if (o.move) {
    log.warn("range move gave up peers that did not answer", {
      epoch: o.move.epoch,
      peers,
      ranges_only_there: ranges,
      ring_percent: ringPercent,
      then: "the change completes with the other copies; this node pulls from them again once they answer",
    });
  } else if (ranges > 0) {
    log.warn("recovery could not pull the ranges whose other copies are all on peers that did not answer", {
      ranges,
      ring_percent: ringPercent,
      peers,
      then: "their hints and anti-entropy bring them once they answer",
    });
  }
}

/** The ring cut where the copies change on `ring` or on `other`: within a piece both rings place keys alike. */
function pieces(ring: RingArcs, other?: RingArcs): { from: number; to: number }[] {
  const arcs = [...ring.arcs(), ...(other?.arcs() ?? [])];
  const ends = [...new Set(arcs.map((a) => a.to))].sort((a, b) => a - b);
  return ends.map((to, i) => ({ from: i === 0 ? 0 : ends[i - 1], to }));
}
