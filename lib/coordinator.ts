/**
 * The coordinator: what a node does with a client's reads and writes.
 *
 * A key's coordinator is the first node of its preference list that can
 * serve (its owner while the owner is up). A node that is not the
 * coordinator forwards the request there; when the coordinator cannot be
 * reached it is suspected and the next one is tried, so clients see an
 * answer or UNAVAILABLE, never a hang. The coordinator versions a write with
 * its hybrid clock (re-stamped above a newer held version when the client
 * sent no timestamp: restamp.ts), stores it, and hands it to replication: to the live
 * nodes among the key's `replication_factor` first, with stand-ins holding
 * hints for the nodes that are down (whether their copies count toward
 * `write_quorum` is `sloppy_quorum`'s choice). Reads take the newest
 * of `read_quorum` copies and repair the stale ones. Everything here is
 * plain data in, plain data out: the gRPC edge is elsewhere.
 */
import { ringHash } from "./ring.ts";
import type { RingLike } from "./membership/live_ring.ts";
import type { Storage } from "./storage/mod.ts";
import type { HybridClock } from "./hlc.ts";
import type { HintStore } from "./hints.ts";
import type { Logger } from "./log.ts";
import type { Replicator } from "./replication.ts";
import {
  failedRead,
  failedWrite,
  type PeerTransport,
  type ReadResult,
  type ReplicaItem,
  type WriteRequest,
  type WriteResult,
} from "./transport.ts";
import { Code, errorMessage, KvError, PeerUnavailableError, type StatusCode } from "./errors.ts";
import { isLive, isNewer, type KvRecord, newestOf } from "./record.ts";
import { expiryOf } from "./expiry.ts";
import { clientVersion } from "./versions.ts";
import { applyAbove } from "./restamp.ts";
import { type AnswerBudget, readBounded } from "./answer_budget.ts";
import { shortKey } from "./validate.ts";

/** Options of {@link Coordinator}. */
export interface CoordinatorOptions {
  self: string;
  /** The ring to place keys on; a LiveRing also names pending copies during a membership change. */
  ring: RingLike;
  storage: Storage;
  clock: HybridClock;
  transport: PeerTransport;
  replicator: Replicator;
  hints: HintStore;
  log: Logger;
  replicationFactor: number;
  writeQuorum: number;
  readQuorum: number;
  /** Whether stand-ins' hinted copies count toward writeQuorum (default: they do not). */
  sloppyQuorum?: boolean;
  /** Whether a node may coordinate and answer reads now. */
  canServe: (id: string) => boolean;
  /** Whether a node may take writes now (alive, maybe still recovering). */
  canStore: (id: string) => boolean;
  /**
   * Whether a node's clock may stamp the versions of writes it coordinates
   * (false for this node while its clock is off to its peers); default: yes.
   */
  clockTrusted?: (id: string) => boolean;
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
}

/** Where one write's copies go. */
interface Placement {
  /** Peers to send the record to, some as stand-ins holding a hint. */
  targets: { peer: string; hintFor?: string }[];
  /** Down nodes for which this node itself keeps a hint. */
  selfHints: string[];
}

/** A placement, and whether this node holds a copy of the key when every node is up. */
interface PlacementHere extends Placement {
  natural: boolean;
}

const EMPTY = new Uint8Array(0);

/** Routes, versions, stores and replicates client requests. */
export class Coordinator {
  readonly #self: string;

  constructor(private readonly o: CoordinatorOptions) {
    this.#self = o.self;
  }

