/**
 * Unit tests of `lib/cli/start_point.ts`: which member list a node starts
 * from (the newer of the given and the saved one; an unreadable saved list
 * is skipped with a warning), and how a cluster-file node is picked from
 * the command line. `--join` is tested with real nodes in membership_test.ts.
 */
import assert from "node:assert/strict";
import { fileStart, newestList } from "../lib/cli/start_point.ts";
import { UsageError } from "../lib/cli/common.ts";
import { Logger } from "../lib/log.ts";
import type { MemberList } from "../lib/membership/member_list.ts";

function list(epoch: number, claimant: string, ids: string[]): MemberList {
  return {
    epoch,
    claimant,
    members: ids.map((id, i) => ({ id, host: "127.0.0.1", port: 9000 + i, state: "NORMAL" })),
  };
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "info", format: "text", write: (l) => lines.push(l) }), lines };
}

Deno.test("the newer of the given and the saved member list is the one a node starts from", async () => {
  const { log } = capture();
  const given = list(3, "node1", ["node1", "node2"]);
  const saved = list(5, "node2", ["node1", "node2", "node3"]);
  const store = (l?: MemberList) => ({ loadMeta: () => Promise.resolve(l ? JSON.stringify(l) : undefined) });
  assert.deepEqual(await newestList(given, store(saved), log), saved);
  assert.deepEqual(await newestList(saved, store(given), log), saved);
  assert.deepEqual(await newestList(given, store(), log), given);
  assert.deepEqual(await newestList(undefined, store(saved), log), saved);
  assert.equal(await newestList(undefined, store(), log), undefined);
  assert.equal(await newestList(undefined, {}, log), undefined, "an engine that keeps no metadata");
  const tieHigh = list(4, "node2", ["node2"]);
  assert.deepEqual(await newestList(list(4, "node1", ["node1"]), store(tieHigh), log), tieHigh);
});

Deno.test("an unreadable saved member list is skipped with a warning, and the given one is used", async () => {
  const { log, lines } = capture();
  const given = list(2, "node1", ["node1"]);
  const broken = { loadMeta: () => Promise.resolve("{not json") };
  assert.deepEqual(await newestList(given, broken, log), given);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /WARN .*cannot read the saved member list/);
});

Deno.test("a cluster-file node is picked by port or id, and --join-only flags are refused without --join", () => {
  const byPort = fileStart({}, ["8002"]);
  assert.equal(byPort.self.port, 8002);
  assert.equal(byPort.members, undefined, "the cluster file's list");
  assert.equal(fileStart({ id: "node3" }, []).self.id, "node3");
  assert.equal(fileStart({}, []).self.id, byPort.config.nodes[0].id, "no argument: the first node");
  assert.throws(() => fileStart({ port: "9000" }, []), UsageError);
  assert.throws(() => fileStart({}, ["eight"]), /PORT must be a number/);
  assert.throws(() => fileStart({}, ["8001", "node2"]), /port 8001 belongs to node1, not node2/);
});
