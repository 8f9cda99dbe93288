/**
 * Runs `main.ts server ...` expecting it to refuse to start: resolves with
 * its exit code and output once it exits, or, if it is still running after
 * `ms` (it started when it should not have), kills it by PID and resolves
 * with code "still running", so the test fails instead of hanging.
 */
import { MAIN, text } from "./cluster.ts";

/** How a start attempt ended. */
export interface StartAttempt {
  code: number | "still running";
  output: string;
}

/** Starts `main.ts ARGS` in `cwd` (optionally through a wrapper command) and waits at most `ms`. */
export async function attemptStart(
  cwd: string,
  args: string[],
  ms = 20_000,
  wrap: (cmd: string, args: string[]) => { cmd: string; args: string[] } = (cmd, args) => ({ cmd, args }),
): Promise<StartAttempt> {
  const run = wrap(Deno.execPath(), ["run", "-A", "--quiet", MAIN, ...args]);
  const child = new Deno.Command(run.cmd, {
    args: run.args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  const ended = await Promise.race([child.status, late]);
  clearTimeout(timer);
  if (ended === "late") {
    try {
      child.kill("SIGKILL");
    } catch { /* it exited meanwhile */ }
  }
  const out = await child.output().catch(() => undefined);
  const output = out ? text.decode(out.stdout) + text.decode(out.stderr) : "";
  return { code: ended === "late" ? "still running" : ended.code, output };
}
