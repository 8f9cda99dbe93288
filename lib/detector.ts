/**
 * Failure detection: who is alive, from heartbeats and failed calls.
 *
 * Every node heartbeats every peer each `heartbeat_interval_ms`; any contact
 * (a heartbeat received, or answered) refreshes the peer. A peer silent for
 * `suspect_timeout_ms` is SUSPECTED, for `failure_timeout_ms` FAILED. A call
 * that fails to reach a peer is evidence too and suspects it at once, so
 * requests fail over without waiting for the timeout. A peer that reports
 * itself JOINING (recovering) is alive but does not serve yet. Silence is
 * counted only over time this process was running: a tick that comes half
 * a suspect timeout late means it was paused (a stall, a starved CPU,
 * SIGSTOP), when nothing could be heard, so the time it missed is not held
 * against the peers (Cassandra's failure detector skips local pauses
 * likewise, beyond max_local_pause_in_ms). The state
 * machine takes an injected clock so it is tested without sleeping; the
 * heartbeat loop that feeds it is the small `HeartbeatLoop` below.
 */

/** A peer's health as this node sees it (the wire's NodeStatus names). */
export type PeerStatus = "ACTIVE" | "SUSPECTED" | "FAILED" | "JOINING";

/** A status change, for logs and for what reacts to it (hint delivery). */
export interface StatusChange {
  peer: string;
  from: PeerStatus;
  to: PeerStatus;
  /** Milliseconds since the last contact with the peer. */
  silentMs: number;
  reason: string;
}

/** Options of {@link FailureDetector}. */
export interface DetectorOptions {
  suspectTimeoutMs: number;
  failureTimeoutMs: number;
  /** Milliseconds; injected by tests. */
  clock?: () => number;
  onChange?: (change: StatusChange) => void;
}

interface PeerState {
  status: PeerStatus;
  lastContact: number;
  /** What the peer last said of itself: ACTIVE or JOINING. */
  reported: "ACTIVE" | "JOINING";
}

/** The health of every peer, from contacts, failures and the passing of time. */
export class FailureDetector {
  readonly #peers = new Map<string, PeerState>();
  readonly #clock: () => number;
  #lastTick?: number;

  constructor(peers: readonly string[], private readonly options: DetectorOptions) {
    this.#clock = options.clock ?? Date.now;
    const now = this.#clock();
    // Peers start ACTIVE: a cluster starting together must not treat every
    // peer as down; the first failed call suspects a peer that really is.
    for (const p of peers) this.#peers.set(p, { status: "ACTIVE", lastContact: now, reported: "ACTIVE" });
  }

  /** Records contact with a peer and what it says of itself. */
  heard(peer: string, reported: "ACTIVE" | "JOINING" = "ACTIVE"): void {
    const s = this.#peers.get(peer);
    if (!s) return;
    const now = this.#clock();
    const silentMs = now - s.lastContact;
    s.lastContact = now;
    s.reported = reported;
    this.#set(peer, s, reported, silentMs, "heard from it");
  }

  /** Records a call that could not reach the peer: suspect it at once. */
  callFailed(peer: string, reason: string): void {
    const s = this.#peers.get(peer);
    if (!s || s.status === "SUSPECTED" || s.status === "FAILED") return;
    this.#set(peer, s, "SUSPECTED", this.#clock() - s.lastContact, reason);
  }

