/**
 * Regression test for denoland/deno#36788: on Deno 2.9.4-2.9.6 a grpc-js
 * client that closes its channel (a GOAWAY frame) aborts the node it talked
 * to. One node; ten rounds of a client process that makes 1000 calls, 16 in
 * flight, closes its channel and exits; every third round also a client
 * killed with SIGKILL while its calls are in flight. After every round the
 * node must still run and answer. Run it on a given Deno with
 * `npx -y deno@X test -A tests/client_hangup_test.ts`: the node and the
 * clients run on the same Deno as the test (Deno.execPath()).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, TestCluster, text } from "./helpers/cluster.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { unary } from "../lib/grpc/call.ts";

const CLIENT = new URL("./helpers/hangup_client.ts", import.meta.url).pathname;
const ROUNDS = 10;
const CALLS = 1000;
const IN_FLIGHT = 16;

function spawnClient(address: string, forever: boolean): Deno.ChildProcess {
  const args = ["run", "-A", "--quiet", CLIENT, address, String(CALLS), String(IN_FLIGHT)];
  return new Deno.Command(Deno.execPath(), {
    args: forever ? [...args, "--forever"] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Resolves once the client printed `line`, so a kill lands while its calls are in flight. */
async function waitForLine(child: Deno.ChildProcess, line: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(line)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`client exited before printing "${line}"`);
    seen += value;
  }
  reader.releaseLock();
}

/** One round's clients: the graceful one, and on every third round a killed one beside it. */
async function round(address: string, withKill: boolean): Promise<string> {
  const killed = withKill ? spawnClient(address, true) : undefined;
  const graceful = spawnClient(address, false);
  if (killed) {
    await waitForLine(killed, "calling");
    killed.kill("SIGKILL");
    await killed.status;
    await killed.stderr.cancel();
  }
  const out = await graceful.output();
  const stdout = text.decode(out.stdout).trim();
  assert.equal(out.code, 0, `the client failed: ${stdout}\n${text.decode(out.stderr)}`);
  const counts = JSON.parse(stdout) as { ok: number; failed: number };
  return `client ok=${counts.ok} failed=${counts.failed} exit=${out.code}${
    killed ? `; killed client exit=${(await killed.status).signal}` : ""
  }`;
}

clusterTest("a node survives clients that close their channels or are killed mid-call", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  const deaths: string[] = [];
  try {
    const node = cluster.node("node1");
    const probe = await cluster.client({ route: false, timeoutMs: 2000 });
    for (let r = 1; r <= ROUNDS; r++) {
      const what = await round(node.address, r % 3 === 0);
      // The node's process must have outlived the round, and still answer.
      await new Promise((res) => setTimeout(res, 200));
      if (!cluster.isRunning("node1")) {
        await cluster.waitFor(() => cluster.failures().length > deaths.length, 5000, "the death to be seen");
        const death = cluster.failures().at(-1)!;
        deaths.push(`round ${r}: ${death.split(";")[0]}`);
        console.log(`round ${r}: ${what}; NODE DIED: ${death.split(";")[0]}`);
        await cluster.startNode("node1"); // go on counting
        continue;
      }
      const put = await probe.put(`after-round-${r}`, "alive");
      assert.equal(put.ok, true);
      assert.equal(text.decode((await probe.get(`after-round-${r}`)).value), "alive");
      console.log(`round ${r}: ${what}; node alive and answering`);
    }
    console.log(`Deno ${Deno.version.deno}: the node died in ${deaths.length} of ${ROUNDS} rounds`);
    assert.deepEqual(deaths, [], `the node died in ${deaths.length} of ${ROUNDS} rounds`);
  } finally {
    await cluster.stop();
  }
}, { timeoutMs: 240_000 });

clusterTest(
  "a client channel that goes idle closes its connection and reconnects on its next call",
  async () => {
    const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
    const idleMs = 1000; // grpc-js's smallest idle timeout; its default is 30 min
    const client = new (kvstorePackage().KeyValueStore)(
      cluster.node("node1").address,
      grpc.credentials.createInsecure(),
      { "grpc.client_idle_timeout_ms": idleMs },
    );
    try {
      const channel = client.getChannel();
      for (let i = 1; i <= 3; i++) {
        await unary(client, "Put", { key: `idle-${i}`, value: text.encode("v"), timestamp: 0 }, 5000);
        await cluster.waitFor(
          () => channel.getConnectivityState(false) === grpc.connectivityState.IDLE,
          5 * idleMs,
          `the channel to go idle (${i})`,
        );
      }
      assert.equal(cluster.isRunning("node1"), true);
    } finally {
      client.close();
      await cluster.stop();
    }
  },
);
