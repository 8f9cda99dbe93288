/**
 * The two ends of NodeService.ForwardStream: forwarded batches (and small
 * replication batches) as messages of one long-lived stream per peer, answered by id (the bookkeeping of ids,
 * deadlines and reopening is `stream_mux.ts`).
 *
 * The sending end turns the call's events into the mux's, and the status a
 * stream ends with into the error a unary call would have failed with
 * (`peerError`), so the coordinator fails over exactly as it does for a
 * unary forward. A peer that does not know the method (an older node)
 * answers UNIMPLEMENTED before it has read anything: that surfaces as
 * `StreamUnsupportedError`, and the caller sends the batch as a unary call.
 *
 * The serving end answers each frame as soon as its batch is done, in any
 * order. It stops reading while the peer is not taking answers
 * (backpressure), and ends the stream once the peer has half-closed it or
 * the node drains, after every frame it took is answered.
 */
import * as grpc from "@grpc/grpc-js";
import { errorMessage, PeerUnavailableError } from "../errors.ts";
import type { MuxEvents, MuxStream } from "../stream_mux.ts";
import { peerError } from "./call.ts";
import type {
  ForwardFrameMsg,
  ForwardReplyMsg,
  MultiDeleteRequestMsg,
  MultiDeleteResponseMsg,
  MultiGetRequestMsg,
  MultiGetResponseMsg,
  MultiPutRequestMsg,
  MultiPutResponseMsg,
  ReplicateBatchRequestMsg,
  ReplicateBatchResponseMsg,
} from "./messages.ts";
import type { PaxosAcceptMsg, PaxosCommitMsg, PaxosPrepareMsg, PaxosVoteMsg } from "./lwt_messages.ts";

/** The peer has no ForwardStream (an older node): nothing sent on it was read. */
export class StreamUnsupportedError extends Error {
  constructor(peer: string) {
    super(`node ${peer} does not serve ForwardStream`);
    this.name = "StreamUnsupportedError";
  }
}

type DuplexMethod = (meta: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<
  ForwardFrameMsg,
  ForwardReplyMsg
>;

/** Opens a ForwardStream to `peer` on its channel, reporting to a mux. */
export function openForwardStream(
  client: grpc.Client,
  peer: string,
  events: MuxEvents<ForwardReplyMsg>,
): MuxStream<ForwardFrameMsg> {
  const fn = (client as unknown as Record<string, DuplexMethod>).ForwardStream;
  const call = fn.call(client, new grpc.Metadata(), {});
  let status: grpc.StatusObject | undefined;
  let readEnded = false;
  let reported = false;
  // Answers read before the status may still be buffered: the stream is
  // reported closed only after they are delivered.
  const report = () => {
    if (reported || !status || !readEnded) return;
    reported = true;
    events.closed(streamEndError(peer, status));
  };
  call.on("data", (frame: ForwardReplyMsg) => events.reply(frame));
  call.on("drain", () => events.drain());
  call.on("error", () => {}); // the status says the same, and comes in every case
  call.on("status", (s: grpc.StatusObject) => (status = s, report()));
  call.on("end", () => (readEnded = true, report()));
  call.on("close", () => (readEnded = true, report()));
  return { write: (frame) => call.write(frame), end: () => call.end() };
}

/** What an ended stream means for the requests still unanswered on it. */
function streamEndError(peer: string, s: grpc.StatusObject): Error {
  if (s.code === grpc.status.UNIMPLEMENTED) return new StreamUnsupportedError(peer);
  // Ended cleanly with requests unanswered: the peer stopped taking them.
  if (s.code === grpc.status.OK) return new PeerUnavailableError(peer, "forward stream ended");
  return peerError(peer, s);
}

/** A batch's answer, or the status it failed with as a whole. */
export type Outcome<R> = { ok: true; res: R } | { ok: false; code: number; details: string };

/** How the serving node runs each kind of forwarded batch. */
export interface ForwardRunners {
  put: (req: MultiPutRequestMsg) => Promise<Outcome<MultiPutResponseMsg>>;
  get: (req: MultiGetRequestMsg) => Promise<Outcome<MultiGetResponseMsg>>;
  del: (req: MultiDeleteRequestMsg) => Promise<Outcome<MultiDeleteResponseMsg>>;
  repl: (req: ReplicateBatchRequestMsg) => Promise<Outcome<ReplicateBatchResponseMsg>>;
  prepare: (req: PaxosPrepareMsg) => Promise<Outcome<PaxosVoteMsg>>;
  accept: (req: PaxosAcceptMsg) => Promise<Outcome<PaxosVoteMsg>>;
  commit: (req: PaxosCommitMsg) => Promise<Outcome<Record<string, never>>>;
}

/** Options of {@link forwardStreamHandler}. */
export interface ForwardStreamServeOptions {
  run: ForwardRunners;
  /** Whether the node has stopped taking calls (draining). */
  closed: () => boolean;
  /** Registers `stop`, called when the node drains; returns the unregistration. */
  onDrain: (stop: () => void) => () => void;
}

type ServerDuplex = grpc.ServerDuplexStream<ForwardFrameMsg, ForwardReplyMsg>;

/** The ForwardStream handler of a node. */
export function forwardStreamHandler(o: ForwardStreamServeOptions): (call: ServerDuplex) => void {
  return (call) => {
    if (o.closed()) {
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "node is shutting down" });
      return;
    }
    serve(call, o);
  };
}

