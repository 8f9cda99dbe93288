/**
 * Asking every voter of a Paxos round at once and stopping at a majority:
 * shared by the membership proposer and the per-key one (lib/lwt/).
 */
import { errorMessage } from "./errors.ts";

/** The answers of one round: yes votes, refusals, and voters that could not be reached (with why). */
export interface Poll<V extends { ok: boolean }> {
  ok: { voter: string; vote: Extract<V, { ok: true }> }[];
  refused: { voter: string; vote: Exclude<V, { ok: true }> }[];
  silent: string[];
}

/** Asks every voter; resolves once `need` voted yes, or once every voter has answered or failed. */
export function pollVoters<V extends { ok: boolean }>(
  voters: readonly string[],
  need: number,
  ask: (voter: string) => Promise<V>,
): Promise<Poll<V>> {
  const out: Poll<V> = { ok: [], refused: [], silent: [] };
  return new Promise((resolve) => {
    let pending = voters.length;
    if (pending === 0) resolve(out);
    for (const voter of voters) {
      ask(voter).then(
        (vote) =>
          vote.ok
            ? out.ok.push({ voter, vote: vote as Extract<V, { ok: true }> })
            : out.refused.push({ voter, vote: vote as Exclude<V, { ok: true }> }),
        (err) => out.silent.push(`${voter} (${errorMessage(err)})`),
      ).finally(() => {
        pending--;
        if (out.ok.length >= need || pending === 0) resolve(out);
      });
    }
  });
}
