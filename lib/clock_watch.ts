/**
 * The node's watch on its own clock: feeds heartbeat round trips to the
 * offset estimator and says whether this node may coordinate writes.
 *
 * A node whose clock is off to a majority of the other members stops
 * coordinating (it reports itself JOINING, so peers and routing clients
 * send its keys to the next node, as for a node that is catching up) until
 * the offsets are back within `limits.max_clock_offset_ms`. Right after a
 * start it has not measured anything yet, and a node far behind would stamp
 * writes that lose to older ones: it waits for an estimate from a majority
 * of the other members, or for the failure timeout (peers that are down
 * cannot be measured, and a node alone must still serve). The reason is
 * logged once a minute while it lasts, and once when it ends.
 */
import { ClockOffsets, type ClockVerdict, type PeerOffset } from "./clock_offset.ts";
import type { WallClock } from "./hlc.ts";
import type { Logger } from "./log.ts";
import { Throttle } from "./throttle.ts";

/** How often a lasting offset is logged again. */
const LOG_EVERY_MS = 60_000;

const NOT_MEASURED =
  "clock offset not measured yet: waiting for heartbeats from a majority of the other members";

/** Options of {@link ClockWatch}. */
export interface ClockWatchOptions {
  /** The clock versions are stamped with. */
  wall: WallClock;
  maxOffsetMs: number;
  /** The other members of the cluster now. */
  others: () => readonly string[];
  /** How long after the start an unmeasured clock is trusted anyway. */
  startGraceMs: number;
  log: Logger;
  /** Told each clock warning as it is logged (throttled as the log is): the events list. */
  onReport?: (text: string) => void;
  /** A monotonic clock for round trips (default performance.now); injected by tests. */
  monotonic?: () => number;
}

/** This node's clock against its peers'. */
export class ClockWatch {
  readonly offsets: ClockOffsets;
  #startedAt: number;
  readonly #throttle: Throttle;
  readonly #monotonic: () => number;
  #wasOff = false;
  /** What holds this node back now (kept, since routing asks for every key). */
  #hold: string | undefined;

  constructor(private readonly o: ClockWatchOptions) {
    this.offsets = new ClockOffsets({ maxOffsetMs: o.maxOffsetMs });
    this.#monotonic = o.monotonic ?? (() => performance.now());
    this.#startedAt = this.#monotonic();
    this.#throttle = new Throttle(LOG_EVERY_MS, this.#monotonic);
    this.#hold = this.#measured() ? undefined : NOT_MEASURED;
  }

  /** Starts the grace for measuring now (heartbeats start): the node is held back until then. */
  start(): void {
    this.#startedAt = this.#monotonic();
    this.update();
  }

  /** Times one round trip to a peer; `call` resolves with the peer's clock (ms, 0 if it sent none). */
  async measure<T>(peer: string, call: () => Promise<T>, peerMsOf: (reply: T) => number): Promise<T> {
    const sentMs = this.o.wall();
    const t0 = this.#monotonic();
    const reply = await call();
    const rttMs = this.#monotonic() - t0;
    this.offsets.add(peer, { sentMs, rttMs, peerMs: peerMsOf(reply), atMs: sentMs + rttMs });
    this.update();
    return reply;
  }

  /**
   * The receiver's clock from a call it refused (a token refused for its
   * time carries it): for the transport to call, so the offset is known even
   * when no heartbeat gets through.
   */
  noteReceiverTime(peer: string, receiverMs: number, rttMs: number): void {
    this.offsets.addReceiverTime(peer, receiverMs, rttMs, this.o.wall());
    this.update();
  }

  /** Every peer's current estimate. */
  peerOffsets(): PeerOffset[] {
    const others = new Set(this.o.others());
    return this.offsets.offsets(this.o.wall()).filter((p) => others.has(p.peer));
  }

  /** Why this node must not coordinate writes, as of the last {@link update}; undefined when it may. */
  holdReason(): string | undefined {
    return this.#hold;
  }

  /** Recomputes the verdict (after each sample, and periodically), logging it when exceeded (throttled). */
  update(): ClockVerdict {
    const others = this.o.others();
    this.offsets.retain(others);
    const v = this.offsets.verdict(others, this.o.wall());
    this.#report(v);
    this.#hold = v.off ? v.reason : this.#measured() ? undefined : NOT_MEASURED;
    return v;
  }

  /** Whether a majority of the other members has an estimate, or the start grace is over. */
  #measured(): boolean {
    const others = this.o.others();
    if (others.length < 2 || this.#monotonic() - this.#startedAt >= this.o.startGraceMs) return true;
    const now = this.o.wall();
    const known = others.filter((p) => this.offsets.offset(p, now) !== undefined).length;
    return known >= Math.floor(others.length / 2) + 1;
  }

  #report(v: ClockVerdict): void {
    if (v.reason === "") {
      if (this.#wasOff) {
        const text = "clock offset back within limits.max_clock_offset_ms; coordinating writes";
        this.o.log.info(text);
        this.o.onReport?.(text);
      }
      this.#wasOff = false;
      return;
    }
    this.#wasOff ||= v.off;
    const held = this.#throttle.take(v.off ? "off" : "warn");
    if (held === undefined) return;
    if (v.off) {
      const text = `${v.reason}; this node stops coordinating writes until its clock is back`;
      this.o.log.error(text);
      this.o.onReport?.(text);
    } else {
      const why = v.warn
        ? "; with a single other member nobody can tell whose clock is wrong, so this node keeps serving"
        : "";
      this.o.log.warn(`${v.reason}${why}`);
      this.o.onReport?.(`${v.reason}${why}`);
    }
  }
}
