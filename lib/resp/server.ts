/**
 * The RESP listener of a node (its `resp_port`): the Redis protocol gateway.
 *
 * Each connection reads, parses every command complete in what arrived,
 * hands them to the dispatcher together, and queues the replies for a
 * writer that sends them as the client reads. The limits Redis keeps are
 * kept here: a connection whose unsent replies pass the output-buffer limit
 * is closed (a client that pipelines without reading cannot make the node
 * buffer without bound), a protocol error (a bulk longer than the value
 * limit among them) is answered and closes the connection, idle connections
 * are closed, and connections past `resp.max_connections` are refused.
 * Protected mode applies as to node traffic: without a client token only
 * loopback clients are served unless `security.insecure` is set; with one,
 * AUTH or HELLO AUTH must come first.
 */
import type { KvNode } from "../node.ts";
import type { NodeSecurity } from "../security/settings.ts";
import { clientTokenCheck } from "../security/client_auth.ts";
import { isLoopbackHost } from "../security/protected_mode.ts";
import { Throttle } from "../throttle.ts";
import { errorMessage } from "../errors.ts";
import type { Gateway, Session } from "./context.ts";
import { ClusterKeys } from "./cluster_keys.ts";
import { CommandTable } from "./table.ts";
import { Dispatcher, type RespCounters } from "./dispatch.ts";
import { ProtocolError, RequestParser } from "./parser.ts";
import { ReplyWriter } from "./reply.ts";
import { ScanCursors } from "./scan_cursors.ts";

/** Options of {@link serveResp}. */
export interface RespServeOptions {
  node: KvNode;
  security: NodeSecurity;
  hostname: string;
  port: number;
  counters?: RespCounters;
}

/** A running gateway. */
export interface RespServer {
  port: number;
  /** Open connections now (the status page). */
  connections(): number;
  /** Stops listening and closes every connection. */
  close(): void;
}

const READ_BYTES = 64 * 1024;
const enc = new TextEncoder();
const DENIED = "-DENIED Redis protocol gateway running in protected mode: no client token is set " +
  "(security.client_token_file), so only loopback clients are served. Set a client token and use AUTH, " +
  "or set security.insecure: true to serve any address without authentication.\r\n";

/** Starts the gateway on `hostname:port` (0: any free port). */
export function serveResp(o: RespServeOptions): RespServer {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: o.hostname, port: o.port, transport: "tcp" });
  } catch (err) {
    throw new Error(
      `cannot start the Redis protocol gateway on ${o.hostname}:${o.port}: ${errorMessage(err)}`,
    );
  }
  const port = (listener.addr as Deno.NetAddr).port;
  const sessions = new Set<Session>();
  const gw: Gateway = {
    node: o.node,
    settings: o.node.config.resp,
    keys: new ClusterKeys(o.node, o.security),
    commands: new CommandTable(),
    tokenCheck: o.security.clientToken ? clientTokenCheck(o.security.clientToken) : undefined,
    sessions,
    startedMs: Date.now(),
    port,
    commandsServed: 0,
    connectionsReceived: 0,
    rejectedConnections: 0,
  };
  const dispatcher = new Dispatcher(gw, o.counters);
  const conns = new Map<Deno.TcpConn, Session>();
  const throttle = new Throttle(60_000);
  let nextId = 1;
  let closed = false;
  const refuse = (conn: Deno.TcpConn, line: string, why: string, source: string) => {
    gw.rejectedConnections++;
    const held = throttle.take(source);
    if (held !== undefined) {
      o.node.log.warn(`RESP: refused a connection: ${why}`, { source, earlier_refusals_not_logged: held });
    }
    conn.write(enc.encode(line)).catch(() => {}).finally(() => closeQuietly(conn));
  };
  (async () => {
    for await (const conn of listener) {
      gw.connectionsReceived++;
      const remote = conn.remoteAddr as Deno.NetAddr;
      if (!gw.tokenCheck && !o.security.insecure && !isLoopbackHost(remote.hostname)) {
        refuse(conn, DENIED, "protected mode (not loopback, no client token)", remote.hostname);
        continue;
      }
      if (conns.size >= gw.settings.maxConnections) {
        refuse(
          conn,
          "-ERR max number of clients reached\r\n",
          "resp.max_connections reached",
          remote.hostname,
        );
        continue;
      }
      const session = newSession(nextId++, conn, gw.tokenCheck === undefined);
      conns.set(conn, session);
      sessions.add(session);
      serveConnection(conn, session, gw, dispatcher, throttle).finally(() => {
        conns.delete(conn);
        sessions.delete(session);
      });
    }
  })().catch((e) => {
    if (!closed) o.node.log.error("RESP listener stopped", { error: errorMessage(e) });
  });
  // One sweep for every connection instead of a timer re-armed on each read.
  const idleMs = gw.settings.idleTimeoutMs;
  const sweep = idleMs > 0
    ? setInterval(() => {
      const now = Date.now();
      for (const [conn, s] of conns) if (now - s.lastReadMs > idleMs) closeQuietly(conn);
    }, Math.max(10, Math.min(1000, idleMs / 4)))
    : undefined;
  return {
    port,
    connections: () => conns.size,
    close() {
      closed = true;
      clearInterval(sweep);
      closeQuietly(listener);
      for (const c of conns.keys()) closeQuietly(c);
      gw.keys.close();
    },
  };
}

