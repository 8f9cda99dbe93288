/**
 * The dispatcher: one place that turns a parsed command into its reply.
 *
 * It finds the command in the table, checks arity (Redis's "wrong number of
 * arguments" is produced here and nowhere else), authentication and what
 * the command needs, then runs its handler. Commands that arrived in one
 * read travel together where they can: a run of consecutive GETs (or plain
 * SETs) of distinct keys becomes one coordinator call, as a MultiGet
 * (MultiPut) would, so a pipelining client pays the per-call cost once per
 * run instead of once per command. Replies keep the commands' order.
 */
import type { Ctx, Gateway, Session } from "./context.ts";
import type { CommandSpec } from "./command.ts";
import { needsError } from "./command.ts";
import { RespError, text } from "./args.ts";
import { coded, err, OK, type Reply, type ReplyWriter } from "./reply.ts";
import { putKeys, readFailure, readKeys, writeFailure } from "./store.ts";
import { checkKey } from "../validate.ts";
import { errorMessage, KvError } from "../errors.ts";

/** Counts commands served and refused (the node's /metrics). */
export interface RespCounters {
  /** One command; `errorCode` is its error reply's code (ERR, NOAUTH...) when it failed. */
  command(name: string, errorCode?: string): void;
}

const NOAUTH = coded("NOAUTH", "Authentication required.");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Runs commands for the connections of one gateway. */
export class Dispatcher {
  constructor(private readonly gw: Gateway, private readonly counters?: RespCounters) {}

  /** Runs one read's commands in order, writing each reply to `out`. */
  async run(s: Session, cmds: Uint8Array[][], out: ReplyWriter): Promise<void> {
    const ctx: Ctx = { gw: this.gw, s };
    out.proto = s.proto;
    for (let i = 0; i < cmds.length && !s.closing;) {
      const run = s.authed ? this.#batchable(cmds, i) : 0;
      if (run > 1) {
        await this.#batch(cmds.slice(i, i + run), out);
        i += run;
        continue;
      }
      const reply = await this.#one(ctx, cmds[i]);
      out.proto = s.proto;
      out.write(reply);
      i++;
    }
  }

  /** Runs one command: lookup, arity, auth, needs, handler. */
  async #one(ctx: Ctx, args: Uint8Array[]): Promise<Reply> {
    this.gw.commandsServed++;
    const name = text(args[0]).toLowerCase();
    ctx.s.lastCommandMs = Date.now();
    const found = this.#resolve(args, name);
    if (found.reply) return this.#count("unknown", found.reply);
    const spec = found.spec!;
    ctx.s.lastCommand = spec.name;
    if (!ctx.s.authed && !spec.flags.includes("noauth")) return this.#count(spec.name, NOAUTH);
    if (spec.needs) return this.#count(spec.name, needsError(name.toUpperCase(), spec.needs));
    let reply: Reply;
    try {
      reply = await spec.run!(ctx, args);
    } catch (e) {
      reply = this.#errorReply(spec.name, e);
    }
    return this.#count(spec.name, reply);
  }

  /** The command's entry (a subcommand's for containers), or the reply refusing it. */
  #resolve(args: Uint8Array[], name: string): { spec?: CommandSpec; reply?: Reply } {
    let spec = this.gw.commands.find(name);
    if (!spec || name.includes("|")) return { reply: unknownCommand(args) };
    if (spec.subcommands && (args.length >= 2 || !spec.run)) {
      if (args.length < 2) return { reply: arityError(spec) };
      const sub = this.gw.commands.find(`${spec.name}|${text(args[1]).toLowerCase()}`);
      if (!sub) {
        return {
          reply: err(`unknown subcommand '${text(args[1]).slice(0, 128)}'. Try ${name.toUpperCase()} HELP.`),
        };
      }
      spec = sub;
    }
    const n = args.length;
    if ((spec.arity > 0 && n !== spec.arity) || n < -spec.arity) return { reply: arityError(spec) };
    return { spec };
  }

  #errorReply(name: string, e: unknown): Reply {
    if (e instanceof RespError) return e.reply;
    if (e instanceof KvError) return err(e.message);
    this.gw.node.log.error(`RESP ${name} failed unexpectedly`, { error: errorMessage(e) });
    return err(`${name} failed: ${errorMessage(e)}`);
  }

  #count(name: string, reply: Reply): Reply {
    this.counters?.command(name, reply.k === "err" ? reply.s.split(" ", 1)[0] : undefined);
    return reply;
  }

  /**
   * How many commands from `i` can go as one batch: consecutive GETs (or
   * plain SETs) with valid, distinct keys and values within the limits.
   */
  #batchable(cmds: Uint8Array[][], i: number): number {
    const kind = batchKind(cmds[i]);
    if (!kind) return 0;
    const limits = this.gw.node.config.limits;
    const seen = new Set<string>();
    let j = i;
    for (; j < cmds.length && batchKind(cmds[j]) === kind; j++) {
      const k = validKey(cmds[j][1], limits);
      if (k === undefined || seen.has(k)) break;
      if (kind === "set" && cmds[j][2].length > limits.maxValueBytes) break;
      seen.add(k);
      if (seen.size >= limits.maxBatchItems) break;
    }
    return j - i;
  }

  /** One coordinator call for a run of GETs (or SETs); a call that throws fails each command alike. */
  async #batch(cmds: Uint8Array[][], out: ReplyWriter): Promise<void> {
    const node = this.gw.node;
    const keys = cmds.map((c) => utf8.decode(c[1]));
    const kind = cmds[0].length === 2 ? "get" : "set";
    this.gw.commandsServed += cmds.length;
    try {
      if (kind === "get") {
        const rs = await readKeys(node, keys);
        for (const r of rs) {
          const failed = readFailure(r);
          if (failed) out.write(this.#count("get", failed));
          else {
            out.bulk(r.found ? r.value : null);
            this.counters?.command("get");
          }
        }
        return;
      }
      const ws = await putKeys(node, cmds.map((c, i) => ({ key: keys[i], value: c[2].slice() })));
      for (const w of ws) out.write(this.#count("set", writeFailure(w) ?? OK));
    } catch (e) {
      const reply = this.#errorReply(kind, e);
      for (let i = 0; i < cmds.length; i++) out.write(this.#count(kind, reply));
    }
  }
}

/** "get" or "set" for a command that can join a batch (GET k, SET k v), else undefined. */
function batchKind(c: Uint8Array[]): "get" | "set" | undefined {
  if (c.length < 2 || c.length > 3 || c[0].length !== 3) return undefined;
  const a = c[0];
  const e = a[1] | 0x20, t = a[2] | 0x20;
  if (e !== 0x65 || t !== 0x74) return undefined;
  const first = a[0] | 0x20;
  if (first === 0x67 && c.length === 2) return "get";
  if (first === 0x73 && c.length === 3) return "set";
  return undefined;
}

/** The key as a string when it is valid UTF-8 within the limits, else undefined. */
function validKey(a: Uint8Array, limits: Parameters<typeof checkKey>[1]): string | undefined {
  try {
    const k = utf8.decode(a);
    checkKey(k, limits);
    return k;
  } catch {
    return undefined;
  }
}

function arityError(spec: CommandSpec): Reply {
  return err(`wrong number of arguments for '${spec.name}' command`);
}

/** Redis's reply to an unknown command: its name, and its first arguments quoted. */
export function unknownCommand(args: Uint8Array[]): Reply {
  const quoted = args.slice(1).map((a) => `'${text(a).slice(0, 128)}' `).join("");
  return err(`unknown command '${text(args[0]).slice(0, 128)}', with args beginning with: ${quoted}`);
}