  /**
   * Moves silent peers to SUSPECTED and FAILED; call it every `intervalMs`.
   * Given the interval, a tick late by more than half the suspect timeout
   * credits the time this process missed to every peer's silence.
   */
  tick(intervalMs?: number): void {
    const now = this.#clock();
    if (intervalMs !== undefined && this.#lastTick !== undefined) {
      // Only a pause that alone eats half the suspicion budget: on a loaded
      // machine every tick runs a little late, and crediting those would
      // hide a peer that really went silent.
      const missed = now - this.#lastTick - intervalMs;
      if (missed > Math.max(intervalMs, this.options.suspectTimeoutMs / 2)) {
        for (const s of this.#peers.values()) s.lastContact = Math.min(now, s.lastContact + missed);
      }
    }
    this.#lastTick = now;
    for (const [peer, s] of this.#peers) {
      const silentMs = now - s.lastContact;
      if (silentMs >= this.options.failureTimeoutMs) {
        this.#set(peer, s, "FAILED", silentMs, `no contact for ${silentMs} ms`);
      } else if (silentMs >= this.options.suspectTimeoutMs && s.status !== "FAILED") {
        this.#set(peer, s, "SUSPECTED", silentMs, `no contact for ${silentMs} ms`);
      }
    }
  }

  /** A peer's current status. */
  status(peer: string): PeerStatus {
    return this.#peers.get(peer)?.status ?? "FAILED";
  }

  /** When the peer was last heard from (milliseconds, this detector's clock). */
  lastContact(peer: string): number {
    return this.#peers.get(peer)?.lastContact ?? 0;
  }

  /** The peers this detector watches. */
  peers(): string[] {
    return [...this.#peers.keys()];
  }

  /**
   * Watches exactly these peers (the membership changed): new ones start
   * with `initial` and a fresh contact time, removed ones are forgotten.
   */
  setPeers(peers: readonly string[], initial: (peer: string) => PeerStatus = () => "ACTIVE"): void {
    const now = this.#clock();
    for (const p of [...this.#peers.keys()]) if (!peers.includes(p)) this.#peers.delete(p);
    for (const p of peers) {
      if (this.#peers.has(p)) continue;
      const status = initial(p);
      this.#peers.set(p, { status, lastContact: now, reported: status === "JOINING" ? "JOINING" : "ACTIVE" });
    }
  }

  #set(peer: string, s: PeerState, to: PeerStatus, silentMs: number, reason: string): void {
    if (s.status === to) return;
    const from = s.status;
    s.status = to;
    this.options.onChange?.({ peer, from, to, silentMs, reason });
  }
}

/** What a heartbeat exchange tells about the peer. */
export interface HeartbeatReply {
  status: "ACTIVE" | "JOINING";
  keysCount: number;
  /** Hints the peer holds for this node (it is not caught up until 0). */
  hintsPending: number;
  /** Epoch of the peer's member list. */
  epoch?: number;
  /** The peer's clock (ms) when it answered; 0 or absent when it sent none. */
  peerTimeMs?: number;
  /** The peer's highest ballot round of conditional operations (lib/lwt/vote_floor.ts); 0 or absent: none sent. */
  lwtHighWater?: number;
}

/** Options of {@link HeartbeatLoop}. */
export interface HeartbeatLoopOptions {
  intervalMs: number;
  /** Sends one heartbeat; throws when the peer cannot be reached. */
  send: (peer: string) => Promise<HeartbeatReply>;
  onReply: (peer: string, reply: HeartbeatReply) => void;
  /** While true no heartbeats go out (this node is unhealthy), so peers stop routing to it. */
  paused?: () => boolean;
}

/** Sends heartbeats to every peer of a detector and feeds it the outcomes. */
export class HeartbeatLoop {
  #timers: ReturnType<typeof setInterval>[] = [];
  readonly #inFlight = new Set<string>();

  constructor(private readonly detector: FailureDetector, private readonly options: HeartbeatLoopOptions) {}

  start(): void {
    this.beatAll();
    this.#timers.push(setInterval(() => this.beatAll(), this.options.intervalMs));
    const tickMs = Math.max(20, Math.min(250, Math.floor(this.options.intervalMs / 4)));
    this.#timers.push(setInterval(() => this.detector.tick(tickMs), tickMs));
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  /** One heartbeat to every peer that has none in flight. */
  beatAll(): void {
    for (const peer of this.detector.peers()) this.beat(peer);
  }

  /** One heartbeat to a peer now, unless one is already in flight. */
  beat(peer: string): void {
    if (this.options.paused?.() || this.#inFlight.has(peer)) return;
    this.#inFlight.add(peer);
    this.options.send(peer)
      .then((reply) => {
        this.detector.heard(peer, reply.status);
        this.options.onReply(peer, reply);
      })
      .catch((err) => this.detector.callFailed(peer, `heartbeat failed: ${(err as Error).message}`))
      .finally(() => this.#inFlight.delete(peer));
  }
}
