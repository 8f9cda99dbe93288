/**
 * `--token-file FILE`: the client token the client, the load generator and
 * the status tools send when the cluster sets `security.client_token_file`,
 * and how a secret file named on the command line is read.
 */
import { errorMessage } from "../errors.ts";
import { UsageError } from "./common.ts";

/** parseArgs option of the token flag. */
export const TOKEN_FLAG = { "token-file": { type: "string" } } as const;

/** Help line of the token flag. */
export const TOKEN_HELP =
  `  --token-file FILE    the client token (security.client_token_file of the cluster), sent as
                       "authorization: Bearer <token>" with every call`;

/** The token of `--token-file`, or undefined without the flag. */
export async function clientTokenFrom(values: { "token-file"?: string }): Promise<string | undefined> {
  const file = values["token-file"];
  return file === undefined ? undefined : await readSecretFlag(file, "--token-file");
}

/** A secret's file named by `flag`, without its trailing newline (as the nodes read it). */
export async function readSecretFlag(path: string, flag: string): Promise<string> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).replace(/\s+$/, "");
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${errorMessage(err)}`);
  }
  if (text === "") throw new UsageError(`${flag} ${path}: the file is empty`);
  return text;
}
