/**
 * Keepalive on peer channels (lib/grpc/call.ts peerChannelOptions, used by
 * lib/grpc/peer_client.ts): a peer frozen with SIGSTOP stands in for a host
 * that vanished without a FIN. The test process plays node1 with the same
 * transport a node uses, against a real node2 process.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { clusterTest, TestCluster } from "./helpers/cluster.ts";
import { type Keepalive, peerChannelOptions } from "../lib/grpc/call.ts";
import { kvstorePackage } from "../lib/grpc/proto.ts";
import { KvError } from "../lib/errors.ts";

const KEEPALIVE: Keepalive = { timeMs: 500, timeoutMs: 500 };
/** Effectively no pings: grpc-js sends none this far apart within a test. */
const NO_KEEPALIVE: Keepalive = { timeMs: 3_600_000, timeoutMs: 500 };
const HEARTBEAT = { status: "ACTIVE" as const, keysCount: 0, hintsPending: 0 };

/** A call node1 makes to node2 after node2 froze: how it ended and when. */
async function callToFrozenPeer(keepalive: Keepalive, deadlineMs: number) {
  const cluster = await TestCluster.start({ nodes: 2, replicationFactor: 1, startOnly: ["node2"] });
  // node2 answers only a node of its cluster: the transport carries its secret.
  const transport = cluster.peerTransport("node1", "node2", { timeoutMs: deadlineMs, keepalive });
  try {
    await transport.heartbeat("node2", HEARTBEAT); // the connection is up
    await cluster.signal("node2", "SIGSTOP");
    const started = Date.now();
    const err = await transport.heartbeat("node2", HEARTBEAT).then(() => undefined, (e) => e);
    return { ms: Date.now() - started, err };
  } finally {
    transport.close();
    await cluster.stop();
  }
}

clusterTest("a peer channel's keepalive fails a call to a frozen peer long before its deadline", async () => {
  const deadline = 30_000;
  const { ms, err } = await callToFrozenPeer(KEEPALIVE, deadline);
  const bound = 3 * (KEEPALIVE.timeMs + KEEPALIVE.timeoutMs);
  console.log(
    `keepalive ${KEEPALIVE.timeMs}+${KEEPALIVE.timeoutMs} ms: the call failed after ${ms} ms: ${err}`,
  );
  assert.ok(err instanceof KvError, `expected an unreachable peer, got ${err}`);
  assert.equal(err.code, grpc.status.UNAVAILABLE, err.message);
  assert.ok(ms <= bound, `noticed after ${ms} ms, more than ${bound} ms (3 x keepalive time + timeout)`);
});

clusterTest("without keepalive the same call waits for its deadline (the control)", async () => {
  const deadline = 4 * (KEEPALIVE.timeMs + KEEPALIVE.timeoutMs);
  const { ms, err } = await callToFrozenPeer(NO_KEEPALIVE, deadline);
  console.log(`no keepalive: the call failed after ${ms} ms (deadline ${deadline} ms): ${err}`);
  assert.ok(err instanceof KvError, `expected a failed call, got ${err}`);
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED, err.message);
  assert.ok(ms >= deadline - 100, `failed after ${ms} ms, before its ${deadline} ms deadline`);
});

clusterTest("a node does not send GOAWAY to a peer that pings it often, idle or not", async () => {
  const cluster = await TestCluster.start({ nodes: 1, replicationFactor: 1 });
  const fast: Keepalive = { timeMs: 100, timeoutMs: 1000 };
  const client = new (kvstorePackage().NodeService)(
    cluster.node("node1").address,
    grpc.credentials.createInsecure(),
    peerChannelOptions(4 << 20, fast),
  );
  try {
    const channel = client.getChannel();
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (err) => err ? reject(err) : resolve())
    );
    // Every state the idle channel passes through while it pings for 30 intervals.
    const states: string[] = [];
    let watching = true;
    const watch = (from: grpc.connectivityState) =>
      channel.watchConnectivityState(from, Infinity, () => {
        if (!watching) return;
        const now = channel.getConnectivityState(false);
        states.push(grpc.connectivityState[now]);
        watch(now);
      });
    watch(channel.getConnectivityState(false));
    await new Promise((r) => setTimeout(r, 30 * fast.timeMs));
    console.log(`pinging every ${fast.timeMs} ms for ${30 * fast.timeMs} ms: state changes ${states.length}`);
    assert.deepEqual(states, [], "the connection was dropped or refused while pinging");
    assert.equal(channel.getConnectivityState(false), grpc.connectivityState.READY);
    // The pings did flow on the idle channel: frozen, the node stops answering them.
    await cluster.signal("node1", "SIGSTOP");
    const started = Date.now();
    const bound = 3 * (fast.timeMs + fast.timeoutMs);
    await cluster.waitFor(() => states.length > 0, bound, "the idle channel to notice the frozen node");
    console.log(`idle channel left READY ${Date.now() - started} ms after SIGSTOP (${states.join(" -> ")})`);
    watching = false;
  } finally {
    client.close();
    await cluster.stop();
  }
});
