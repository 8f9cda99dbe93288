/**
 * Many requests over one long-lived stream, each tagged with an id and
 * answered by id, in any order.
 *
 * On this runtime a gRPC call costs far more than the message it carries
 * (HTTP/2 stream set-up, headers, trailers, a socket write each), so a node
 * that forwards sends its forwards as messages of one stream per peer
 * instead of one call each. This module is the bookkeeping, with no gRPC in
 * it (the stream comes from `open`), so it is tested without sockets:
 *
 * - Deadlines are the sender's: a request not answered within `timeoutMs`
 *   fails with `timedOut()`, and a late answer is dropped. It is never sent
 *   again: its outcome is unknown, and resending a write could undo newer
 *   ones (see `retryAfterTimeout` in coordinator.ts).
 * - A stream that ends fails every request sent on it, or waiting to be,
 *   with the error it ended with, as a unary call broken the same way would;
 *   the next request opens a new stream.
 * - Backpressure: when the stream says it wants no more (`write` returns
 *   false), or `maxInFlight` requests are unanswered, requests wait here for
 *   `drain` or answers; one whose deadline passes while waiting is dropped
 *   unsent.
 */

/** What the mux needs of one open stream. */
export interface MuxStream<Out> {
  /** Sends a frame; false when the stream wants nothing more until `drain`. */
  write(frame: Out): boolean;
  /** Half-closes: no more frames leave; answers to those sent still arrive. */
  end(): void;
}

/** What an open stream reports to the mux. */
export interface MuxEvents<In> {
  reply(frame: In): void;
  drain(): void;
  /** The stream is over; `err` fails what is still unanswered on it. */
  closed(err: Error): void;
}

/** Options of {@link StreamMux}. */
export interface StreamMuxOptions<Out, In> {
  /** Opens a stream that reports to `events`. */
  open: (events: MuxEvents<In>) => MuxStream<Out>;
  /** The id an answer carries. */
  idOf: (frame: In) => number;
  /** How long a request may wait for its answer, from `request`. */
  timeoutMs: number;
  /** The error of a request whose deadline passed. */
  timedOut: () => Error;
  /** Unanswered requests on one stream at most; more wait here (default 1024). */
  maxInFlight?: number;
}

interface Entry<In> {
  deadline: number;
  gen: Gen;
  sent: boolean;
  resolve: (frame: In) => void;
  reject: (err: Error) => void;
}

/** One opened stream and what waits to go out on it. */
interface Gen {
  stream?: MuxStream<unknown>;
  blocked: boolean;
  inFlight: number;
  queue: { id: number; frame: unknown }[];
}

/** Requests to one peer over a stream that is opened when needed and reopened after it ends. */
export class StreamMux<Out, In> {
  /** Unanswered requests, oldest first (all share one timeout, so deadlines ascend). */
  readonly #pending = new Map<number, Entry<In>>();
  readonly #maxInFlight: number;
  #gen?: Gen;
  #nextId = 0;
  #timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly o: StreamMuxOptions<Out, In>) {
    this.#maxInFlight = o.maxInFlight ?? 1024;
  }

  /** Unanswered requests (sent or waiting to be). */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sends the frame `make(id)` and resolves to the answer with that id. */
  request(make: (id: number) => Out): Promise<In> {
    const id = this.#nextId = (this.#nextId + 1) >>> 0;
    let gen = this.#gen;
    if (!gen) {
      try {
        gen = this.#open();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const done = new Promise<In>((resolve, reject) => {
      this.#pending.set(id, {
        deadline: performance.now() + this.o.timeoutMs,
        gen,
        sent: false,
        resolve,
        reject,
      });
    });
    gen.queue.push({ id, frame: make(id) });
    this.#flush(gen);
    this.#arm();
    return done;
  }

  /** Half-closes the stream: nothing more is sent on it; what was sent is still answered. */
  close(): void {
    const gen = this.#gen;
    this.#gen = undefined;
    gen?.stream?.end();
  }

  #open(): Gen {
    const gen: Gen = { blocked: false, inFlight: 0, queue: [] };
    gen.stream = this.o.open({
      reply: (frame) => this.#reply(gen, frame),
      drain: () => {
        gen.blocked = false;
        this.#flush(gen);
      },
      closed: (err) => this.#closed(gen, err),
    }) as MuxStream<unknown>;
    this.#gen = gen;
    return gen;
  }

  /** Writes what waits on `gen` while the stream takes it and the in-flight bound allows. */
  #flush(gen: Gen): void {
    let at = 0;
    while (at < gen.queue.length && !gen.blocked && gen.inFlight < this.#maxInFlight && gen.stream) {
      const { id, frame } = gen.queue[at++];
      const e = this.#pending.get(id);
      if (!e) continue; // timed out while waiting
      e.sent = true;
      gen.inFlight++;
      if (!gen.stream.write(frame)) gen.blocked = true;
    }
    if (at > 0) gen.queue.splice(0, at);
  }

  #reply(gen: Gen, frame: In): void {
    const id = this.o.idOf(frame);
    const e = this.#pending.get(id);
    if (!e || e.gen !== gen) return; // answered after its deadline
    this.#pending.delete(id);
    gen.inFlight--;
    this.#disarmIfIdle();
    e.resolve(frame);
    if (gen.queue.length > 0) this.#flush(gen);
  }

  #closed(gen: Gen, err: Error): void {
    if (this.#gen === gen) this.#gen = undefined;
    gen.stream = undefined;
    gen.queue.length = 0;
    for (const [id, e] of this.#pending) {
      if (e.gen !== gen) continue;
      this.#pending.delete(id);
      e.reject(err);
    }
    this.#disarmIfIdle();
  }

  /** No timer outlives the last request (a stopping process or a test ends at once). */
  #disarmIfIdle(): void {
    if (this.#pending.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One timer, for the oldest request's deadline. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const oldest = this.#pending.values().next();
    if (oldest.done) return;
    const wait = Math.max(0, oldest.value.deadline - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#expire();
      this.#arm();
    }, Math.ceil(wait));
  }

  #expire(): void {
    const now = performance.now();
    for (const [id, e] of this.#pending) {
      if (e.deadline > now) break;
      this.#pending.delete(id);
      if (e.sent) e.gen.inFlight--;
      e.reject(this.o.timedOut());
    }
    if (this.#gen) this.#flush(this.#gen);
  }
}
