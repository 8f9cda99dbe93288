/**
 * Clock offsets to peers, and whether this node's clock is too far off.
 *
 * Versions are stamped with the node's clock (the wall clock the hybrid
 * clock reads, `--clock-offset-ms` included), so a node far behind its peers
 * stamps writes that lose to older ones. Each heartbeat round trip gives one
 * NTP-style sample: the peer's clock at the reply against the midpoint of
 * the local send and receive times, exact to within half the round trip.
 * Per peer the sample with the smallest round trip of the last few is kept
 * (the tightest bound), so one slow reply on a loaded machine does not move
 * the estimate, and an offset counts as exceeded only when it is beyond the
 * limit even at the near end of its uncertainty (|offset| - rtt/2 > limit).
 * The node's clock is "off" when that holds for a majority of the other
 * members (CockroachDB's rule): one peer with a bad clock does not stop its
 * healthy peers. Two-node clusters cannot tell who is wrong and only warn.
 * Pure: the caller feeds samples and reads the verdict.
 */

/** One round trip: the peer's clock when it answered, measured on this node's clock. */
export interface OffsetSample {
  /** This node's clock (ms) when the request left. */
  sentMs: number;
  /** Round-trip time in ms (from a monotonic clock where possible). */
  rttMs: number;
  /** The peer's clock (ms) when it answered. */
  peerMs: number;
  /** This node's clock (ms) when the sample was taken, to age it out. */
  atMs: number;
}

/** A peer's estimated offset: its clock minus this node's. */
export interface PeerOffset {
  peer: string;
  /** Milliseconds; positive when the peer's clock is ahead of this node's. */
  offsetMs: number;
  /** Half the round trip of the sample: the offset is within ± this. */
  uncertaintyMs: number;
  /** Whether |offset| exceeds the limit even at the near end of its uncertainty. */
  exceeded: boolean;
}

/** What the offsets say about this node's own clock. */
export interface ClockVerdict {
  /** True when this node should stop coordinating writes. */
  off: boolean;
  /** True when the offset is exceeded but the cluster is too small to tell who is wrong. */
  warn: boolean;
  /** Peers to which the offset is exceeded. */
  exceededTo: string[];
  /** One line for logs, /readyz and health (empty when nothing is exceeded). */
  reason: string;
}

/** Options of {@link ClockOffsets}. */
export interface ClockOffsetOptions {
  /** `limits.max_clock_offset_ms`. */
  maxOffsetMs: number;
  /** Samples kept per peer (the min-RTT one of them is used). */
  window?: number;
  /** Samples older than this are forgotten (a peer's clock may be fixed). */
  maxAgeMs?: number;
}

const DEFAULT_WINDOW = 8;
const DEFAULT_MAX_AGE_MS = 60_000;

/** Per-peer offset estimates from round trips, and the verdict on this node's clock. */
export class ClockOffsets {
  readonly #samples = new Map<string, OffsetSample[]>();
  readonly #window: number;
  readonly #maxAgeMs: number;

  constructor(private readonly o: ClockOffsetOptions) {
    this.#window = o.window ?? DEFAULT_WINDOW;
    this.#maxAgeMs = o.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  /** Records one round trip to a peer. */
  add(peer: string, s: OffsetSample): void {
    if (!Number.isFinite(s.peerMs) || s.peerMs <= 0 || !(s.rttMs >= 0)) return;
    const list = this.#samples.get(peer) ?? [];
    list.push(s);
    if (list.length > this.#window) list.shift();
    this.#samples.set(peer, list);
  }

  /**
   * Records the peer's clock learnt from a refusal (a token refused for its
   * time carries the receiver's clock): `nowMs` is this node's clock when
   * the refusal arrived, `rttMs` how long the call took.
   */
  addReceiverTime(peer: string, receiverMs: number, rttMs: number, nowMs: number): void {
    this.add(peer, { sentMs: nowMs - rttMs, rttMs, peerMs: receiverMs, atMs: nowMs });
  }

  /** Forgets peers that are no longer members. */
  retain(peers: readonly string[]): void {
    for (const p of [...this.#samples.keys()]) if (!peers.includes(p)) this.#samples.delete(p);
  }

  /** The current estimate for a peer, from its tightest recent sample. */
  offset(peer: string, nowMs: number): PeerOffset | undefined {
    const fresh = (this.#samples.get(peer) ?? []).filter((s) => nowMs - s.atMs <= this.#maxAgeMs);
    if (fresh.length === 0) return undefined;
    const best = fresh.reduce((
      a,
      b,
    ) => (b.rttMs < a.rttMs || (b.rttMs === a.rttMs && b.atMs > a.atMs) ? b : a));
    const offsetMs = best.peerMs - (best.sentMs + best.rttMs / 2);
    const uncertaintyMs = best.rttMs / 2;
    return {
      peer,
      offsetMs,
      uncertaintyMs,
      exceeded: Math.abs(offsetMs) - uncertaintyMs > this.o.maxOffsetMs,
    };
  }

  /** Every peer's estimate (peers without a recent sample are left out). */
  offsets(nowMs: number): PeerOffset[] {
    const out: PeerOffset[] = [];
    for (const peer of this.#samples.keys()) {
      const o = this.offset(peer, nowMs);
      if (o) out.push(o);
    }
    return out;
  }

  /**
   * Whether this node's clock is off: exceeded to a majority of the other
   * members (`others`, peers without an estimate counting as not exceeded).
   * With one other member it only warns.
   */
  verdict(others: readonly string[], nowMs: number): ClockVerdict {
    const exceeded = others.map((p) => this.offset(p, nowMs)).filter((o): o is PeerOffset => !!o?.exceeded);
    const exceededTo = exceeded.map((o) => o.peer);
    const majority = Math.floor(others.length / 2) + 1;
    const over = exceeded.length >= majority;
    const off = over && others.length >= 2;
    const reason = exceeded.length === 0 ? "" : `clock offset beyond limits.max_clock_offset_ms ` +
      `(${this.o.maxOffsetMs} ms) to ${exceeded.length} of ${others.length} other members: ` +
      exceeded.map(describeOffset).join(", ");
    return { off, warn: over && !off, exceededTo, reason };
  }
}

/** "100.000 s behind node2 (± 1 ms)": where this node's clock stands against the peer's. */
function describeOffset(o: PeerOffset): string {
  const s = (Math.abs(o.offsetMs) / 1000).toFixed(3);
  return `${s} s ${o.offsetMs > 0 ? "behind" : "ahead of"} ${o.peer} (± ${Math.ceil(o.uncertaintyMs)} ms)`;
}