function serve(call: ServerDuplex, o: ForwardStreamServeOptions): void {
  let pending = 0;
  let inputEnded = false;
  let stopping = false;
  let over = false;
  let paused = false;
  const finishIfIdle = () => {
    if (over || pending > 0 || !(inputEnded || stopping)) return;
    over = true;
    unregister();
    call.end();
  };
  const abandon = () => {
    over = true;
    unregister();
  };
  const unregister = o.onDrain(() => (stopping = true, finishIfIdle()));
  call.on("data", (frame: ForwardFrameMsg) => {
    if (over) return; // arrived after the end: never run, the sender fails it over
    pending++;
    answer(frame, o.run).then((reply) => {
      pending--;
      if (over) return;
      if (!call.write(reply) && !paused) {
        paused = true;
        call.pause();
        call.once("drain", () => (paused = false, call.resume()));
      }
      finishIfIdle();
    });
  });
  call.on("end", () => (inputEnded = true, finishIfIdle()));
  call.on("cancelled", abandon);
  call.on("error", abandon);
}

async function answer(frame: ForwardFrameMsg, run: ForwardRunners): Promise<ForwardReplyMsg> {
  const id = frame.id;
  try {
    if (frame.put) return reply(id, "put", await run.put(frame.put));
    if (frame.get) return reply(id, "get", await run.get(frame.get));
    if (frame.del) return reply(id, "del", await run.del(frame.del));
    if (frame.repl) return reply(id, "repl", await run.repl(frame.repl));
    if (frame.prepare) return reply(id, "prepare", await run.prepare(frame.prepare));
    if (frame.accept) return reply(id, "accept", await run.accept(frame.accept));
    if (frame.commit) return reply(id, "commit", await run.commit(frame.commit));
    return failure(
      id,
      grpc.status.INVALID_ARGUMENT,
      "ForwardFrame carries no put, get, del or repl batch nor Paxos phase",
    );
  } catch (err) {
    return failure(id, grpc.status.INTERNAL, `ForwardStream failed: ${errorMessage(err)}`);
  }
}

function reply(id: number, kind: keyof ForwardRunners, o: Outcome<unknown>): ForwardReplyMsg {
  if (!o.ok) return failure(id, o.code, o.details);
  return { id, [kind]: o.res, error_code: 0, error_message: "" };
}

function failure(id: number, code: number, details: string): ForwardReplyMsg {
  return { id, error_code: code, error_message: details };
}
