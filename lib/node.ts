/**
 * A storage node: the parts of the store wired together.
 *
 * The node owns its storage, clock, ring, failure detector, hint store,
 * replication queues, coordinator and background loops (heartbeats, hint
 * delivery, anti-entropy, tombstone purge), and runs recovery when it
 * starts. It decides who may serve and who may store: a node serves once it
 * is ACTIVE and nobody holds hints for it; it reports JOINING until then. The
 * gRPC edge (`grpc/server.ts`) calls into it with typed records. Who the
 * peers are follows the member list (`membership/`): each adopted list
 * rewires the transport, the detector and the ring.
 */
import type { ClusterConfig, NodeConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { CURSOR_IDLE_MS, type Storage } from "./storage/mod.ts";
import type { PeerTransport } from "./transport.ts";
import type { KvRecord } from "./record.ts";
import type { MembershipTransport } from "./membership/transport.ts";
import { Membership } from "./membership/manager.ts";
import { Mover, type PullOutcome } from "./membership/mover.ts";
import type { LiveRing } from "./membership/live_ring.ts";
import { listFromNodes, type MemberList, type MemberState } from "./membership/member_list.ts";
import { HybridClock, type WallClock } from "./hlc.ts";
import { ClockWatch } from "./clock_watch.ts";
import { FailureDetector, HeartbeatLoop, type PeerStatus, type StatusChange } from "./detector.ts";
import { HintStore } from "./hints.ts";
import { Replicator } from "./replication.ts";
import { Coordinator } from "./coordinator.ts";
import { HandoffLoop } from "./handoff.ts";
import { AntiEntropy, type AntiEntropyTotals, SharedRanges } from "./anti_entropy.ts";
import { recoverFromPeers, type RecoveryOptions, type RecoveryReport, warnNotPulled } from "./recovery.ts";
import { purgeTombstones } from "./tombstones.ts";
import { boundedTransport, VersionGuard } from "./versions.ts";
import { ColdStart } from "./cold_start.ts";
import { ClientScans } from "./security/client_scans.ts";
import { EventLog } from "./admin/events.ts";
import { sleep } from "./async.ts";
import { createLwt } from "./lwt/mod.ts";
import type { KeyAcceptor } from "./lwt/acceptor.ts";
import type { FloorKeeper } from "./lwt/vote_floor.ts";
import type { Lwt, LwtTransport } from "./lwt/service.ts";
import { Code, errorMessage, KvError, type PeerUnavailableError } from "./errors.ts";

/**
 * How long asynchronous replication waits to fill a batch: a burst of
 * writes then costs a few ReplicateBatch calls, not one per write.
 */
const REPLICATION_LINGER_MS = 20;

/** How long a stopping node waits for its replication queues to drain. */
const STOP_FLUSH_MS = 5000;

/** Name of the storage metadata entry that keeps the member list (never a user key). */
export const MEMBERS_META = "membership";

/** Name of the storage metadata entry that keeps this node's votes on new member lists. */
export const VOTES_META = "membership_votes";

/** How a node describes a member of the cluster. */
export interface MemberInfo {
  id: string;
  host: string;
  port: number;
  status: PeerStatus;
  /** Unix milliseconds of the last contact (now, for the node itself). */
  lastContactMs: number;
  keysCount: number;
  recoveredRecords: number;
  /** NORMAL, or JOINING / LEAVING while its ranges move. */
  memberState: MemberState;
  /** A peer's clock against this node's (absent for itself and before it is measured). */
  clockOffset?: { offsetMs: number; uncertaintyMs: number };
  /** This node only: why it does not serve. */
  statusReason?: string;
}

/** A heartbeat as the node sees it. */
export interface HeartbeatIn {
  from: string;
  status: "ACTIVE" | "JOINING";
  keysCount: number;
  hintsPending: number;
  /** The sender's member-list epoch (a member ahead makes this node catch up). */
  epoch?: number;
  /** Where the sender says it listens: never used to call it (the member list says where). */
  host?: string;
  port?: number;
}

/** Options of {@link KvNode}. */
export interface KvNodeOptions {
  config: ClusterConfig;
  self: NodeConfig;
  storage: Storage;
  transport: PeerTransport;
  /** Membership calls, and making new members callable. */
  membershipTransport: MembershipTransport;
  log: Logger;
  /** This node's wall clock (default: the system clock); tests and `--clock-offset-ms` inject one. */
  wall?: WallClock;
  /** The member list to start from (saved one, or a peer's); the cluster file's by default. */
  members?: MemberList;
  /** Told when an adopted list no longer has this node (it was removed). */
  onRemoved?: (list: MemberList) => void;
  /** Per-key consensus calls to peers (conditional writes, counters); none: those answer UNAVAILABLE. */
  lwtTransport?: LwtTransport;
}

/** One node of the cluster. */
export class KvNode {
  readonly id: string;
  readonly self: NodeConfig;
  readonly config: ClusterConfig;
  readonly storage: Storage;
  /** Callers' ListKeys / GetSnapshot cursors, never the storage engine's own. */
  readonly clientScans: ClientScans;
  readonly membership: Membership;
  readonly mover: Mover;
  readonly clock: HybridClock;
  /** The wall clock versions are stamped with (`--clock-offset-ms` included). */
  readonly wall: WallClock;
  /** This node's clock against its peers': offsets, and whether it may coordinate writes. */
  readonly clockWatch: ClockWatch;
  /** Refuses versions from peers too far ahead of this node's clock. */
  readonly versions: VersionGuard;
  readonly detector: FailureDetector;
  readonly hints: HintStore;
  readonly replicator: Replicator;
  readonly coordinator: Coordinator;
  /** Conditional writes and counters (per-key Paxos), and this node's votes in it. */
  readonly lwt: Lwt;
  readonly lwtAcceptor: KeyAcceptor;
  /** The acceptor's vote floor and the high-water this node tells its peers. */
  readonly lwtFloor: FloorKeeper;
  readonly shared: SharedRanges;
  readonly log: Logger;
  /** What happened, as this node saw it (the status page's events list). */
  readonly events = new EventLog();
  readonly #transport: PeerTransport;
  readonly #members: MembershipTransport;
  readonly #heartbeats: HeartbeatLoop;
  readonly #handoff: HandoffLoop;
  readonly #antiEntropy: AntiEntropy;
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  readonly #peerKeys = new Map<string, number>();
  readonly #hintsForMe = new Map<string, number>();
  #recovering = false;
  #stopped = false;
  #recovered = 0;
  #keysCount = 0;
  #lastStatus: "ACTIVE" | "JOINING";
  readonly #coldStart: ColdStart;

  /** What the parts share: who may store, who may serve, and what an unreachable peer means. */
  readonly #canStore = (id: string) => this.canStore(id);
  readonly #canServe = (id: string) => this.canServe(id);
  readonly #onUnreachable = (peer: string, err: PeerUnavailableError) => this.#unreachable(peer, err);

  constructor(o: KvNodeOptions) {
    const { config, self, log } = o;
    this.id = self.id;
    this.self = self;
    this.config = config;
    this.storage = o.storage;
    this.log = log;
    this.clientScans = new ClientScans({
      maxPerConnection: config.limits.maxScansPerConnection,
      idleMs: CURSOR_IDLE_MS,
      closeScan: o.storage.closeScan ? (c) => o.storage.closeScan!(c) : undefined,
      log,
    });
    const wall = o.wall ?? Date.now;
    this.wall = wall;
    this.clock = new HybridClock(wall, config.limits.maxClockSkewMs);
    this.versions = new VersionGuard({ maxSkewMs: config.limits.maxClockSkewMs, log, now: wall });
    // Records pulled from peers pass the same bound as records pushed to this node.
    const transport = boundedTransport(o.transport, this.versions);
    this.#transport = transport;
    this.#members = o.membershipTransport;
    const initial = o.members ?? listFromNodes(config.nodes);
    const peerIds = initial.members.map((m) => m.id).filter((id) => id !== self.id);
    // A node that will recover is JOINING from the start, not only once
    // start() runs: its server listens before that, and must not answer
    // reads (nor report ACTIVE to peers and health probes) with data it has
    // not pulled yet. It says so once it is ACTIVE.
    this.#recovering = config.recovery.onStart && peerIds.length > 0;
    this.#lastStatus = this.#recovering ? "JOINING" : "ACTIVE";
    this.#coldStart = new ColdStart({ windowMs: config.failureDetection.failureTimeoutMs, log });
    this.membership = this.#newMembership(o, initial);
    this.shared = new SharedRanges(this.ring, config.replication.replicationFactor);
    const fd = config.failureDetection;
    this.detector = new FailureDetector(peerIds, {
      suspectTimeoutMs: fd.suspectTimeoutMs,
      failureTimeoutMs: fd.failureTimeoutMs,
      onChange: (c) => this.#onStatusChange(c),
    });
    this.clockWatch = new ClockWatch({
      wall,
      maxOffsetMs: config.limits.maxClockOffsetMs,
      others: () => this.#peerIds(),
      startGraceMs: fd.failureTimeoutMs,
      log,
      onReport: (text) => this.events.add("clock", self.id, text),
    });
    const rep = config.replication;
    this.hints = new HintStore({ limit: rep.hintLimit, maxAgeMs: rep.hintMaxAgeMs, log });
    this.replicator = this.#newReplicator(transport);
    this.coordinator = this.#newCoordinator(transport);
    ({ lwt: this.lwt, acceptor: this.lwtAcceptor, floor: this.lwtFloor } = this.#newLwt(o));
    this.#heartbeats = this.#newHeartbeats(transport);
    this.#handoff = this.#newHandoff(transport);
    this.#antiEntropy = this.#newAntiEntropy(transport);
    this.mover = this.#newMover();
    for (const m of initial.members) o.membershipTransport.addPeer(m.id, m.host, m.port);
  }

  // The factories below build the node's parts from its settings. The
  // constructor calls each once, in order: each may use the parts made before.

  #newMembership(o: KvNodeOptions, initial: MemberList): Membership {
    const { config, log, self } = o;
    return new Membership({
      self: self.id,
      initial,
      virtualNodes: config.consistentHashing.virtualNodes,
      replicationFactor: config.replication.replicationFactor,
      transport: o.membershipTransport,
      log,
      active: (id) => this.detector.status(id) === "ACTIVE",
      persist: o.storage.saveMeta
        ? (list) => o.storage.saveMeta!(MEMBERS_META, JSON.stringify(list))
        : undefined,
      votes: o.storage.saveMeta && o.storage.loadMeta
        ? {
          load: () => o.storage.loadMeta!(VOTES_META),
          save: (text) => o.storage.saveMeta!(VOTES_META, text),
        }
        : undefined,
      onAdopted: (list, previous) => this.#adopted(list, previous, o.onRemoved),
    });
  }

  #newReplicator(transport: PeerTransport): Replicator {
    const { config, log } = this;
    const rep = config.replication;
    return new Replicator({
      transport,
      hints: this.hints,
      log,
      canStore: this.#canStore,
      onUnreachable: this.#onUnreachable,
      queueLimit: rep.queueLimit,
      batchSize: rep.batchSize,
      batchBytes: Math.floor(config.limits.maxMessageBytes / 2),
      lingerMs: REPLICATION_LINGER_MS,
    });
  }

  #newCoordinator(transport: PeerTransport): Coordinator {
    const { self, log } = this;
    const rep = this.config.replication;
    return new Coordinator({
      self: self.id,
      ring: this.ring,
      storage: this.storage,
      clock: this.clock,
      transport,
      replicator: this.replicator,
      hints: this.hints,
      log,
      replicationFactor: rep.replicationFactor,
      writeQuorum: rep.writeQuorum,
      readQuorum: rep.readQuorum,
      sloppyQuorum: rep.sloppyQuorum,
      canServe: this.#canServe,
      canStore: this.#canStore,
      // A peer whose clock is off refuses forwarded writes itself (checkCanCoordinateWrites).
      clockTrusted: (id) => id !== this.id || this.clockWatch.holdReason() === undefined,
      onUnreachable: this.#onUnreachable,
    });
  }

  #newLwt(o: KvNodeOptions): ReturnType<typeof createLwt> {
    const { config, self, log, wall } = this;
    const rep = config.replication;
    const fd = config.failureDetection;
    return createLwt({
      self: self.id,
      storage: o.storage,
      clock: this.clock,
      wall,
      ring: this.ring,
      replicationFactor: rep.replicationFactor,
      maxClockSkewMs: config.limits.maxClockSkewMs,
      rpcTimeoutMs: fd.rpcTimeoutMs,
      transport: o.lwtTransport,
      log,
      canServe: this.#canServe,
      recovered: () => !this.#recovering,
      onUnreachable: this.#onUnreachable,
      hints: this.hints,
      members: () => ({ others: this.#peerIds(), epoch: this.membership.epoch }),
    });
  }

  #newHeartbeats(transport: PeerTransport): HeartbeatLoop {
    const fd = this.config.failureDetection;
    return new HeartbeatLoop(this.detector, {
      intervalMs: fd.heartbeatIntervalMs,
      // A joiner not yet accepted has no peers that would answer.
      paused: () => !this.storage.healthy() || !this.#isMember(),
      // Each round trip is also a sample of the peer's clock against this node's.
      send: (peer) =>
        this.clockWatch.measure(peer, () =>
          transport.heartbeat(peer, {
            status: this.status(),
            keysCount: this.#keysCount,
            hintsPending: this.hints.pendingFor(peer),
            epoch: this.membership.epoch,
          }), (reply) => reply.peerTimeMs ?? 0),
      onReply: (peer, reply) => {
        this.lwtFloor.heard(peer, reply.lwtHighWater, reply.epoch);
        this.#noteHeartbeat({ from: peer, ...reply });
      },
    });
  }

  #newHandoff(transport: PeerTransport): HandoffLoop {
    const { self, log } = this;
    const rep = this.config.replication;
    const fd = this.config.failureDetection;
    return new HandoffLoop({
      hints: this.hints,
      storage: this.storage,
      transport,
      log,
      canStore: this.#canStore,
      holdsNaturally: (key) => this.ring.holds(key, self.id, rep.replicationFactor),
      replicasOf: (key) => this.ring.preferenceList(key, rep.replicationFactor),
      onUnreachable: this.#onUnreachable,
      // The target waits (JOINING) for every peer's hints: tell it at once
      // instead of at the next heartbeat.
      onDrained: (target) => this.#heartbeats.beat(target),
      onDelivered: (target, records) =>
        this.events.add("hints", target, `${records} hinted records handed off to ${target} by ${self.id}`),
      batchSize: rep.batchSize,
      intervalMs: Math.min(fd.heartbeatIntervalMs, 500),
    });
  }

  #newAntiEntropy(transport: PeerTransport): AntiEntropy {
    const { config, self, log } = this;
    return new AntiEntropy({
      self: self.id,
      peers: () => this.detector.peers(),
      transport,
      storage: this.storage,
      shared: this.shared,
      log,
      intervalMs: config.recovery.antiEntropyIntervalMs,
      bucketBits: config.recovery.antiEntropyBucketBits,
      limits: this.chunkLimits(),
      canServe: this.#canServe,
      onUnreachable: this.#onUnreachable,
    });
  }

  #newMover(): Mover {
    const { config, self, log } = this;
    const rep = config.replication;
    return new Mover({
      self: self.id,
      membership: this.membership,
      storage: this.storage,
      log,
      replicationFactor: rep.replicationFactor,
      pull: (epoch, peers) => this.#pullMove(epoch, peers),
      gaveUp: (epoch, failed) =>
        warnNotPulled(log, {
          ring: this.ring.next,
          self: self.id,
          copies: rep.replicationFactor,
          failed,
          move: { epoch, before: this.ring.current },
        }),
      reachable: (id) => this.canStore(id),
      isHinted: (key) => this.hints.isHinted(key),
      beforeCleanup: () => this.#forgetDeparted(),
      cleanupGraceMs: config.membership.cleanupGraceMs,
    });
  }

  /** The rings keys are placed on (current and, during a change, next). */
  get ring(): LiveRing {
    return this.membership.ring;
  }

  /** Starts the background loops and, if configured, recovery from peers. */
  start(): Promise<void> {
    this.clockWatch.start();
    this.#heartbeats.start();
    this.#handoff.start();
    this.#antiEntropy.start();
    this.mover.start();
    // A node restarted in the middle of a change resumes its part of it.
    this.mover.onAdopted(this.membership.list);
    if (this.#isMember()) {
      this.#handoff.rebuild().catch((err) =>
        this.log.warn("hints not rebuilt", { error: errorMessage(err) })
      );
    }
    this.#every(Math.min(this.config.failureDetection.heartbeatIntervalMs, 1000), () => this.#refresh());
    // Until every member has given its high-water, ask the missing ones each second, not each heartbeat.
    this.#every(Math.min(this.config.failureDetection.heartbeatIntervalMs, 1000), () => {
      for (const peer of this.lwtFloor.waiting()) this.#heartbeats.beat(peer);
    });
    this.membership.openVotes(() => this.#stopped).catch((err) =>
      this.log.error("membership votes not opened", { error: errorMessage(err) })
    );
    const grace = this.config.replication.tombstoneGraceMs;
    this.#every(Math.min(Math.max(grace / 2, 1000), 3600_000), () => this.purgeTombstones());
    if (this.config.recovery.onStart && this.#isMember() && this.#peerIds().length > 0) return this.recover();
    this.#recovering = false;
    return Promise.resolve();
  }

  /**
   * Stops every loop, flushes the replication queues and closes storage. The
   * peer transport belongs to whoever created it, who closes it after this.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#heartbeats.stop();
    this.#handoff.stop();
    this.#antiEntropy.stop();
    this.mover.stop();
    for (const t of this.#timers) clearInterval(t);
    // Acknowledged writes still queued for replicas go out before the exit
    // (bounded: a replica that is down turns them into hints meanwhile).
    const deadline = Date.now() + STOP_FLUSH_MS;
    while (this.replicator.pendingTotal() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const left = this.replicator.pendingTotal();
    if (left > 0) this.log.warn("stopping with replication still queued", { records: left });
    if (this.hints.size() > 0) {
      this.log.warn("stopping with undelivered hints; anti-entropy will repair", {
        hints: this.hints.size(),
      });
    }
    this.replicator.stop();
    await this.storage.close();
  }

  /**
   * Hands on every hint and queued replica before this node leaves the
   * cluster for good (bounded): what it holds for others exists nowhere else
   * once it exits. Resolves with what is left.
   */
  async handOffBeforeLeaving(maxMs: number): Promise<{ hints: number; queued: number }> {
    const deadline = Date.now() + maxMs;
    while ((this.hints.size() > 0 || this.replicator.pendingTotal() > 0) && Date.now() < deadline) {
      await this.#handoff.deliverAll();
      await sleep(100);
    }
    return { hints: this.hints.size(), queued: this.replicator.pendingTotal() };
  }

  /** What this node says of itself: JOINING while it recovers or peers hold hints for it. */
  status(): "ACTIVE" | "JOINING" {
    if (this.#recovering) return "JOINING";
    // A joiner serves once it holds every range it gains (or before it is a member: never).
    const me = this.membership.list.members.find((m) => m.id === this.id);
    if (!me || (me.state === "JOINING" && !this.mover.pulledFor(this.membership.epoch))) return "JOINING";
    // A clock far off stamps writes that lose to older ones: let the next node coordinate.
    if (this.clockWatch.holdReason() !== undefined) return "JOINING";
    for (const [peer, n] of this.#hintsForMe) if (n > 0 && this.canStore(peer)) return "JOINING";
    return "ACTIVE";
  }

  /** Whether a node may coordinate and answer reads now. */
  canServe(id: string): boolean {
    if (id === this.id) return this.status() === "ACTIVE" && this.storage.healthy();
    return this.detector.status(id) === "ACTIVE" && this.hints.pendingFor(id) === 0;
  }

  /** Whether a node may take writes now (alive, maybe still catching up). */
  canStore(id: string): boolean {
    if (id === this.id) return this.storage.healthy();
    const s = this.detector.status(id);
    return s === "ACTIVE" || s === "JOINING";
  }

  /** Why this node does not serve, or undefined when it does (for /readyz and logs). */
  notServingReason(): string | undefined {
    if (!this.storage.healthy()) return "storage unavailable";
    if (this.status() === "ACTIVE") return undefined;
    if (this.#recovering) return "recovering from peers";
    return this.clockWatch.holdReason() ?? "catching up (JOINING)";
  }

  /**
   * Refuses a forwarded write while this node's clock is off (UNAVAILABLE),
   * so the node that forwarded it fails over to the next one.
   */
  checkCanCoordinateWrites(): void {
    const why = this.clockWatch.holdReason();
    if (why !== undefined) {
      throw new KvError(Code.UNAVAILABLE, `node ${this.id} does not coordinate writes: ${why}`);
    }
  }

  /** Records a heartbeat from a peer; answers what this node says back, with its clock. */
  onHeartbeat(
    hb: HeartbeatIn,
  ): {
    status: "ACTIVE" | "JOINING";
    keysCount: number;
    hintsPending: number;
    epoch: number;
    timeMs: number;
    lwtHighWater: number;
  } {
    if (!this.detector.peers().includes(hb.from)) {
      throw new KvError(
        Code.FAILED_PRECONDITION,
        `node "${hb.from}" is not a member of this cluster (epoch ${this.membership.epoch})`,
      );
    }
    if (!this.storage.healthy()) throw new KvError(Code.UNAVAILABLE, `node ${this.id}: storage unavailable`);
    this.detector.heard(hb.from, hb.status);
    this.#noteHeartbeat(hb);
    // A member knows a newer list: fetched from it at the address this node
    // holds (never the heartbeat's), adopted only once proven (`membership/proof.ts`).
    this.membership.noteEpoch(hb.from, hb.epoch);
    // A peer's answer sets the vote floor: ask it now rather than at the next beat.
    if (this.lwtFloor.waitingFor(hb.from)) this.#heartbeats.beat(hb.from);
    return {
      status: this.status(),
      keysCount: this.#keysCount,
      hintsPending: this.hints.pendingFor(hb.from),
      epoch: this.membership.epoch,
      // The clock versions are stamped with, so peers measure that one.
      timeMs: this.wall(),
      lwtHighWater: this.lwtFloor.highWater(),
    };
  }

  /** Every member with its status as this node sees it. */
  members(): MemberInfo[] {
    const now = Date.now();
    const offsets = new Map(this.clockWatch.peerOffsets().map((p) => [p.peer, p]));
    return this.membership.list.members.map((n) => {
      if (n.id === this.id) {
        return {
          id: n.id,
          host: n.host,
          port: n.port,
          status: this.storage.healthy() ? this.status() : "SUSPECTED",
          lastContactMs: now,
          keysCount: this.#keysCount,
          recoveredRecords: this.#recovered + this.mover.movedRecords,
          memberState: n.state,
          statusReason: this.notServingReason(),
        };
      }
      return {
        id: n.id,
        host: n.host,
        port: n.port,
        status: this.detector.status(n.id),
        lastContactMs: this.detector.lastContact(n.id),
        keysCount: this.#peerKeys.get(n.id) ?? 0,
        recoveredRecords: 0,
        memberState: n.state,
        clockOffset: offsets.get(n.id),
      };
    });
  }

  /** Chunk limits of recovery and anti-entropy streams. */
  chunkLimits(): { maxRecords: number; maxBytes: number } {
    const rc = this.config.recovery;
    return {
      maxRecords: rc.chunkRecords,
      maxBytes: Math.min(rc.chunkBytes, this.config.limits.maxMessageBytes / 2),
    };
  }

  /** Pulls this node's ranges from its peers; the node is JOINING meanwhile. */
  async recover(): Promise<void> {
    this.#recovering = true;
    this.#recovered = 0;
    let lastLog = Date.now();
    try {
      const peers = this.#peerIds();
      this.log.info("recovery started: pulling this node's ranges from peers", { peers: peers.length });
      // The member list may have changed while this node was down: learn it
      // meanwhile, and pull from the members it did not know of too.
      const synced = this.membership.syncFrom(peers);
      const pull = (from: string[]) =>
        this.#pullFrom(from, {
          retryUnreachableUntil: this.#coldStart.closesAt(),
          peerDown: (peer) => this.#peerDown(peer),
          onProgress: (records, bytes) => {
            this.#recovered = records;
            if (Date.now() - lastLog < 5000) return;
            lastLog = Date.now();
            this.log.info("recovery progress", { records, bytes });
          },
        });
      const report = await pull(peers);
      await synced;
      const more = this.#peerIds().filter((p) => !peers.includes(p));
      if (more.length > 0) {
        const extra = await pull(more);
        report.records += extra.records;
        report.applied += extra.applied;
        report.bytes += extra.bytes;
        report.peersDone.push(...extra.peersDone);
        report.peersFailed.push(...extra.peersFailed);
      }
      const level = report.peersDone.length === 0 ? "warn" : "info";
      this.events.add(
        "recovery",
        this.id,
        `${this.id} recovered ${report.records} records from ${report.peersDone.join(", ") || "no peer"}`,
      );
      this.log[level]("recovery finished", {
        records: report.records,
        applied: report.applied,
        bytes: report.bytes,
        seconds: report.ms / 1000,
        records_per_s: Math.round(report.records / Math.max(report.ms / 1000, 0.001)),
        from: report.peersDone.join(",") || "none",
        unreachable: report.peersFailed.join(",") || undefined,
      });
      if (report.peersFailed.length > 0) {
        const copies = this.config.replication.replicationFactor;
        warnNotPulled(this.log, { ring: this.ring, self: this.id, copies, failed: report.peersFailed });
      }
    } finally {
      this.#recovering = false;
      await this.#refresh();
    }
  }

  /** Whether recovery runs now, and the records it has received (this run, or the last). */
  recoveryProgress(): { running: boolean; records: number } {
    return { running: this.#recovering, records: this.#recovered };
  }

  /** What anti-entropy has done since start. */
  antiEntropyTotals(): Readonly<AntiEntropyTotals> {
    return this.#antiEntropy.totals;
  }

  /** One anti-entropy round with every peer (also run periodically). */
  antiEntropyRound(): ReturnType<AntiEntropy["runOnce"]> {
    return this.#antiEntropy.runOnce();
  }

  /** Erases tombstones past the grace period. */
  async purgeTombstones(): Promise<number> {
    try {
      return await purgeTombstones(
        this.storage,
        this.clock.now(),
        this.config.replication.tombstoneGraceMs,
        this.log,
      );
    } catch (err) {
      this.log.warn("tombstone purge failed", { error: errorMessage(err) });
      return 0;
    }
  }

  /**
   * Pulls what this node gains in the membership change of `epoch` or, with
   * no epoch, all it holds (from a peer a move gave up).
   */
  async #pullMove(epoch: number | undefined, peers: string[]): Promise<PullOutcome> {
    const report = await this.#pullFrom(peers, { forMoveOfEpoch: epoch, peerDown: (p) => this.#peerDown(p) });
    return { records: report.records, failed: report.peersFailed };
  }

  /**
   * Whether a pull gives a peer up: a frozen peer accepts connections but
   * never answers, so once heartbeats find it FAILED, rather than wait out
   * the stream's deadline (minutes).
   */
  #peerDown(peer: string): boolean {
    return this.detector.status(peer) === "FAILED";
  }

  /** Recovery and range moves pull alike: into this node's storage and clock, in its chunk size. */
  #pullFrom(peers: string[], o: Partial<RecoveryOptions>): Promise<RecoveryReport> {
    return recoverFromPeers({
      peers,
      transport: this.#transport,
      storage: this.storage,
      clock: this.clock,
      log: this.log,
      limits: this.chunkLimits(),
      ...o,
    });
  }

  /** Rewires the node for a newly adopted member list. */
  #adopted(list: MemberList, previous: MemberList, onRemoved?: (list: MemberList) => void): void {
    for (const m of list.members) this.#members.addPeer(m.id, m.host, m.port);
    const wasMember = previous.members.some((m) => m.id === this.id);
    // Just accepted: whatever silence the detector saw before meant nothing.
    if (!wasMember && this.#isMember()) this.detector.setPeers([]);
    const state = new Map(list.members.map((m) => [m.id, m.state]));
    this.detector.setPeers(
      list.members.map((m) => m.id).filter((id) => id !== this.id),
      (id) => state.get(id) === "JOINING" ? "JOINING" : "ACTIVE",
    );
    this.#forgetDeparted();
    this.events.membershipChanged(previous, list);
    this.mover.onAdopted(list);
    if (wasMember && !list.members.some((m) => m.id === this.id)) onRemoved?.(list);
    this.#heartbeats.beatAll();
  }

  /** Hints for nodes no longer members are moot: their ranges have new holders. */
  #forgetDeparted(): void {
    const members = new Set(this.membership.list.members.map((m) => m.id));
    for (const target of this.hints.targets()) {
      if (members.has(target)) continue;
      const n = this.hints.forget(target);
      this.log.info("forgot the hints for a node that left the cluster", { node: target, hints: n });
    }
  }

  #isMember(): boolean {
    return this.membership.list.members.some((m) => m.id === this.id);
  }

  #peerIds(): string[] {
    return this.membership.list.members.map((m) => m.id).filter((id) => id !== this.id);
  }

  #every(ms: number, fn: () => unknown): void {
    this.#timers.push(setInterval(fn, ms));
  }

  #noteHeartbeat(hb: HeartbeatIn): void {
    this.#coldStart.heard(hb.from);
    this.#peerKeys.set(hb.from, hb.keysCount);
    this.#hintsForMe.set(hb.from, hb.hintsPending);
    this.#noteOwnStatus();
  }

  /** Refreshes the key count and logs a change of this node's own status. */
  async #refresh(): Promise<void> {
    try {
      this.#keysCount = await this.storage.countLive();
    } catch {
      // Storage down: its own client logs it; the count just stays stale.
    }
    this.clockWatch.update();
    this.#noteOwnStatus();
  }

  #noteOwnStatus(): void {
    const now = this.status();
    if (now === this.#lastStatus) return;
    this.log.info(`this node is now ${now}`, {
      from: this.#lastStatus,
      hints_held_for_it: [...this.#hintsForMe.values()].reduce((a, b) => a + b, 0),
    });
    this.#lastStatus = now;
    // Peers learn the change now, not at the next heartbeat.
    this.#heartbeats.beatAll();
  }

  #onStatusChange(c: StatusChange): void {
    // At a cold start peers come up a little apart: "waiting for nodeN" (once)
    // says it; the transitions while channels connect are only debug.
    const level = this.#coldStart.open() && (c.to === "ACTIVE" || this.#coldStart.expected(c.peer))
      ? "debug"
      : "info";
    this.log[level](`peer ${c.peer} is now ${c.to}`, {
      from: c.from,
      silent_ms: c.silentMs,
      reason: c.reason,
    });
    // Not the flapping of a cold start.
    if (level === "info") this.events.peerStatus(this.id, c);
    if (c.to === "ACTIVE" || c.to === "JOINING") void this.#handoff.deliverAll();
  }

  /** The copies peers hold of some keys (tombstones and expired ones included): the key inspector's. */
  peerRecords(peer: string, keys: readonly string[]): Promise<KvRecord[]> {
    return this.#transport.readRecords(peer, keys);
  }

  #unreachable(peer: string, err: PeerUnavailableError): void {
    this.detector.callFailed(peer, err.message);
  }
}