  /**
   * Applies writes. `forwarded` writes came from a node that chose this one
   * as coordinator: they are handled here, never forwarded again.
   */
  async write(reqs: readonly WriteRequest[], forwarded: boolean): Promise<WriteResult[]> {
    // Each key is hashed once: its position picks the coordinator and, here, its copies.
    const positions = forwarded ? undefined : new Array<number>(reqs.length);
    return await this.#route(reqs, forwarded, {
      keyOf: (r) => r.key,
      coordinatorOf: (key, i) => this.#coordinatorAt(positions![i] = ringHash(key)),
      local: (group, idx) => this.#coordinateWrites(group, positions && idx.map((i) => positions[i])),
      remote: (peer, group) => this.o.transport.forwardWrites(peer, group),
      failed: (r, code, message) => failedWrite(r.key, code, message),
      retryAfterTimeout: false,
    });
  }

  /**
   * Reads keys through their coordinators (or, `forwarded`, as coordinator).
   * With a `budget`, each group's answer is counted as it comes back (this
   * node's own before its values are copied) and a group that would exceed
   * it fails RESOURCE_EXHAUSTED.
   */
  async read(keys: readonly string[], forwarded: boolean, budget?: AnswerBudget): Promise<ReadResult[]> {
    return await this.#route(keys, forwarded, {
      keyOf: (k) => k,
      coordinatorOf: (key) => this.readCoordinatorFor(key),
      local: (group) => this.#coordinateReads(group, budget),
      remote: async (peer, group) => {
        const rs = await this.o.transport.forwardReads(peer, group);
        for (const r of rs) budget?.addItem(r.key, r.value.length);
        return rs;
      },
      failed: (k, code, message) => failedRead(k, code, message),
      retryAfterTimeout: true,
    });
  }

  /** Reads this node's own copies, without forwarding (read_from_replica). */
  async readLocal(keys: readonly string[], budget?: AnswerBudget): Promise<ReadResult[]> {
    const records = budget ? await readBounded(this.o.storage, keys, budget) : await this.o.storage.get(keys);
    return keys.map((k, i) => this.#readResult(k, records[i]));
  }

  /**
   * The node that should coordinate a write of a key now, if any can: the
   * first of its preference list that can serve, else the first that can
   * store. A node still catching up (JOINING) may version and store a write
   * (last-write-wins does not depend on what it holds); it only must not
   * answer reads. Without the fallback, nodes that briefly suspect each other
   * under load all hold hints for one another, all report JOINING, and every
   * write fails until the hints are delivered. A node whose clock is off
   * never falls back to itself: its versions would be refused by its peers or
   * win over later writes, so with no other node to coordinate, the write is
   * UNAVAILABLE (chaos suite, clock-ahead: an isolated node ahead by 5 s
   * acknowledged writes that no peer would then take, and stayed different).
   */
  coordinatorFor(key: string): string | undefined {
    return this.#coordinatorAt(ringHash(key));
  }

  /** The first node clockwise from `position` that can serve, else the first that can store. */
  #coordinatorAt(position: number): string | undefined {
    const trusted = this.o.clockTrusted ?? (() => true);
    return this.o.ring.walk(position, 1, this.o.canServe)[0] ??
      this.o.ring.walk(position, 1, (id) => this.o.canStore(id) && trusted(id))[0];
  }

  /**
   * The node that should coordinate a read of a key now: the first of its
   * `replication_factor` natural copies that can serve. A node beyond them
   * holds no copy, so it would answer "not found" for a key that exists;
   * with every copy down the read is UNAVAILABLE instead.
   */
  readCoordinatorFor(key: string): string | undefined {
    return this.o.ring.preferenceList(key, this.o.replicationFactor).find((id) => this.o.canServe(id));
  }

  /**
   * Groups items by coordinator, runs each group locally or on its peer, and
   * regroups the items of an unreachable peer onto the next coordinator.
   */
  async #route<T, R>(items: readonly T[], forwarded: boolean, how: {
    keyOf: (item: T) => string;
    /** `i`: the item's index in `items`. */
    coordinatorOf: (key: string, i: number) => string | undefined;
    /** `idx`: the group's indexes in `items`. */
    local: (group: T[], idx: number[]) => Promise<R[]>;
    remote: (peer: string, group: T[]) => Promise<R[]>;
    failed: (item: T, code: StatusCode, message: string) => R;
    /**
     * Whether a coordinator that timed out may be replaced by the next one.
     * Not for writes: the timed-out request may still reach it (a paused
     * process, a partition that heals) and be versioned then, after the write
     * was acknowledged through the next coordinator and newer writes made,
     * undoing them (chaos suite, rf3-w2-r2/isolate). Its outcome is unknown.
     */
    retryAfterTimeout: boolean;
  }): Promise<R[]> {
    const results = new Array<R>(items.length);
    let pending = items.map((_, i) => i);
    const unreachable: string[] = [];
    for (let attempt = 0; pending.length > 0; attempt++) {
      const groups = new Map<string, number[]>();
      for (const i of pending) {
        const key = how.keyOf(items[i]);
        const target = forwarded ? this.#self : how.coordinatorOf(key, i);
        if (target === undefined || attempt > this.o.ring.nodeIds.length) {
          results[i] = how.failed(items[i], Code.UNAVAILABLE, this.#noNodeMessage(key, unreachable));
          continue;
        }
        let group = groups.get(target);
        if (!group) groups.set(target, group = []);
        group.push(i);
      }
      const retry: number[] = [];
      await Promise.all([...groups].map(async ([target, idx]) => {
        const group = idx.map((i) => items[i]);
        try {
          const rs = target === this.#self ? await how.local(group, idx) : await how.remote(target, group);
          idx.forEach((i, j) => results[i] = rs[j]);
        } catch (err) {
          if (err instanceof PeerUnavailableError) {
            this.o.onUnreachable(target, err);
            if (err.code === Code.DEADLINE_EXCEEDED && !how.retryAfterTimeout) {
              const message = `${errorMessage(err)}; the write may still be applied by ${target}`;
              for (const i of idx) results[i] = how.failed(items[i], Code.DEADLINE_EXCEEDED, message);
              return;
            }
            unreachable.push(target);
            retry.push(...idx);
            return;
          }
          const code = err instanceof KvError ? err.code : Code.INTERNAL;
          for (const i of idx) results[i] = how.failed(items[i], code, errorMessage(err));
        }
      }));
      pending = retry;
    }
    return results;
  }

  #noNodeMessage(key: string, unreachable: string[]): string {
    const owner = this.o.ring.owner(key);
    const tried = unreachable.length > 0 ? `; unreachable: ${[...new Set(unreachable)].join(", ")}` : "";
    return `no live node can serve key "${shortKey(key)}" (owner ${owner})${tried}`;
  }

  /** `positions`: each key's ring position when the caller hashed it already. */
  async #coordinateWrites(reqs: readonly WriteRequest[], positions?: number[]): Promise<WriteResult[]> {
    const clock = this.o.clock;
    const nowMs = Date.now();
    const records = reqs.map((r): KvRecord => {
      const timestamp = r.timestamp !== 0 ? clientVersion(r.timestamp, () => clock.now()) : clock.now();
      clock.observe(timestamp);
      const record: KvRecord = {
        key: r.key,
        value: r.tombstone ? EMPTY : r.value,
        timestamp,
        versionNode: this.#self,
        tombstone: r.tombstone,
      };
      // Fixed here, once, on this node's clock: every copy carries the same instant.
      const expiresAtMs = expiryOf(r, nowMs);
      if (expiresAtMs !== undefined) record.expiresAtMs = expiresAtMs;
      return record;
    });
    const applied = await this.#applyAboveHeld(reqs, records);
    const copies = await this.#replicate(records, applied, positions);
    const results = new Array<WriteResult>(records.length);
    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      if (!applied[i]) {
        results[i] = failedWrite(
          rec.key,
          Code.FAILED_PRECONDITION,
          "not applied: the key holds a newer version",
          this.#self,
        );
        continue;
      }
      const ok = copies[i] >= this.o.writeQuorum;
      results[i] = {
        key: rec.key,
        ok,
        code: ok ? Code.OK : Code.UNAVAILABLE,
        message: ok
          ? (rec.tombstone ? "deleted" : "stored")
          : `only ${copies[i]} of ${this.o.writeQuorum} required copies written; the write may still spread`,
        nodeId: this.#self,
        replicas: copies[i],
        timestamp: rec.timestamp,
      };
    }
    return results;
  }

  /**
   * Applies records; a cluster-stamped write that meets a newer held version
   * is re-stamped above it, for that key only (see restamp.ts), so it is
   * neither refused nor silently older. A client-stamped one keeps
   * last-write-wins and is answered "not applied".
   */
  async #applyAboveHeld(reqs: readonly WriteRequest[], records: KvRecord[]): Promise<boolean[]> {
    const done = await applyAbove(
      this.o.storage,
      records,
      (i) => reqs[i].timestamp === 0,
      () => this.o.clock.now(),
    );
    done.records.forEach((r, i) => records[i] = r);
    return done.applied;
  }

  /**
   * Sends the applied records to their other copies; answers copies written
   * per record (0 for one not applied). With write_quorum 2 or more and a
   * strict quorum only copies on the key's own replicas count: a stand-in's
   * copy is kept, as a hint, but a write held by stand-ins while an own
   * replica serves stale reads must not be acknowledged, or write_quorum +
   * read_quorum > replication_factor would not make reads see acknowledged
   * writes. A sloppy quorum counts every distinct node that holds the write,
   * stand-ins included, trading that promise for writes that stay available
   * while a replica is down.
   */
  async #replicate(
    records: KvRecord[],
    applied: boolean[],
    positions?: number[],
  ): Promise<number[]> {
    const copies = new Array<number>(records.length).fill(0);
    const byPeer: Batches = new Map();
    const strict = this.o.writeQuorum > 1 && !this.o.sloppyQuorum;
    for (let i = 0; i < records.length; i++) {
      if (!applied[i]) continue;
      const record = records[i];
      const { targets, selfHints, natural } = this.#placeAt(positions?.[i] ?? ringHash(record.key));
      copies[i] = strict && !natural ? 0 : 1;
      // A coordinator that is neither a natural copy nor a stand-in (the
      // key's nodes are up but not serving yet, e.g. JOINING) keeps its copy
      // as a stand-in: a hint makes the handoff deliver it and then erase
      // it, so no stray copy outlives the write and later shows a stale or
      // deleted key.
      if (selfHints.length === 0 && targets.length > 0 && !natural) selfHints.push(targets[0].peer);
      for (const down of selfHints) this.o.hints.add(down, record.key, record);
      for (const { peer, hintFor } of targets) addTo(byPeer, peer, { record, hintFor }, i);
    }
    if (this.o.writeQuorum <= 1) {
      await Promise.all([...byPeer].map(([peer, { items }]) => this.o.replicator.enqueue(peer, items)));
      return copies;
    }
    await this.#sendCounting(byPeer, copies, strict);
    if (this.o.sloppyQuorum) await this.#sendToStandIns(records, byPeer, copies, positions);
    return copies;
  }

  /**
   * Sends batches synchronously and counts, per record, the copies that
   * count.
   */
  async #sendCounting(byPeer: Batches, copies: number[], strict: boolean): Promise<void> {
    await Promise.all([...byPeer].map(async ([peer, { items, idx }]) => {
      if (!await this.o.replicator.sendNow(peer, items)) return;
      // A peer can take a record twice (a stand-in that is also a future
      // holder during a membership change): it is one node, one copy.
      let counted = -1;
      items.forEach(({ hintFor }, j) => {
        if (idx[j] === counted || (strict && hintFor !== undefined)) return;
        copies[idx[j]]++;
        counted = idx[j];
      });
    }));
  }

  /**
   * Sloppy quorum: a replica that just failed is suspected now, so the
   * placement of a record still short of write_quorum names a stand-in in
   * its place; the record goes there too, once, instead of failing a write
   * that the next node could hold.
   */
  async #sendToStandIns(
    records: readonly KvRecord[],
    tried: Batches,
    copies: number[],
    positions?: number[],
  ): Promise<void> {
    const retry: Batches = new Map();
    for (let i = 0; i < records.length; i++) {
      if (copies[i] === 0 || copies[i] >= this.o.writeQuorum) continue;
      for (const { peer, hintFor } of this.#placeAt(positions?.[i] ?? ringHash(records[i].key)).targets) {
        if (hintFor === undefined || tried.get(peer)?.idx.includes(i)) continue;
        addTo(retry, peer, { record: records[i], hintFor }, i);
      }
    }
    if (retry.size > 0) await this.#sendCounting(retry, copies, false);
  }

  /**
   * Where a key's copies go now: the first `replication_factor` nodes that
   * can store it. Each live stand-in beyond the key's natural list is paired
   * with a natural node that is down and holds a hint for it; hints with no
   * stand-in stay here.
   */
  placement(key: string): Placement {
    const { targets, selfHints } = this.#placeAt(ringHash(key));
    return { targets, selfHints };
  }

  #placeAt(position: number): PlacementHere {
    const rf = this.o.replicationFactor;
    const natural = this.o.ring.walk(position, rf);
    // Usually every natural node can store: then they are the copies, and no walk more is needed.
    const stores = natural.every((id) => id === this.#self || this.o.canStore(id))
      ? natural
      : this.o.ring.walk(position, rf, (id) => id === this.#self || this.o.canStore(id));
    const missing = stores === natural ? [] : natural.filter((n) => !stores.includes(n));
    const extras = stores === natural ? [] : stores.filter((n) => !natural.includes(n));
    const targets: Placement["targets"] = [];
    const selfHints: string[] = missing.slice(extras.length);
    for (const peer of stores) {
      const k = extras.indexOf(peer);
      const hintFor = k >= 0 && k < missing.length ? missing[k] : undefined;
      if (peer === this.#self) {
        if (hintFor) selfHints.push(hintFor);
      } else {
        targets.push({ peer, hintFor });
      }
    }
    let here = natural.includes(this.#self);
    // During a membership change the key's future holders take the write
    // too, so what they streamed is not overtaken by writes made meanwhile.
    // One that cannot take it now gets a hint, handed off when it can.
    for (const peer of this.o.ring.pendingWalk?.(position, rf) ?? []) {
      if (peer === this.#self) {
        here = true;
        continue;
      }
      if (this.o.canStore(peer)) targets.push({ peer });
      else selfHints.push(peer);
    }
    return { targets, selfHints, natural: here };
  }

  async #coordinateReads(keys: readonly string[], budget?: AnswerBudget): Promise<ReadResult[]> {
    if (this.o.readQuorum <= 1) return await this.readLocal(keys, budget);
    // The local copies' sizes stand for the answer's before the replicas are asked.
    if (budget && this.o.storage.valueSizes) {
      const sizes = await this.o.storage.valueSizes(keys);
      budget.checkAhead(keys, sizes);
    }
    const results = await Promise.all(keys.map((k) => this.#quorumRead(k)));
    for (const r of results) budget?.addItem(r.key, r.value.length);
    return results;
  }

  /**
   * Reads `read_quorum` of the key's own replicas (never stand-ins, whose
   * copy may be missing: see #replicate), answers the newest, repairs the
   * stale ones.
   */
  async #quorumRead(key: string): Promise<ReadResult> {
    const nodes = this.o.ring.preferenceList(key, this.o.replicationFactor)
      .filter((id) => id === this.#self || this.o.canServe(id));
    const answers = await Promise.all(nodes.map(async (node) => {
      try {
        const recs = node === this.#self
          ? await this.o.storage.get([key])
          : (await this.o.transport.readRecords(node, [key])).filter((r) => r.key === key);
        return { node, record: recs[0] as KvRecord | undefined, ok: true };
      } catch (err) {
        if (err instanceof PeerUnavailableError) this.o.onUnreachable(node, err);
        return { node, record: undefined, ok: false };
      }
    }));
    const ok = answers.filter((a) => a.ok);
    if (ok.length < this.o.readQuorum) {
      return failedRead(
        key,
        Code.UNAVAILABLE,
        `only ${ok.length} of ${this.o.readQuorum} required copies of "${shortKey(key)}" answered`,
      );
    }
    const newest = newestOf(ok.map((a) => a.record));
    if (newest) this.#repair(newest, ok.filter((a) => isNewer(newest, a.record)).map((a) => a.node));
    return this.#readResult(key, newest);
  }

  /** Read repair: sends the newest version to the copies that lacked it. */
  #repair(newest: KvRecord, stale: string[]): void {
    for (const node of stale) {
      const done = node === this.#self
        ? this.o.storage.apply([newest])
        : this.o.replicator.enqueue(node, [{ record: newest }]);
      done.catch((err) => this.o.log.warn("read repair failed", { node, error: errorMessage(err) }));
    }
    if (stale.length > 0 && this.o.log.enabled("debug")) {
      this.o.log.debug("read repair", { key: newest.key, nodes: stale.join(",") });
    }
  }

  /** An expired record reads as absent, as a tombstone does (it is kept as one until the purge). */
  #readResult(key: string, record: KvRecord | undefined): ReadResult {
    const found = record !== undefined && isLive(record, Date.now());
    const result: ReadResult = {
      key,
      found,
      value: found ? record.value : EMPTY,
      timestamp: found ? record.timestamp : 0,
      versionNode: found ? record.versionNode : "",
      nodeId: this.#self,
      code: Code.OK,
      message: found ? "found" : "key not found",
    };
    if (found && record.expiresAtMs) result.expiresAtMs = record.expiresAtMs;
    return result;
  }
}

/** Records to send, by peer, with each one's index among the written records. */
type Batches = Map<string, { items: ReplicaItem[]; idx: number[] }>;

function addTo(batches: Batches, peer: string, item: ReplicaItem, i: number): void {
  let batch = batches.get(peer);
  if (!batch) batches.set(peer, batch = { items: [], idx: [] });
  batch.items.push(item);
  batch.idx.push(i);
}
