/**
 * Builds a node's per-key consensus from its parts: the vote book its
 * storage engine allows (Redis: durable, saved before each answer; memory:
 * forgotten on restart, hence a floor, vote_floor.ts), the acceptor and the
 * service.
 */
import type { Storage } from "../storage/mod.ts";
import type { HybridClock, WallClock } from "../hlc.ts";
import type { RingLike } from "../membership/live_ring.ts";
import type { Logger } from "../log.ts";
import type { HintStore } from "../hints.ts";
import { Code, KvError, type PeerUnavailableError } from "../errors.ts";
import { KeyAcceptor, MemoryVoteBook, StorageVoteBook, type VoteBook } from "./acceptor.ts";
import { Lwt, type LwtTransport, rangeMoving } from "./service.ts";
import { FloorKeeper, type MemberView } from "./vote_floor.ts";

/** Options of {@link createLwt}. */
export interface CreateLwtOptions {
  self: string;
  storage: Storage;
  clock: HybridClock;
  wall: WallClock;
  ring: RingLike;
  replicationFactor: number;
  maxClockSkewMs: number;
  /** Deadline of one peer call; an operation may take a few. */
  rpcTimeoutMs: number;
  transport?: LwtTransport;
  log: Logger;
  canServe: (id: string) => boolean;
  /** Whether this node holds its data (not recovering): a forgetful acceptor waits for it. */
  recovered: () => boolean;
  onUnreachable: (peer: string, err: PeerUnavailableError) => void;
  hints?: HintStore;
  /**
   * The other members of the current list and its epoch: once each has
   * answered its high-water (`floor.heard`), a forgetful acceptor votes
   * above their highest. Absent: only its start-time floor.
   */
  members?: () => MemberView;
}

/** Rounds of calls one operation may take before it gives up. */
const CALLS_PER_OPERATION = 3;

/** How long one conditional operation may run on the key's leader. */
export function lwtOperationMs(config: { failureDetection: { rpcTimeoutMs: number } }): number {
  return CALLS_PER_OPERATION * config.failureDetection.rpcTimeoutMs;
}

/** A node's per-key acceptor and its conditional-operation service. */
export function createLwt(
  o: CreateLwtOptions,
): { acceptor: KeyAcceptor; lwt: Lwt; floor: FloorKeeper; timeoutMs: number } {
  const s = o.storage;
  const book: VoteBook = s.loadMeta && s.saveMeta && s.deleteMeta
    ? new StorageVoteBook({
      loadMeta: (n) => s.loadMeta!(n),
      saveMeta: (n, v) => s.saveMeta!(n, v),
      deleteMeta: (n) => s.deleteMeta!(n),
    })
    : new MemoryVoteBook();
  const floor = new FloorKeeper({
    self: o.self,
    durable: book.durable,
    startMs: o.wall(),
    maxClockSkewMs: o.maxClockSkewMs,
    wall: o.wall,
    clockNow: () => o.clock.now(),
    observe: (round) => o.clock.observe(round),
    members: o.members,
    log: o.log,
  });
  const acceptor = new KeyAcceptor({
    self: o.self,
    storage: s,
    book,
    floor: () => floor.floor(),
    mark: floor.mark,
    ready: () => s.healthy() && (book.durable || o.recovered()),
    blocked: (key) => rangeMoving(o.ring, o.replicationFactor, key),
  });
  const timeoutMs = CALLS_PER_OPERATION * o.rpcTimeoutMs;
  const lwt = new Lwt({
    self: o.self,
    ring: o.ring,
    replicationFactor: o.replicationFactor,
    clock: o.clock,
    wall: o.wall,
    acceptor,
    transport: o.transport ?? noPeers,
    log: o.log,
    canServe: o.canServe,
    onUnreachable: o.onUnreachable,
    timeoutMs,
    hints: o.hints,
    mark: floor.mark,
  });
  return { acceptor, lwt, floor, timeoutMs };
}

const refuse = (): never => {
  throw new KvError(Code.UNAVAILABLE, "this node was started without peer calls for conditional operations");
};
const noPeers: LwtTransport = { prepare: refuse, accept: refuse, commit: refuse, forward: refuse };
