/**
 * A lock with a lease on kvstore: taken with `ifAbsent` and a TTL (so a
 * holder that dies frees it when the lease runs out), released with
 * `ifVersion` (so a holder whose lease ran out and was taken over cannot
 * release the new holder's lock).
 *
 *   deno run -A examples/lock.ts 127.0.0.1:8001
 *
 * It prints each step; tests/examples_lwt_test.ts checks it.
 */
import process from "node:process";
import { connect, type KvStore, type Version } from "@kvstore/kvstore";

/** The lease; short so the example shows one running out. */
const LEASE_MS = 1000;

/** Takes the lock for `owner`: its version (the release ticket), or null when someone holds it. */
async function acquire(kv: KvStore, lock: string, owner: string): Promise<Version | null> {
  const r = await kv.put(`lock:${lock}`, owner, { ifAbsent: true, ttlMs: LEASE_MS });
  return r.applied ? r.version! : null;
}

/** Releases the lock if it is still the one taken with `ticket`. */
async function release(kv: KvStore, lock: string, ticket: Version): Promise<boolean> {
  return (await kv.delete(`lock:${lock}`, { ifVersion: ticket })).applied;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(address: string): Promise<void> {
  const kv = await connect({ nodes: [address] });
  try {
    const a = await acquire(kv, "report", "worker-a");
    console.log(`worker-a ${a ? "took" : "did not get"} the lock`);
    const b = await acquire(kv, "report", "worker-b");
    console.log(
      `worker-b ${b ? "took" : "did not get"} the lock (held by ${await kv.getText("lock:report")})`,
    );
    console.log(`worker-a released it: ${await release(kv, "report", a!)}`);
    const b2 = await acquire(kv, "report", "worker-b");
    console.log(`worker-b ${b2 ? "took" : "did not get"} the lock`);
    // worker-b stalls past its lease; worker-c takes the lock over.
    await sleep(LEASE_MS + 500);
    const c = await acquire(kv, "report", "worker-c");
    console.log(`after worker-b's lease ran out worker-c ${c ? "took" : "did not get"} the lock`);
    console.log(`worker-b's late release: ${await release(kv, "report", b2!)}`);
    console.log(`the lock is held by ${await kv.getText("lock:report")}`);
    console.log(`worker-c released it: ${await release(kv, "report", c!)}`);
  } finally {
    kv.close();
  }
}

const address = process.argv[2];
if (!address) {
  console.error("usage: lock.ts HOST:PORT");
  process.exit(2);
}
await main(address);
