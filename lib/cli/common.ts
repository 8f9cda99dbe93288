/**
 * What every command-line mode shares: flag parsing, help, the logger, and
 * how this program starts copies of itself.
 *
 * Flags are parsed with `node:util` parseArgs (jsr's @std/cli is not
 * reachable from where this is built).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { basename, resolve } from "node:path";
import { type ClusterConfig, loadConfig, type LogFormat, type LogLevel } from "../config.ts";
import { Logger } from "../log.ts";
import { nearest } from "../nearest.ts";

/** Exit codes scripts can rely on. */
export const EXIT = { OK: 0, NOT_FOUND: 1, ERROR: 2 } as const;

/** A user error worth one clear line and exit code 2, not a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses flags strictly; unknown flags are a UsageError naming them. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const flag = /^Unknown option '(-[^']*)'/.exec((err as Error).message)?.[1];
    if (flag === undefined) throw new UsageError((err as Error).message);
    const near = nearest(flag, Object.keys(options).map((o) => `--${o}`));
    throw new UsageError(`unknown flag ${flag}${near ? `; did you mean ${near}?` : " (see --help)"}`);
  }
}

/** The cluster file from `--config`, or the embedded default. */
export function configFrom(path: string | undefined): ClusterConfig {
  return loadConfig(path === undefined ? undefined : resolve(path));
}

/** A logger, with command-line flags overriding the cluster file. */
export function loggerFrom(
  config: ClusterConfig,
  flags: { "log-level"?: string; "log-format"?: string },
  name?: string,
): Logger {
  const level = (flags["log-level"] ?? config.logging.level) as LogLevel;
  const format = (flags["log-format"] ?? config.logging.format) as LogFormat;
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new UsageError(`--log-level must be debug, info, warn or error, not "${level}"`);
  }
  if (!["text", "json"].includes(format)) {
    throw new UsageError(`--log-format must be text or json, not "${format}"`);
  }
  return new Logger({ level, format, name });
}

/** Whether this process is a `deno compile`d executable rather than `deno run`. */
export function isCompiled(): boolean {
  return /\/deno-compile-[^/]+\//.test(Deno.mainModule) || !basename(Deno.execPath()).startsWith("deno");
}

/**
 * The command line that runs this program again with other arguments, and
 * `denoFlags` for `deno run` (a compiled executable has its flags built in).
 */
export function selfCommand(
  args: string[],
  denoFlags: readonly string[] = [],
): { cmd: string; args: string[] } {
  if (isCompiled()) return { cmd: Deno.execPath(), args };
  const main = new URL(Deno.mainModule).pathname;
  return { cmd: Deno.execPath(), args: ["run", "-A", "--quiet", ...denoFlags, main, ...args] };
}

/** Parses "host:port", or a bare port on 127.0.0.1. */
export function parseAddress(s: string): string {
  if (/^\d+$/.test(s)) return `127.0.0.1:${s}`;
  const m = /^(.+):(\d+)$/.exec(s);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`"${s}" is not host:port`);
  return s;
}

/** A numeric flag's value, or a UsageError naming the flag and its bounds. */
export function numberFlag(s: string, flag: string, min: number, max = Infinity): number {
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(
      `${flag} must be a number ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`}`,
    );
  }
  return n;
}

/** A whole-number flag's value, or a UsageError naming the flag. */
export function intFlag(s: string, flag: string, min: number): number {
  const n = Number(s);
  if (s.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} must be a whole number >= ${min}, not "${s}"`);
  }
  return n;
}
