/**
 * Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.
 *
 * AUTH checks the cluster's client token (security.client_token_file) with
 * the same constant-time check the gRPC edge uses; any user name is taken as
 * Redis's "default". Without a token, AUTH answers as Redis does when the
 * default user has no password. The whole cluster is database 0: SELECT of
 * another index is refused as Redis Cluster refuses it.
 */
import type { Ctx } from "../context.ts";
import { integer, text, utf8Text, word } from "../args.ts";
import { arr, bulk, coded, err, int, map, NIL, OK, type Reply, status } from "../reply.ts";
import { REDIS_VERSION } from "./server.ts";

const WRONGPASS = coded("WRONGPASS", "invalid username-password pair or user is disabled.");
const NO_PASSWORD = err(
  "AUTH <password> called without any password configured for the default user. " +
    "Are you sure your configuration is correct?",
);

export function ping(_ctx: Ctx, args: Uint8Array[]): Reply {
  if (args.length > 2) return err("wrong number of arguments for 'ping' command");
  // RESP2 has no push channel here, so PING answers as outside pub/sub.
  return args.length === 2 ? bulk(args[1]) : status("PONG");
}

export function echo(_ctx: Ctx, args: Uint8Array[]): Reply {
  return bulk(args[1]);
}

/** Checks a password (the client token); marks the session authenticated when it matches. */
function checkPassword(ctx: Ctx, password: Uint8Array): Reply | undefined {
  const check = ctx.gw.tokenCheck;
  if (!check) return undefined;
  if (!check(text(password))) return WRONGPASS;
  ctx.s.authed = true;
}

export function auth(ctx: Ctx, args: Uint8Array[]): Reply {
  if (args.length > 3) return err("syntax error");
  if (!ctx.gw.tokenCheck && args.length === 2) return NO_PASSWORD;
  return checkPassword(ctx, args[args.length - 1]) ?? OK;
}

export function hello(ctx: Ctx, args: Uint8Array[]): Reply {
  let proto = ctx.s.proto;
  if (args.length >= 2) {
    const v = text(args[1]);
    const n = /^-?[0-9]+$/.test(v) ? Number(v) : NaN;
    if (Number.isNaN(n)) return err("Protocol version is not an integer or out of range");
    if (n !== 2 && n !== 3) return coded("NOPROTO", "unsupported protocol version");
    proto = n;
  }
  let name: string | undefined;
  for (let i = 2; i < args.length; i++) {
    const opt = word(args[i]);
    if (opt === "auth" && i + 2 < args.length) {
      const refused = checkPassword(ctx, args[i + 2]);
      if (refused) return refused;
      i += 2;
    } else if (opt === "setname" && i + 1 < args.length) {
      name = utf8Text(args[++i], "client name");
      if (!validName(name)) return BAD_NAME;
    } else return err(`Syntax error in HELLO option '${text(args[i])}'`);
  }
  if (!ctx.s.authed) {
    return coded(
      "NOAUTH",
      "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
    );
  }
  ctx.s.proto = proto;
  if (name !== undefined) ctx.s.name = name === "" ? null : name;
  return map([
    ["server", bulk("redis")],
    ["version", bulk(REDIS_VERSION)],
    ["proto", int(proto)],
    ["id", int(ctx.s.id)],
    ["mode", bulk("standalone")],
    ["role", bulk("master")],
    ["modules", arr([])],
  ]);
}

export function select(_ctx: Ctx, args: Uint8Array[]): Reply {
  return integer(args[1]) === 0 ? OK : err("SELECT is not allowed in cluster mode");
}

export function quit(ctx: Ctx): Reply {
  ctx.s.closing = true;
  return OK;
}

export function reset(ctx: Ctx): Reply {
  ctx.s.proto = 2;
  ctx.s.name = null;
  ctx.s.authed = ctx.gw.tokenCheck === undefined;
  return status("RESET");
}

const BAD_NAME = err("Client names cannot contain spaces, newlines or special characters.");

function validName(name: string): boolean {
  return /^[!-~]*$/.test(name);
}

/** One line of CLIENT LIST / CLIENT INFO, in Redis's field order (the fields that mean something here). */
function clientLine(s: Ctx["s"]): string {
  const now = Date.now();
  return `id=${s.id} addr=${s.addr} laddr=${s.laddr} fd=-1 name=${s.name ?? ""} ` +
    `age=${Math.floor((now - s.createdMs) / 1000)} idle=${Math.floor((now - s.lastCommandMs) / 1000)} ` +
    `flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 ` +
    `tot-mem=0 events=r cmd=${s.lastCommand} user=default redir=-1 resp=${s.proto} ` +
    `lib-name=${s.libName} lib-ver=${s.libVer}\n`;
}

export const client = {
  id: (ctx: Ctx): Reply => int(ctx.s.id),
  getname: (ctx: Ctx): Reply => ctx.s.name === null ? NIL : bulk(ctx.s.name),
  setname(ctx: Ctx, args: Uint8Array[]): Reply {
    const name = utf8Text(args[2], "client name");
    if (!validName(name)) return BAD_NAME;
    ctx.s.name = name === "" ? null : name;
    return OK;
  },
  setinfo(ctx: Ctx, args: Uint8Array[]): Reply {
    const attr = word(args[2]);
    const v = utf8Text(args[3], "value");
    if (!validName(v)) return err(`${attr} cannot contain spaces, newlines or special characters.`);
    if (attr === "lib-name") ctx.s.libName = v;
    else if (attr === "lib-ver") ctx.s.libVer = v;
    else return err(`Unrecognized option '${text(args[2])}'`);
    return OK;
  },
  info: (ctx: Ctx): Reply => bulk(clientLine(ctx.s)),
  list: (ctx: Ctx): Reply => bulk([...ctx.gw.sessions].map((s) => clientLine(s)).join("")),
};
