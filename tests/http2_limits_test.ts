/**
 * A client that ignores HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS, written
 * with raw frames against a real node: the node announces twice
 * `limits.max_calls_per_connection` as its cap and Deno 2.9.3's node:http2
 * resets every stream beyond it with REFUSED_STREAM, so one connection
 * cannot open thousands of calls at once (grpc-js clients queue theirs and
 * never see this). The node still serves afterwards.
 */
import assert from "node:assert/strict";
import { clusterTest, TestCluster, text } from "./helpers/cluster.ts";

const CALLS_PER_CONNECTION = 4;
const STREAMS = 40;
const REFUSED_STREAM = 7;

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const l = payload.length;
  const b = new Uint8Array(9 + l);
  b.set([l >> 16, (l >> 8) & 255, l & 255, type, flags, (stream >>> 24) & 127, (stream >> 16) & 255]);
  b.set([(stream >> 8) & 255, stream & 255], 7);
  b.set(payload, 9);
  return b;
}

/** An HPACK literal header without indexing (no Huffman), enough for a request. */
function literal(name: string, value: string): number[] {
  const n = text.encode(name);
  const v = text.encode(value);
  return [0, n.length, ...n, v.length, ...v];
}

/** Opens `count` Get streams at once on one connection; the frames the node sent back, by kind. */
async function flood(
  port: number,
  count: number,
): Promise<{ maxStreams?: number; kinds: Map<string, number> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const headers = new Uint8Array([
    ...literal(":method", "POST"),
    ...literal(":scheme", "http"),
    ...literal(":path", "/kvstore.KeyValueStore/Get"),
    ...literal(":authority", "127.0.0.1"),
    ...literal("content-type", "application/grpc"),
    ...literal("te", "trailers"),
  ]);
  const get = new Uint8Array([0, 0, 0, 0, 3, 0x0a, 0x01, 0x78]); // GetRequest{key: "x"}
  const parts = [text.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(4, 0, 0, new Uint8Array())];
  for (let i = 0; i < count; i++) parts.push(frame(1, 4, 1 + 2 * i, headers), frame(0, 1, 1 + 2 * i, get));
  for (const p of parts) await conn.write(p);
  const kinds = new Map<string, number>();
  let maxStreams: number | undefined;
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  const deadline = Date.now() + 5000;
  let ended = 0;
  try {
    while (Date.now() < deadline && ended < count) {
      const n = await conn.read(chunk);
      if (n === null) break;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      while (buf.length >= 9) {
        const len = (buf[0] << 16) | (buf[1] << 8) | buf[2];
        if (buf.length < 9 + len) break;
        const [type, flags] = [buf[3], buf[4]];
        const body = buf.subarray(9, 9 + len);
        let kind = `type ${type}`;
        if (type === 3) {
          kind = `RST_STREAM ${new DataView(body.buffer, body.byteOffset).getUint32(0)}`, ended++;
        }
        if (type === 1 && flags & 1) kind = "trailers", ended++;
        if (type === 4 && !(flags & 1)) {
          for (let i = 0; i + 6 <= len; i += 6) {
            const view = new DataView(body.buffer, body.byteOffset + i);
            if (view.getUint16(0) === 3) maxStreams = view.getUint32(2);
          }
          await conn.write(frame(4, 1, 0, new Uint8Array()));
        }
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        buf = buf.slice(9 + len);
      }
    }
  } finally {
    conn.close();
  }
  return { maxStreams, kinds };
}

clusterTest(
  "a raw HTTP/2 client opening more streams than the node's cap gets the excess refused",
  async () => {
    const cluster = await TestCluster.start({
      nodes: 1,
      extra: { limits: { max_calls_per_connection: CALLS_PER_CONNECTION } },
    });
    try {
      await cluster.waitActive();
      const { maxStreams, kinds } = await flood(cluster.nodes[0].port, STREAMS);
      console.log(
        `${STREAMS} streams at once: SETTINGS_MAX_CONCURRENT_STREAMS ${maxStreams}; frames back ${
          JSON.stringify(Object.fromEntries(kinds))
        }`,
      );
      assert.equal(maxStreams, 2 * CALLS_PER_CONNECTION);
      const refused = kinds.get(`RST_STREAM ${REFUSED_STREAM}`) ?? 0;
      assert.ok(refused >= STREAMS - 2 * CALLS_PER_CONNECTION, `${refused} streams refused`);
      assert.ok(cluster.isRunning("node1"));
      const client = await cluster.client();
      assert.equal((await client.put("still", "serving")).ok, true);
      assert.equal(text.decode((await client.get("still")).value), "serving");
    } finally {
      await cluster.stop();
    }
  },
);
