/**
 * Levelled logging, as text lines or JSON lines, to stderr.
 *
 * Callers on hot paths check `enabled("debug")` before building a message, so
 * a node at the default level pays nothing for its per-operation lines.
 */
import type { LogFormat, LogLevel } from "./config.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Extra structured fields of a log line. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Options of {@link Logger}. */
export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Written on every line: the node id, for example. */
  name?: string;
  /** Where lines go; stderr unless a test captures them. */
  write?: (line: string) => void;
}

/** A logger bound to a level, a format and a name. */
export class Logger {
  readonly #min: number;
  readonly #write: (line: string) => void;

  constructor(private readonly options: LoggerOptions) {
    this.#min = RANK[options.level];
    this.#write = options.write ?? ((line) => console.error(line));
  }

  /** Whether lines of this level are written. */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.#min;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log("debug", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#log("info", msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.#log("warn", msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < this.#min) return;
    const time = new Date().toISOString();
    if (this.options.format === "json") {
      // The line's own keys are set again after the fields so a field never overwrites them.
      const head = { time, level, node: this.options.name, msg };
      this.#write(JSON.stringify({ ...head, ...fields, ...head }));
      return;
    }
    const extra = fields
      ? Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}=${formatValue(v)}`)
        .join("")
      : "";
    const name = this.options.name ? ` [${this.options.name}]` : "";
    this.#write(`${time} ${level.toUpperCase().padEnd(5)}${name} ${msg}${extra}`);
  }
}

function formatValue(v: string | number | boolean | undefined): string {
  return typeof v === "string" && /[\s"=]/.test(v) ? JSON.stringify(v) : String(v);
}
