/**
 * The store's metrics: what a node counts as it works, and what it reports
 * of its state when scraped.
 *
 * One `NodeMetrics` per process. The gRPC edge counts every call it serves
 * (method, status code, latency) through a per-method handle looked up once;
 * the instrumented transport and storage (`instrument.ts`) count calls to
 * peers and storage errors. Everything else (keys, queues, hints, peers,
 * recovery, anti-entropy, memory) is read from the node at scrape time, so
 * the node itself carries no metrics code. Names follow Prometheus's guide:
 * `kvstore_` prefix, base units, counters ending in `_total`, labels
 * `method`, `code` and `peer` only (never a key).
 */
import { type Counter, type CounterSeries, Registry } from "./metrics.ts";
import { RecentWindow } from "./window.ts";
import type { KvNode } from "../node.ts";

/** Latency bucket bounds, seconds. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
] as const;

/** gRPC status code names by number (the `code` label). */
export const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** The wire's NodeStatus numbers (kvstore_peer_status). */
const STATUS_NUMBER: Record<string, number> = { ACTIVE: 0, SUSPECTED: 1, FAILED: 2, JOINING: 3, LEAVING: 4 };

/** Counts the calls of one served method; looked up once per method. */
export class MethodMetrics {
  readonly #codes: (CounterSeries | undefined)[] = [];

  constructor(
    private readonly method: string,
    private readonly calls: Counter,
    private readonly latency: { observe(v: number): void },
    private readonly recent: readonly RecentWindow[],
    private readonly byCode: Float64Array,
  ) {}

  /** One finished call: its status code and how long it took (seconds). */
  done(code: number, seconds: number): void {
    const series = this.#codes[code] ??= this.calls.labels(this.method, CODE_NAMES[code] ?? String(code));
    series.inc();
    if (code < this.byCode.length) this.byCode[code]++;
    this.latency.observe(seconds);
    for (const w of this.recent) w.record(seconds);
  }
}

