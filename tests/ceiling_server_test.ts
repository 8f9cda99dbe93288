/**
 * The benchmark's forwarding ceiling (bench/ceiling_server.ts with a trio):
 * whichever server a call reaches, keys land at one owner and read back
 * through the others, single and batched. Three servers over a Map that
 * each kept their own keys would fail these reads.
 */
import assert from "node:assert/strict";
import { serveCeiling } from "../bench/ceiling_server.ts";
import { KvClient } from "../lib/grpc/kv_client.ts";
import { freePort } from "./helpers/ports.ts";

const text = new TextDecoder();

Deno.test("a forwarding trio of ceiling servers stores each key once and answers it from any of them", async () => {
  const ports = [freePort(), freePort(), freePort()];
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const servers = await Promise.all(ports.map((p, self) => serveCeiling(p, { addresses, self })));
  const clients = await Promise.all(addresses.map((a) => KvClient.connect([a], { route: false })));
  try {
    const keys = Array.from({ length: 30 }, (_, i) => `trio-${i}`);
    for (const key of keys) await clients[0].put(key, `v-${key}`);
    for (const key of keys) {
      for (const c of clients.slice(1)) assert.deepEqual(text.decode((await c.get(key)).value), `v-${key}`);
    }

    const batch = Array.from({ length: 60 }, (_, i) => ({ key: `batch-${i}`, value: `b-${i}` }));
    const written = await clients[2].multiPut(batch);
    assert.deepEqual(written.filter((w) => w.ok).length, 60);
    const read = await clients[1].multiGet([...batch.map((b) => b.key), "absent"]);
    assert.deepEqual(read.map((r) => text.decode(r.value)), [...batch.map((b) => b.value), ""]);
    assert.deepEqual(read.at(-1)?.found, false);
  } finally {
    clients.forEach((c) => c.close());
    servers.forEach((s) => s.close());
  }
});
