/**
 * Calls a node with Python's grpcio (tests/helpers/raw_grpc.py): raw
 * protobuf bytes, no code of this project, so a test can show what a
 * client nobody here wrote sees. Optionally run inside a network namespace.
 */
import { text } from "./cluster.ts";

/** Where Python with grpcio is (the system's, not a pyenv shim without it). */
export const PYTHON = "/usr/bin/python3";

const SCRIPT = new URL("./raw_grpc.py", import.meta.url).pathname;

/** One raw unary call. */
export interface RawCall {
  /** "/package.Service/Method". */
  method: string;
  /** The request as hex protobuf ("" = an empty message). */
  body?: string;
  metadata?: [string, string][];
}

/** What Python's client saw: grpc status name ("OK", "PERMISSION_DENIED", ...), details, the answer as hex. */
export interface RawResult {
  method: string;
  code: string;
  details: string;
  body?: string;
}

/** Whether Python's grpcio is installed. */
export function havePythonGrpc(): boolean {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import grpc"], stdout: "null", stderr: "null" })
      .outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Makes the calls in order over one channel to `target` ("host:port"). */
export async function pythonCalls(
  target: string,
  calls: RawCall[],
  wrap: (cmd: string, args: string[]) => { cmd: string; args: string[] } = (cmd, args) => ({ cmd, args }),
): Promise<RawResult[]> {
  const run = wrap(PYTHON, [SCRIPT, target, JSON.stringify(calls)]);
  const out = await new Deno.Command(run.cmd, { args: run.args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`raw_grpc.py failed: ${text.decode(out.stderr)}`);
  return JSON.parse(text.decode(out.stdout)) as RawResult[];
}
