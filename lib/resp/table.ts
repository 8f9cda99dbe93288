/**
 * The gateway's one command table: every command it knows, as data.
 *
 * The dispatcher checks arity and authentication from these entries and
 * COMMAND answers from them. Read-modify-write commands run through
 * conditional writes (cas.ts), never a read followed by a plain put, SET's
 * NX/XX/GET/KEEPTTL, GETEX's options and EXPIRE's NX/XX/GT/LT included.
 */
import { ALL_KEYS, command as c, type CommandSpec, type Flag, ONE_KEY } from "./command.ts";
import * as str from "./handlers/strings.ts";
import * as ks from "./handlers/keyspace.ts";
import * as conn from "./handlers/connection.ts";
import * as srv from "./handlers/server.ts";
import * as exp from "./handlers/expiry.ts";
import * as cnt from "./handlers/counters.ts";
import * as rmw from "./handlers/rmw.ts";
import * as ren from "./handlers/rename.ts";

const R: Flag[] = ["readonly", "fast"];
const W: Flag[] = ["write", "denyoom"];
const WF: Flag[] = ["write", "denyoom", "fast"];
const CONN: Flag[] = ["noscript", "loading", "stale", "fast"];
const OPEN: Flag[] = ["noscript", "loading", "stale", "fast", "noauth"];

const TWO_KEYS = { firstKey: 1, lastKey: 2, step: 1 } as const;