function newSession(id: number, conn: Deno.TcpConn, authed: boolean): Session {
  const r = conn.remoteAddr as Deno.NetAddr;
  const l = conn.localAddr as Deno.NetAddr;
  const now = Date.now();
  return {
    id,
    addr: `${r.hostname}:${r.port}`,
    laddr: `${l.hostname}:${l.port}`,
    createdMs: now,
    lastCommandMs: now,
    lastReadMs: now,
    lastCommand: "NULL",
    proto: 2,
    name: null,
    libName: "",
    libVer: "",
    authed,
    closing: false,
    cursors: new ScanCursors(),
  };
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** Reads, dispatches and answers one connection until it closes or breaks a limit. */
async function serveConnection(
  conn: Deno.TcpConn,
  s: Session,
  gw: Gateway,
  dispatcher: Dispatcher,
  throttle: Throttle,
): Promise<void> {
  const lim = gw.node.config.limits;
  conn.setNoDelay(true);
  const parser = new RequestParser({
    maxBulkBytes: Math.max(lim.maxValueBytes, lim.maxKeyBytes),
    maxQueryBytes: lim.maxMessageBytes,
  });
  const out = new Outbox(conn, gw.settings.outputBufferLimitBytes);
  const writer = new ReplyWriter();
  try {
    // One read buffer per connection; what was read is copied out at its size (the parser keeps views of it).
    const buf = new Uint8Array(READ_BYTES);
    while (!out.broken) {
      const n = await conn.read(buf);
      if (n === null) break;
      s.lastReadMs = Date.now();
      let cmds;
      try {
        cmds = parser.push(buf.slice(0, n));
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        // The commands before the bad one are not answered: Redis drops the whole read too.
        out.send(enc.encode(`-ERR ${e.message}\r\n`));
        await out.flushed();
        break;
      }
      if (cmds.length === 0) continue;
      await dispatcher.run(s, cmds, writer);
      if (!out.send(writer.take())) {
        const source = s.addr.slice(0, s.addr.lastIndexOf(":"));
        const held = throttle.take(`obuf ${source}`);
        if (held !== undefined) {
          gw.node.log.warn(
            "RESP: closed a connection past its output buffer limit (resp.output_buffer_limit_bytes)",
            {
              source,
              earlier_closes_not_logged: held,
            },
          );
        }
        break;
      }
      if (s.closing) {
        await out.flushed();
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.ConnectionReset)) {
      if (!(e instanceof Deno.errors.Interrupted)) {
        gw.node.log.debug("RESP connection ended", { error: errorMessage(e) });
      }
    }
  } finally {
    closeQuietly(conn);
  }
}

/** Replies waiting to be written to one connection, bounded. */
class Outbox {
  #queue: Uint8Array[] = [];
  #bytes = 0;
  #writing?: Promise<void>;
  broken = false;

  constructor(private readonly conn: Deno.TcpConn, private readonly limit: number) {}

  /** Queues bytes; false (and the connection is to close) when the unsent bytes pass the limit. */
  send(b: Uint8Array): boolean {
    if (b.length === 0) return true;
    this.#bytes += b.length;
    if (this.#bytes > this.limit) {
      this.broken = true;
      return false;
    }
    this.#queue.push(b);
    this.#writing ??= this.#drain().finally(() => this.#writing = undefined);
    return true;
  }

  /** Resolves once everything queued is written (or the connection broke). */
  async flushed(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const parts = this.#queue;
        this.#queue = [];
        let chunk = parts[0];
        if (parts.length > 1) {
          chunk = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
          let at = 0;
          for (const p of parts) chunk.set(p, at), at += p.length;
        }
        for (let off = 0; off < chunk.length;) off += await this.conn.write(chunk.subarray(off));
        this.#bytes -= chunk.length;
      }
    } catch {
      this.broken = true;
      this.#queue = [];
    }
  }
}
