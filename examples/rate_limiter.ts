/**
 * A fixed-window rate limiter on kvstore: each window is a counter key
 * created with the window's length as its TTL (`ifAbsent`, so only the first
 * request of a window sets it) and bumped with `increment`; a request is
 * allowed while the count is within the limit. The counter runs through
 * per-key consensus, so requests through different nodes never lose a count.
 *
 *   deno run -A examples/rate_limiter.ts 127.0.0.1:8001
 *
 * It prints each request's fate; tests/examples_lwt_test.ts checks it.
 */
import process from "node:process";
import { connect, type KvStore } from "@kvstore/kvstore";

/** Requests allowed per window. */
const LIMIT = 5;
/** The window; short so the example shows a new one starting. */
const WINDOW_MS = 1000;

/** Counts a request of `client`: whether it is allowed, and the window's count so far. */
async function hit(kv: KvStore, client: string): Promise<{ allowed: boolean; count: bigint }> {
  const key = `ratelimit:${client}`;
  // Starts the window (and its expiry) unless a request already did.
  await kv.put(key, "0", { ifAbsent: true, ttlMs: WINDOW_MS });
  const count = await kv.increment(key);
  return { allowed: count <= LIMIT, count };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(address: string): Promise<void> {
  const kv = await connect({ nodes: [address] });
  try {
    for (let i = 1; i <= LIMIT + 2; i++) {
      const { allowed, count } = await hit(kv, "alice");
      console.log(`request ${i}: ${allowed ? "allowed" : "refused"} (${count}/${LIMIT} this window)`);
    }
    await sleep(WINDOW_MS + 500);
    const { allowed, count } = await hit(kv, "alice");
    console.log(`after the window: ${allowed ? "allowed" : "refused"} (${count}/${LIMIT} this window)`);
  } finally {
    kv.close();
  }
}

const address = process.argv[2];
if (!address) {
  console.error("usage: rate_limiter.ts HOST:PORT");
  process.exit(2);
}
await main(address);
