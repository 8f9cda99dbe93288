/**
 * How a routing client learns that the ring it routes by is out of date.
 *
 * A routing client sends the epoch of the member list its ring was built
 * from in the request metadata of each KeyValueStore call. A node whose
 * member list is newer answers with its epoch in a trailer; the client then
 * fetches the membership again (from that node), so after a join or a
 * removal it routes by the new ring on its next calls rather than paying a
 * forward per key until an error makes it refresh. Clients that do not
 * route (any-node, load-balanced, other languages) send nothing and get
 * nothing: on their path a node only looks the header up.
 */
import * as grpc from "@grpc/grpc-js";

/** Request header (client's epoch) and trailer (node's newer epoch). */
export const RING_EPOCH_KEY = "x-kvstore-ring-epoch";

/** The trailer for a call whose client routes by an older epoch than `epoch`, else undefined. */
export function epochTrailer(metadata: grpc.Metadata, epoch: number): grpc.Metadata | undefined {
  const sent = metadata.get(RING_EPOCH_KEY);
  if (sent.length === 0 || !(Number(sent[0]) < epoch)) return undefined;
  const trailer = new grpc.Metadata();
  trailer.set(RING_EPOCH_KEY, String(epoch));
  return trailer;
}

/** Request metadata carrying a client's epoch. */
export function epochHeader(epoch: number): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(RING_EPOCH_KEY, String(epoch));
  return md;
}

/** The epoch a node's trailer announces, or undefined when it sent none. */
export function announcedEpoch(trailers: grpc.Metadata | undefined): number | undefined {
  const v = trailers?.get(RING_EPOCH_KEY)[0];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}
