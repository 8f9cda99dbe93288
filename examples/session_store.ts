/**
 * A web session store on kvstore: sessions expire on their own (TTL), a
 * request refreshes its session's expiry, and logout deletes it.
 *
 *   deno run -A examples/session_store.ts 127.0.0.1:8001
 *
 * (Node: the same code runs against the npm package; see README.) It prints
 * each step; tests/examples_test.ts runs it against real nodes and checks
 * what it prints.
 */
import process from "node:process";
import { connect, type KvStore } from "@kvstore/kvstore";

/** A session's lifetime without requests; short so the example shows an expiry. */
const SESSION_TTL_MS = 1000;

interface Session {
  user: string;
  createdAt: string;
}

async function createSession(kv: KvStore, id: string, user: string): Promise<void> {
  const session: Session = { user, createdAt: new Date().toISOString() };
  await kv.put(`session:${id}`, JSON.stringify(session), { ttlMs: SESSION_TTL_MS });
}

/** The session, its expiry pushed back (as a request would), or null when it expired. */
async function useSession(kv: KvStore, id: string): Promise<Session | null> {
  const text = await kv.getText(`session:${id}`);
  if (text === null) return null;
  await kv.put(`session:${id}`, text, { ttlMs: SESSION_TTL_MS });
  return JSON.parse(text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(address: string): Promise<void> {
  const kv = await connect({ nodes: [address] });
  try {
    await createSession(kv, "s1", "ada");
    await createSession(kv, "s2", "grace");
    console.log("created sessions s1 (ada) and s2 (grace)");
    const entry = await kv.get("session:s1");
    console.log(`s1 has an expiry: ${entry?.expiresAt !== undefined}`);
    console.log(`s1 belongs to ${(await useSession(kv, "s1"))?.user}`);
    const listed = [];
    for await (const key of kv.list({ prefix: "session:" })) listed.push(key);
    console.log(`sessions listed: ${listed.sort().join(", ")}`);
    await kv.delete("session:s2");
    console.log(`after logout s2 is ${(await useSession(kv, "s2")) === null ? "gone" : "still there"}`);
    await sleep(SESSION_TTL_MS + 500);
    console.log(
      `after ${SESSION_TTL_MS + 500} ms idle s1 is ${
        (await useSession(kv, "s1")) === null ? "expired" : "alive"
      }`,
    );
  } finally {
    kv.close();
  }
}

const address = process.argv[2];
if (!address) {
  console.error("usage: session_store.ts HOST:PORT");
  process.exit(2);
}
await main(address);
