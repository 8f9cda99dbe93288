/**
 * An ordinary grpc-js application, run as its own process by
 * tests/client_hangup_test.ts: it makes Put calls to one node with a fixed
 * number in flight, then closes its channel gracefully (which sends the
 * node a GOAWAY frame) and exits.
 *
 *   hangup_client.ts ADDRESS CALLS CONCURRENCY [--forever]
 *
 * With --forever it keeps calling until it is killed (the test SIGKILLs it
 * while calls are in flight). It prints one JSON line: {"ok":N,"failed":N}.
 */
import * as grpc from "@grpc/grpc-js";
import { kvstorePackage } from "../../lib/grpc/proto.ts";
import { unary } from "../../lib/grpc/call.ts";

const [address, callsArg, concurrencyArg, mode] = Deno.args;
const calls = Number(callsArg);
const concurrency = Number(concurrencyArg);
const forever = mode === "--forever";

// Default channel options, as an application would create it.
const client = new (kvstorePackage().KeyValueStore)(address, grpc.credentials.createInsecure());
const value = new Uint8Array(100).fill(120);
let started = 0;
let ok = 0;
let failed = 0;

async function caller(): Promise<void> {
  while (forever || started < calls) {
    const n = started++;
    try {
      await unary(client, "Put", { key: `hangup-${Deno.pid}-${n % 500}`, value, timestamp: 0 }, 5000);
      ok++;
    } catch {
      failed++;
    }
    // Tell the test calls are flowing, so its SIGKILL lands with calls in flight.
    if (forever && ok === 200) console.log("calling");
  }
}

await Promise.all(Array.from({ length: concurrency }, caller));
client.close();
console.log(JSON.stringify({ ok, failed }));
