/**
 * The shape of one entry of the command table, as Redis keeps it.
 *
 * Redis describes each command once, as data (name, arity, flags, where the
 * keys are); its dispatcher checks arity from that and COMMAND answers from
 * it. Entries here are the same, plus `needs`: a command whose meaning
 * needs a store feature not yet built (conditional writes, expiry) is in
 * the table, answered with a clear error until its handler slots in.
 */
import type { Ctx } from "./context.ts";
import { err, type Reply } from "./reply.ts";

/** Runs one command; `args[0]` is the command name as sent. */
export type Handler = (ctx: Ctx, args: Uint8Array[]) => Reply | Promise<Reply>;

/** A store feature a command waits for (the conditional-writes issue). */
export type Needs = "conditional writes" | "expiry";

/** Redis's command flags that clients and the dispatcher look at. */
export type Flag =
  | "readonly"
  | "write"
  | "fast"
  | "admin"
  | "noauth"
  | "loading"
  | "stale"
  | "noscript"
  | "denyoom"
  | "allow_busy";

/** One command (or subcommand, named "container|sub"). */
export interface CommandSpec {
  /** Lower-case name; subcommands are "client|setname". */
  name: string;
  /** Arguments counted with the name: n exactly, or -n at least n. */
  arity: number;
  flags: readonly Flag[];
  /** Key positions (1 = the first argument; 0 = none; last -1 = to the end). */
  firstKey: number;
  lastKey: number;
  step: number;
  /** COMMAND DOCS' group ("string", "generic", "connection", "server", "keyspace"). */
  group: string;
  summary: string;
  since: string;
  /** The feature this command waits for: it answers an error until it lands. */
  needs?: Needs;
  run?: Handler;
  subcommands?: readonly CommandSpec[];
}

/** Fields of a spec that are usually left at their defaults. */
type Options = Partial<Pick<CommandSpec, "firstKey" | "lastKey" | "step" | "needs" | "run" | "subcommands">>;

/** A table entry, written compactly. */
export function command(
  name: string,
  arity: number,
  flags: readonly Flag[],
  group: string,
  summary: string,
  since: string,
  o: Options = {},
): CommandSpec {
  return {
    name,
    arity,
    flags,
    firstKey: o.firstKey ?? 0,
    lastKey: o.lastKey ?? 0,
    step: o.step ?? 0,
    group,
    summary,
    since,
    needs: o.needs,
    run: o.run,
    subcommands: o.subcommands,
  };
}

/** Key positions of a command with one key, its first argument. */
export const ONE_KEY = { firstKey: 1, lastKey: 1, step: 1 } as const;
/** Key positions of a command whose every argument is a key. */
export const ALL_KEYS = { firstKey: 1, lastKey: -1, step: 1 } as const;

/** The reply of a command waiting for a feature: never an imitation of it. */
export function needsError(what: string, needs: Needs): Reply {
  return err(`'${what}' needs ${needs}, not available in this version of the store`);
}
