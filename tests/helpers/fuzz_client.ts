/**
 * A gRPC client that sends arbitrary bytes to any method of the store's two
 * services, as an outsider (no credentials) or as a peer (a valid node
 * token): the fuzz test's hands. The methods are read from the loaded proto
 * definition, so a new RPC is reached without changes here.
 *
 * Every call has a deadline; a stream is read for a bounded number of
 * messages and then cancelled. Each call ends in a status name ("OK",
 * "INVALID_ARGUMENT", ...) rather than a rejection, for the test to count.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { kvstorePackage } from "../../lib/grpc/proto.ts";
import { signingInterceptor } from "../../lib/security/call_signing.ts";
import { TokenSigner } from "../../lib/security/token.ts";

/** One RPC of the store, as the fuzzer addresses it. */
export interface FuzzMethod {
  service: "KeyValueStore" | "NodeService";
  name: string;
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  /** The request message's type name in the proto (e.g. "MultiGetRequest"). */
  requestType: string;
}

/** Every method of the two services, from the embedded proto. */
export function fuzzMethods(): FuzzMethod[] {
  const pkg = kvstorePackage();
  const out: FuzzMethod[] = [];
  for (const service of ["KeyValueStore", "NodeService"] as const) {
    for (const [name, d] of Object.entries(pkg[service].service)) {
      const type = (d as { requestType?: { type?: { name?: string } } }).requestType?.type?.name;
      if (!type) throw new Error(`${service}.${name}: no request type in the loaded definition`);
      out.push({
        service,
        name,
        path: d.path,
        requestStream: d.requestStream,
        responseStream: d.responseStream,
        requestType: type,
      });
    }
  }
  return out;
}

/** How a fuzz call ended: a status name, and the stream messages read before it. */
export interface FuzzOutcome {
  code: string;
  frames: number;
  /** The status message ("" for OK). */
  details: string;
}

/** Stream messages read before the fuzzer cancels a stream. */
const MAX_FRAMES = 5;

const identity = (b: Buffer) => b;

/** Raw-bytes calls to one node. */
export class RawCaller {
  readonly #client: grpc.Client;

  /** `peerAs`: sign every call with a token of the cluster `secret` for that node id, made for node `target`. */
  constructor(address: string, opts: { secret?: Uint8Array; peerAs?: string; target?: string } = {}) {
    const methods: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    for (const m of fuzzMethods()) {
      methods[m.name] = {
        path: m.path,
        requestStream: m.requestStream,
        responseStream: m.responseStream,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      };
    }
    const Client = grpc.makeGenericClientConstructor(methods, "Fuzz");
    const interceptors = opts.secret && opts.peerAs
      ? [signingInterceptor(new TokenSigner(opts.secret, opts.peerAs), { target: () => opts.target ?? "" })]
      : [];
    this.#client = new Client(address, grpc.credentials.createInsecure(), {
      // The fuzzer may send above the node's limit; the node must refuse it.
      "grpc.max_send_message_length": -1,
      "grpc.max_receive_message_length": 256 << 20,
      interceptors,
    });
  }

  close(): void {
    this.#client.close();
  }

  /** Sends `bodies` (one for a unary or server-streaming call; any number on a bidi stream). */
  call(m: FuzzMethod, bodies: Uint8Array[], deadlineMs: number, halfClose = true): Promise<FuzzOutcome> {
    const fn = (this.#client as unknown as Record<string, (...a: unknown[]) => unknown>)[m.name];
    const opts = { deadline: Date.now() + deadlineMs };
    const meta = new grpc.Metadata();
    const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    if (!m.responseStream) {
      if (m.requestStream) return this.#clientStream(fn, meta, opts, bodies.map(buf), halfClose);
      return new Promise((resolve) => {
        fn.call(
          this.#client,
          buf(bodies[0] ?? new Uint8Array()),
          meta,
          opts,
          (err: grpc.ServiceError | null) => {
            resolve(ended(err));
          },
        );
      });
    }
    const call =
      (m.requestStream
        ? fn.call(this.#client, meta, opts)
        : fn.call(this.#client, buf(bodies[0] ?? new Uint8Array()), meta, opts)) as grpc.ClientDuplexStream<
          Buffer,
          Buffer
        >;
    if (m.requestStream) {
      for (const b of bodies) call.write(buf(b));
      if (halfClose) call.end();
    }
    // On a bidi stream, one answer per message sent is all there is to wait for.
    return readBounded(call, m.requestStream ? Math.min(bodies.length, MAX_FRAMES) : MAX_FRAMES);
  }

  #clientStream(
    fn: (...a: unknown[]) => unknown,
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    bodies: Buffer[],
    halfClose: boolean,
  ): Promise<FuzzOutcome> {
    return new Promise((resolve) => {
      const call = fn.call(this.#client, meta, opts, (err: grpc.ServiceError | null) => {
        resolve(ended(err));
      }) as grpc.ClientWritableStream<Buffer>;
      for (const b of bodies) call.write(b);
      if (halfClose) call.end();
    });
  }
}

/** Reads at most `max` messages, then cancels; resolves with how the stream ended. */
function readBounded(call: grpc.ClientReadableStream<Buffer>, max: number): Promise<FuzzOutcome> {
  return new Promise((resolve) => {
    let frames = 0;
    let done = false;
    const finish = (code: number, details: string) => {
      if (done) return;
      done = true;
      resolve({ code: statusName(code), frames, details });
    };
    call.on("data", () => {
      frames++;
      if (frames >= max) {
        finish(grpc.status.OK, `${frames} messages read, then cancelled`);
        call.cancel();
      }
    });
    call.on("error", (err: grpc.ServiceError) => finish(err.code, err.details));
    call.on("status", (s: grpc.StatusObject) => finish(s.code, s.details));
  });
}

function ended(err: grpc.ServiceError | null): FuzzOutcome {
  return err
    ? { code: statusName(err.code), frames: 0, details: err.details }
    : { code: "OK", frames: 0, details: "" };
}

function statusName(code: number): string {
  return grpc.status[code] ?? `code ${code}`;
}