/** Every metric of one node process. */
export class NodeMetrics {
  readonly registry = new Registry();
  /** Client calls of the last minute: ops/s and p99 for the status page. */
  readonly recent = new RecentWindow(LATENCY_BUCKETS);
  /** The same calls over five minutes in five-second slots: the status page's sparklines. */
  readonly history = new RecentWindow(LATENCY_BUCKETS, Date.now, { slots: 60, slotMs: 5000 });
  readonly #calls = this.registry.counter(
    "kvstore_grpc_server_calls_total",
    "gRPC calls served, by method and status code (Forward* methods arrived forwarded by a peer)",
    ["method", "code"],
  );
  readonly #latency = this.registry.histogram(
    "kvstore_grpc_server_call_duration_seconds",
    "Time to answer a gRPC call, by method",
    ["method"],
    LATENCY_BUCKETS,
  );
  readonly #peerCalls = this.registry.counter(
    "kvstore_peer_calls_total",
    "Calls this node made to a peer, by method (forwardWrites/forwardReads: requests forwarded to their owner), peer and status code",
    ["method", "peer", "code"],
  );
  readonly #forwardedKeys = this.registry.counter(
    "kvstore_forwarded_keys_total",
    "Keys this node sent to their owner instead of coordinating them itself, by peer",
    ["peer"],
  );
  readonly #storageErrors = this.registry.counter(
    "kvstore_storage_errors_total",
    "Storage operations that failed, by method",
    ["method"],
  );
  readonly #methods = new Map<string, MethodMetrics>();
  /** Calls served by status code, every method together (the status page's refusal counts). */
  readonly callsByCode = new Float64Array(CODE_NAMES.length);
  readonly #respCommands = this.registry.counter(
    "kvstore_resp_commands_total",
    "Redis protocol gateway (RESP) commands answered, by command and outcome (OK, or the error reply's code: ERR, NOAUTH...)",
    ["method", "code"],
  );
  /** Open RESP connections now; set by the gateway when the node runs one. */
  respConnections?: () => number;
  /** Where the gateway counts its commands (unknown commands as "unknown", never their name). */
  readonly resp = {
    command: (name: string, errorCode?: string) => this.#respCommands.labels(name, errorCode ?? "OK").inc(),
  };

  /** The handle a served method counts its calls with. `client`: counted in ops/s. */
  method(name: string, client: boolean): MethodMetrics {
    let m = this.#methods.get(name);
    if (!m) {
      m = new MethodMetrics(
        name,
        this.#calls,
        this.#latency.labels(name),
        client ? [this.recent, this.history] : [],
        this.callsByCode,
      );
      this.#methods.set(name, m);
    }
    return m;
  }

  /** The counter of one peer call outcome. */
  peerCall(method: string, peer: string, code: number): CounterSeries {
    return this.#peerCalls.labels(method, peer, CODE_NAMES[code] ?? String(code));
  }

  /** The counter of keys forwarded to a peer. */
  forwardedKeys(peer: string): CounterSeries {
    return this.#forwardedKeys.labels(peer);
  }

  /** The counter of a storage method's failures. */
  storageError(method: string): CounterSeries {
    return this.#storageErrors.labels(method);
  }

  /** Reports the node's state at every scrape. */
  watch(node: KvNode): void {
    const r = this.registry;
    const g = (name: string, help: string, labels: string[] = []) => r.gauge(name, help, labels);
    const active = g("kvstore_node_active", "1 while this node is ACTIVE (serving), 0 while JOINING");
    const storageUp = g("kvstore_storage_up", "1 while this node's storage answers");
    const keys = g("kvstore_keys", "Live keys this node holds (owned or replicated)");
    const bytes = node.storage.bytesHeld
      ? g("kvstore_stored_bytes", "Bytes of keys and records held, tombstones included (memory engine)")
      : undefined;
    const epoch = g("kvstore_membership_epoch", "Epoch of the member list this node holds");
    const moving = g(
      "kvstore_membership_change_active",
      "1 while a membership change (ranges moving) is under way",
    );
    const peerUp = g("kvstore_peer_up", "1 while the peer is ACTIVE as this node sees it", ["peer"]);
    const peerStatus = g(
      "kvstore_peer_status",
      "The peer's status as this node sees it (0 ACTIVE, 1 SUSPECTED, 2 FAILED, 3 JOINING)",
      ["peer"],
    );
    const queue = g("kvstore_replication_queue_records", "Records queued for replication to a peer", [
      "peer",
    ]);
    const lag = g(
      "kvstore_replication_lag_seconds",
      "How long the oldest record queued for a peer has waited",
      ["peer"],
    );
    const hints = g("kvstore_hints_held", "Hints (writes held for a node that is down), by that node", [
      "peer",
    ]);
    const offset = g(
      "kvstore_clock_offset_seconds",
      "The peer's clock minus this node's (the clock versions are stamped with), from heartbeat round trips",
      ["peer"],
    );
    const offsetError = g(
      "kvstore_clock_offset_uncertainty_seconds",
      "Half the round trip of the offset's sample: the offset is within plus or minus this",
      ["peer"],
    );
    const clockOff = g(
      "kvstore_clock_offset_exceeded",
      "1 while this node's clock is beyond limits.max_clock_offset_ms to a majority of the other members (it does not coordinate writes)",
    );
    const delivered = r.counter("kvstore_hints_delivered_total", "Hints handed off to their node");
    const recovering = g("kvstore_recovery_active", "1 while this node recovers its ranges from its peers");
    const recovered = g(
      "kvstore_recovery_records",
      "Records received by the running (or the last) recovery",
    );
    const aeExchanges = r.counter("kvstore_anti_entropy_exchanges_total", "Anti-entropy exchanges completed");
    const aeFailures = r.counter("kvstore_anti_entropy_failures_total", "Anti-entropy exchanges that failed");
    const aeRepaired = r.counter(
      "kvstore_anti_entropy_repaired_records_total",
      "Records anti-entropy repaired (pulled or pushed)",
    );
    const respConns = g("kvstore_resp_connections", "Open connections to this node's Redis protocol gateway");
    const rss = g("kvstore_process_resident_memory_bytes", "Resident memory of the node process");
    const heap = g("kvstore_process_heap_used_bytes", "JavaScript heap in use");
    const started = g("kvstore_process_start_time_seconds", "Unix time the process started");
    started.labels().set(Math.floor(Date.now() / 1000 - performance.now() / 1000));
    r.collect(() => {
      active.labels().set(node.status() === "ACTIVE" ? 1 : 0);
      storageUp.labels().set(node.storage.healthy() ? 1 : 0);
      bytes?.labels().set(node.storage.bytesHeld!());
      epoch.labels().set(node.membership.epoch);
      moving.labels().set(node.ring.moving ? 1 : 0);
      // The peers are the live members: a node that left loses its series.
      for (const f of [peerUp, peerStatus, queue, lag, hints, offset, offsetError]) f.reset();
      for (const p of node.clockWatch.peerOffsets()) {
        offset.labels(p.peer).set(p.offsetMs / 1000);
        offsetError.labels(p.peer).set(p.uncertaintyMs / 1000);
      }
      clockOff.labels().set(node.clockWatch.holdReason() !== undefined ? 1 : 0);
      for (const m of node.members()) {
        if (m.id === node.id) {
          keys.labels().set(m.keysCount);
          continue;
        }
        peerUp.labels(m.id).set(m.status === "ACTIVE" ? 1 : 0);
        peerStatus.labels(m.id).set(STATUS_NUMBER[m.status] ?? -1);
        queue.labels(m.id).set(node.replicator.pending(m.id));
        lag.labels(m.id).set(node.replicator.lagMs(m.id) / 1000);
        hints.labels(m.id).set(node.hints.pendingFor(m.id));
      }
      delivered.labels().value = node.hints.deliveredTotal();
      const rec = node.recoveryProgress();
      recovering.labels().set(rec.running ? 1 : 0);
      recovered.labels().set(rec.records);
      const ae = node.antiEntropyTotals();
      aeExchanges.labels().value = ae.exchanges;
      aeFailures.labels().value = ae.failures;
      aeRepaired.labels().value = ae.repaired;
      respConns.labels().set(this.respConnections?.() ?? 0);
      const mem = Deno.memoryUsage();
      rss.labels().set(mem.rss);
      heap.labels().set(mem.heapUsed);
    });
  }
}
