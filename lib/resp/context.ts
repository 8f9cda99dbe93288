/**
 * What a command handler sees: its connection's session and the gateway.
 *
 * The session is the per-connection state Redis keeps per client (protocol,
 * name, whether AUTH passed, SCAN cursors); the gateway is what every
 * connection of a node shares (the node, its settings, cluster-wide key
 * listing, counters). Handlers get both and nothing else.
 */
import type { KvNode } from "../node.ts";
import type { RespConfig } from "../config.ts";
import type { ClusterKeys } from "./cluster_keys.ts";
import type { ScanCursors } from "./scan_cursors.ts";
import type { ClientTokenCheck } from "../security/client_auth.ts";
import type { CommandTable } from "./table.ts";

/** One client connection's state. */
export interface Session {
  readonly id: number;
  /** The peer's address, "host:port". */
  readonly addr: string;
  readonly laddr: string;
  readonly createdMs: number;
  lastCommandMs: number;
  /** When the connection last sent anything (the idle timeout). */
  lastReadMs: number;
  lastCommand: string;
  proto: 2 | 3;
  name: string | null;
  libName: string;
  libVer: string;
  /** Whether commands other than AUTH/HELLO/QUIT may run (always true without a client token). */
  authed: boolean;
  /** Set by QUIT: close once the replies so far are sent. */
  closing: boolean;
  readonly cursors: ScanCursors;
}

/** What every connection of one node's gateway shares. */
export interface Gateway {
  readonly node: KvNode;
  readonly settings: RespConfig;
  readonly keys: ClusterKeys;
  /** The command table (COMMAND answers from it). */
  readonly commands: CommandTable;
  /** Checks a presented client token; undefined when the cluster sets none. */
  readonly tokenCheck?: ClientTokenCheck;
  /** Open connections' sessions, for CLIENT LIST and INFO clients. */
  readonly sessions: ReadonlySet<Session>;
  readonly startedMs: number;
  readonly port: number;
  /** Commands served, for INFO stats. */
  commandsServed: number;
  connectionsReceived: number;
  rejectedConnections: number;
}

/** A handler's view: the gateway and the calling connection. */
export interface Ctx {
  readonly gw: Gateway;
  readonly s: Session;
}
