/**
 * The fixed-window rate limiter of rate_limiter.ts, written for Redis with
 * ioredis and run against kvstore's Redis-protocol gateway (a node's
 * `resp_port`): `SET key 0 NX PX window` starts a window, `INCR` counts.
 * The same program runs unchanged against a real Redis.
 *
 *   deno run -A examples/rate_limiter_ioredis.ts 127.0.0.1:7001
 *
 * It prints each request's fate; tests/examples_resp_test.ts checks it.
 */
import process from "node:process";
import { Redis } from "ioredis";

/** Requests allowed per window. */
const LIMIT = 5;
/** The window; short so the example shows a new one starting. */
const WINDOW_MS = 1000;

/** Counts a request of `client`: whether it is allowed, and the window's count so far. */
async function hit(redis: Redis, client: string): Promise<{ allowed: boolean; count: number }> {
  const key = `ratelimit:${client}`;
  await redis.set(key, "0", "PX", WINDOW_MS, "NX");
  const count = await redis.incr(key);
  return { allowed: count <= LIMIT, count };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(address: string): Promise<void> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1)),
  ];
  const redis = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    for (let i = 1; i <= LIMIT + 2; i++) {
      const { allowed, count } = await hit(redis, "alice");
      console.log(`request ${i}: ${allowed ? "allowed" : "refused"} (${count}/${LIMIT} this window)`);
    }
    await sleep(WINDOW_MS + 500);
    const { allowed, count } = await hit(redis, "alice");
    console.log(`after the window: ${allowed ? "allowed" : "refused"} (${count}/${LIMIT} this window)`);
  } finally {
    redis.disconnect();
  }
}

const address = process.argv[2];
if (!address) {
  console.error("usage: rate_limiter_ioredis.ts HOST:PORT (a node's resp_port)");
  process.exit(2);
}
await main(address);