const ENTRIES: CommandSpec[] = [
  // strings
  c("get", 2, R, "string", "Get the value of a key", "1.0.0", { ...ONE_KEY, run: str.get }),
  c(
    "set",
    -3,
    W,
    "string",
    "Set the string value of a key",
    "1.0.0",
    { ...ONE_KEY, run: str.set },
  ),
  c("mget", -2, R, "string", "Get the values of all the given keys", "1.0.0", { ...ALL_KEYS, run: str.mget }),
  c("mset", -3, W, "string", "Set multiple keys to multiple values (not atomically here)", "1.0.1", {
    firstKey: 1,
    lastKey: -1,
    step: 2,
    run: str.mset,
  }),
  c("strlen", 2, R, "string", "Get the length of the value stored in a key", "2.2.0", {
    ...ONE_KEY,
    run: str.strlen,
  }),
  c("getrange", 4, ["readonly"], "string", "Get a substring of the string stored at a key", "2.4.0", {
    ...ONE_KEY,
    run: str.getrange,
  }),
  c("setnx", 3, WF, "string", "Set the value of a key, only if the key does not exist", "1.0.0", {
    ...ONE_KEY,
    run: rmw.setnx,
  }),
  c("setex", 4, W, "string", "Set the value and expiration of a key", "2.0.0", {
    ...ONE_KEY,
    run: exp.setex,
  }),
  c("psetex", 4, W, "string", "Set the value and expiration in milliseconds of a key", "2.6.0", {
    ...ONE_KEY,
    run: exp.setex,
  }),
  c("getset", 3, WF, "string", "Set the string value of a key and return its old value", "1.0.0", {
    ...ONE_KEY,
    run: rmw.getset,
  }),
  c("getdel", 2, WF, "string", "Get the value of a key and delete the key", "6.2.0", {
    ...ONE_KEY,
    run: rmw.getdel,
  }),
  c("getex", -2, WF, "string", "Get the value of a key and optionally set its expiration", "6.2.0", {
    ...ONE_KEY,
    run: exp.getex,
  }),
  c(
    "msetnx",
    -3,
    W,
    "string",
    "Set multiple keys to multiple values, only if none of the keys exist (one distinct key here)",
    "1.0.1",
    {
      firstKey: 1,
      lastKey: -1,
      step: 2,
      run: rmw.msetnx,
    },
  ),
  c("append", 3, W, "string", "Append a value to a key", "2.0.0", { ...ONE_KEY, run: rmw.append }),
  c(
    "setrange",
    4,
    W,
    "string",
    "Overwrite part of a string at key starting at the specified offset",
    "2.2.0",
    {
      ...ONE_KEY,
      run: rmw.setrange,
    },
  ),
  c("incr", 2, WF, "string", "Increment the integer value of a key by one", "1.0.0", {
    ...ONE_KEY,
    run: cnt.incr,
  }),
  c("decr", 2, WF, "string", "Decrement the integer value of a key by one", "1.0.0", {
    ...ONE_KEY,
    run: cnt.decr,
  }),
  c("incrby", 3, WF, "string", "Increment the integer value of a key by the given amount", "1.0.0", {
    ...ONE_KEY,
    run: cnt.incrby,
  }),
  c("decrby", 3, WF, "string", "Decrement the integer value of a key by the given number", "1.0.0", {
    ...ONE_KEY,
    run: cnt.decrby,
  }),
  c("incrbyfloat", 3, WF, "string", "Increment the float value of a key by the given amount", "2.6.0", {
    ...ONE_KEY,
    run: cnt.incrbyfloat,
  }),
  // keys
  c("del", -2, ["write"], "generic", "Delete a key", "1.0.0", { ...ALL_KEYS, run: ks.del }),
  c("unlink", -2, ["write", "fast"], "generic", "Delete a key", "4.0.0", { ...ALL_KEYS, run: ks.del }),
  c("exists", -2, R, "generic", "Determine if a key exists", "1.0.0", { ...ALL_KEYS, run: ks.exists }),
  c("type", 2, R, "generic", "Determine the type stored at key", "1.0.0", { ...ONE_KEY, run: ks.type }),
  c("ttl", 2, R, "generic", "Get the time to live for a key in seconds", "1.0.0", {
    ...ONE_KEY,
    run: exp.ttl,
  }),
  c("pttl", 2, R, "generic", "Get the time to live for a key in milliseconds", "2.6.0", {
    ...ONE_KEY,
    run: exp.ttl,
  }),
  c("expiretime", 2, R, "generic", "Get the expiration Unix timestamp for a key", "7.0.0", {
    ...ONE_KEY,
    run: exp.ttl,
  }),
  c("pexpiretime", 2, R, "generic", "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", {
    ...ONE_KEY,
    run: exp.ttl,
  }),
  c(
    "expire",
    -3,
    WF,
    "generic",
    "Set a key's time to live in seconds",
    "1.0.0",
    {
      ...ONE_KEY,
      run: exp.expire,
    },
  ),
  c(
    "pexpire",
    -3,
    WF,
    "generic",
    "Set a key's time to live in milliseconds",
    "2.6.0",
    {
      ...ONE_KEY,
      run: exp.expire,
    },
  ),
  c(
    "expireat",
    -3,
    WF,
    "generic",
    "Set the expiration for a key as a UNIX timestamp",
    "1.2.0",
    {
      ...ONE_KEY,
      run: exp.expire,
    },
  ),
  c(
    "pexpireat",
    -3,
    WF,
    "generic",
    "Set the expiration for a key as a UNIX timestamp in milliseconds",
    "2.6.0",
    {
      ...ONE_KEY,
      run: exp.expire,
    },
  ),
  c("persist", 2, WF, "generic", "Remove the expiration from a key", "2.2.0", {
    ...ONE_KEY,
    run: exp.persist,
  }),
  c(
    "rename",
    3,
    ["write"],
    "generic",
    "Rename a key (to itself only here: two keys cannot change atomically)",
    "1.0.0",
    { ...TWO_KEYS, run: ren.rename },
  ),
  c(
    "renamenx",
    3,
    WF,
    "generic",
    "Rename a key, only if the new key does not exist (to itself only here)",
    "1.0.0",
    {
      ...TWO_KEYS,
      run: ren.renamenx,
    },
  ),
  c(
    "copy",
    -3,
    ["write", "denyoom"],
    "generic",
    "Copy a key (refused between two keys here: not atomic)",
    "6.2.0",
    { ...TWO_KEYS, run: ren.copy },
  ),
  c("scan", -2, ["readonly"], "generic", "Incrementally iterate the keys space", "2.8.0", { run: ks.scan }),
  c("keys", 2, ["readonly"], "generic", "Find all keys matching the given pattern", "1.0.0", {
    run: ks.keys,
  }),
  c("randomkey", 1, ["readonly"], "generic", "Return a random key from the keyspace", "1.0.0", {
    run: ks.randomkey,
  }),
  // server
  c("dbsize", 1, R, "server", "Return the number of keys in the selected database", "1.0.0", {
    run: ks.dbsize,
  }),
  c("flushdb", -1, ["write"], "server", "Remove all keys from the current database", "1.0.0", {
    run: ks.flush,
  }),
  c("flushall", -1, ["write"], "server", "Remove all keys from all databases", "1.0.0", { run: ks.flush }),
  c("time", 1, ["loading", "stale", "fast"], "server", "Return the current server time", "2.6.0", {
    run: srv.time,
  }),
  c("info", -1, ["loading", "stale"], "server", "Get information and statistics about the server", "1.0.0", {
    run: srv.infoCmd,
  }),
  c("command", -1, ["loading", "stale"], "server", "Get array of Redis command details", "2.8.13", {
    run: srv.commandCmd.all,
    subcommands: [
      c("command|count", 2, ["loading", "stale"], "server", "Get total number of Redis commands", "2.8.13", {
        run: srv.commandCmd.count,
      }),
      c(
        "command|docs",
        -2,
        ["loading", "stale"],
        "server",
        "Get array of specific Redis command documentation",
        "7.0.0",
        {
          run: srv.commandCmd.docs,
        },
      ),
      c(
        "command|info",
        -2,
        ["loading", "stale"],
        "server",
        "Get array of specific Redis command details",
        "2.8.13",
        {
          run: srv.commandCmd.info,
        },
      ),
      c("command|list", -2, ["loading", "stale"], "server", "Get an array of Redis command names", "7.0.0", {
        run: srv.commandCmd.list,
      }),
    ],
  }),
  c("config", -2, [], "server", "A container for server configuration commands", "2.0.0", {
    subcommands: [
      c(
        "config|get",
        -3,
        ["admin", "noscript", "loading", "stale"],
        "server",
        "Get the values of configuration parameters",
        "2.0.0",
        {
          run: srv.configCmd.get,
        },
      ),
      c(
        "config|set",
        -4,
        ["admin", "noscript", "loading", "stale"],
        "server",
        "Set configuration parameters to the given values",
        "2.0.0",
        {
          run: srv.configCmd.set,
        },
      ),
      c(
        "config|resetstat",
        2,
        ["admin", "noscript", "loading", "stale"],
        "server",
        "Reset the stats returned by INFO",
        "2.0.0",
        {
          run: srv.configCmd.resetstat,
        },
      ),
    ],
  }),
  // connection
  c("ping", -1, ["fast"], "connection", "Ping the server", "1.0.0", { run: conn.ping }),
  c("echo", 2, ["fast"], "connection", "Echo the given string", "1.0.0", { run: conn.echo }),
  c("hello", -1, OPEN, "connection", "Handshake with Redis", "6.0.0", { run: conn.hello }),
  c("auth", -2, OPEN, "connection", "Authenticate to the server", "1.0.0", { run: conn.auth }),
  c("select", 2, CONN, "connection", "Change the selected database for the current connection", "1.0.0", {
    run: conn.select,
  }),
  c(
    "quit",
    -1,
    ["noscript", "loading", "stale", "fast", "noauth", "allow_busy"],
    "connection",
    "Close the connection",
    "1.0.0",
    {
      run: conn.quit,
    },
  ),
  c("reset", 1, OPEN, "connection", "Reset the connection", "6.2.0", { run: conn.reset }),
  c("client", -2, [], "connection", "A container for client connection commands", "2.4.0", {
    subcommands: [
      c("client|id", 2, CONN, "connection", "Returns the client ID for the current connection", "5.0.0", {
        run: conn.client.id,
      }),
      c("client|getname", 2, CONN, "connection", "Get the current connection name", "2.6.9", {
        run: conn.client.getname,
      }),
      c("client|setname", 3, CONN, "connection", "Set the current connection name", "2.6.9", {
        run: conn.client.setname,
      }),
      c("client|setinfo", 4, CONN, "connection", "Set client or connection specific info", "7.2.0", {
        run: conn.client.setinfo,
      }),
      c(
        "client|info",
        2,
        CONN,
        "connection",
        "Returns information about the current client connection",
        "6.2.0",
        {
          run: conn.client.info,
        },
      ),
      c(
        "client|list",
        -2,
        ["admin", "noscript", "loading", "stale"],
        "connection",
        "Get the list of client connections",
        "2.4.0",
        {
          run: conn.client.list,
        },
      ),
    ],
  }),
];

/** The table, looked up by lower-case name ("client|setname" for subcommands). */
export class CommandTable {
  readonly #byName = new Map<string, CommandSpec>();

  constructor(readonly entries: readonly CommandSpec[] = ENTRIES) {
    for (const e of entries) {
      this.#byName.set(e.name, e);
      for (const sub of e.subcommands ?? []) this.#byName.set(sub.name, sub);
    }
  }

  /** A command or subcommand by lower-case name. */
  find(name: string): CommandSpec | undefined {
    return this.#byName.get(name);
  }

  /** The top-level commands. */
  all(): readonly CommandSpec[] {
    return this.entries;
  }
}
