/**
 * Counting wrappers around a node's transport and storage.
 *
 * The node's code is left alone: the server command wraps the peer
 * transport (each call to a peer counted by method, peer and status code)
 * and the storage (each failed operation counted by method) before handing
 * them to the node. Streams are counted when they end or fail.
 */
import type { PeerTransport } from "../transport.ts";
import type { Storage } from "../storage/mod.ts";
import { Code, KvError } from "../errors.ts";
import type { NodeMetrics } from "./node_metrics.ts";

function codeOf(err: unknown): number {
  return err instanceof KvError ? err.code : Code.INTERNAL;
}

/** A transport that counts its calls in `metrics`. */
export function instrumentTransport(t: PeerTransport, metrics: NodeMetrics): PeerTransport {
  const unary =
    <A extends unknown[], R>(method: string, fn: (peer: string, ...args: A) => Promise<R>) =>
    async (peer: string, ...args: A): Promise<R> => {
      try {
        const r = await fn(peer, ...args);
        metrics.peerCall(method, peer, Code.OK).inc();
        return r;
      } catch (err) {
        metrics.peerCall(method, peer, codeOf(err)).inc();
        throw err;
      }
    };
  const stream = <A extends unknown[], R>(
    method: string,
    fn: (peer: string, ...args: A) => AsyncIterable<R>,
  ) =>
    async function* (peer: string, ...args: A): AsyncGenerator<R> {
      try {
        yield* fn(peer, ...args);
        metrics.peerCall(method, peer, Code.OK).inc();
      } catch (err) {
        metrics.peerCall(method, peer, codeOf(err)).inc();
        throw err;
      }
    };
  const forwardWrites = unary("forwardWrites", t.forwardWrites.bind(t));
  const forwardReads = unary("forwardReads", t.forwardReads.bind(t));
  return {
    heartbeat: unary("heartbeat", t.heartbeat.bind(t)),
    forwardWrites: (
      peer,
      writes,
    ) => (metrics.forwardedKeys(peer).inc(writes.length), forwardWrites(peer, writes)),
    forwardReads: (peer, keys) => (metrics.forwardedKeys(peer).inc(keys.length), forwardReads(peer, keys)),
    replicate: unary("replicate", t.replicate.bind(t)),
    readRecords: unary("readRecords", t.readRecords.bind(t)),
    streamRecords: stream("streamRecords", t.streamRecords.bind(t)),
    digests: unary("digests", t.digests.bind(t)),
    streamBuckets: stream("streamBuckets", t.streamBuckets.bind(t)),
  };
}

/** A storage that counts its failed operations in `metrics`. */
export function instrumentStorage(s: Storage, metrics: NodeMetrics): Storage {
  const counted = <A extends unknown[], R>(method: string, fn: (...args: A) => Promise<R>) => {
    const errors = metrics.storageError(method);
    return (...args: A): Promise<R> =>
      fn(...args).catch((err) => {
        errors.inc();
        throw err;
      });
  };
  return {
    engine: s.engine,
    ...(s.bytesHeld ? { bytesHeld: () => s.bytesHeld!() } : {}),
    get: counted("get", s.get.bind(s)),
    apply: counted("apply", s.apply.bind(s)),
    remove: counted("remove", s.remove.bind(s)),
    scan: counted("scan", s.scan.bind(s)),
    // Passed on when the engine has it: without it every digest and filter scan would copy each value out.
    ...(s.scanVersions ? { scanVersions: counted("scanVersions", s.scanVersions.bind(s)) } : {}),
    // Likewise: without it a MultiGet could only be refused for size after copying values.
    ...(s.valueSizes ? { valueSizes: counted("valueSizes", s.valueSizes.bind(s)) } : {}),
    // Passed on too: callers' abandoned scans would otherwise keep the memory engine from reusing slots.
    ...(s.closeScan ? { closeScan: (cursor: string) => s.closeScan!(cursor) } : {}),
    countLive: counted("countLive", s.countLive.bind(s)),
    healthy: () => s.healthy(),
    close: () => s.close(),
    loadMeta: s.loadMeta?.bind(s),
    saveMeta: s.saveMeta?.bind(s),
    deleteMeta: s.deleteMeta?.bind(s),
  };
}
