/**
 * A small Prometheus registry: counters, gauges and fixed-bucket histograms,
 * rendered in the text exposition format (version 0.0.4).
 *
 * Built for a hot path: a labelled series is looked up once (`labels(...)`)
 * and kept by the caller, so counting a call is a field increment and a
 * histogram observation is a short loop over fixed bounds; nothing builds
 * strings until a scrape renders them. Gauges may be set, or computed at
 * scrape time by a collect function.
 */

/** A metric that renders itself. */
interface Metric {
  render(out: string[]): void;
}

/** A monotonically increasing count. */
export class CounterSeries {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

/** A value that goes up and down. */
export class GaugeSeries {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
}

/** Counts of observations per bucket (cumulative at render), their sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** Escapes a label value for the text format. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A metric family with one series per combination of label values. */
abstract class Family<S> implements Metric {
  readonly #series = new Map<string, { values: string[]; series: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series for these label values (created on first use; keep it). */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(`${this.name}: ${this.labelNames.length} label values expected`);
    }
    const key = values.join("\u0000");
    let entry = this.#series.get(key);
    if (!entry) this.#series.set(key, entry = { values, series: this.create() });
    return entry.series;
  }

  /** Forgets every series (for gauges recomputed from scratch at each scrape). */
  reset(): void {
    this.#series.clear();
  }

  protected abstract create(): S;
  protected abstract renderSeries(out: string[], labels: string[], series: S): void;

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    for (const { values, series } of this.#series.values()) this.renderSeries(out, values, series);
  }
}

/** A counter family. */
export class Counter extends Family<CounterSeries> {
  protected create(): CounterSeries {
    return new CounterSeries();
  }
  protected renderSeries(out: string[], values: string[], s: CounterSeries): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(s.value)}`);
  }
}

/** A gauge family. */
export class Gauge extends Family<GaugeSeries> {
  protected create(): GaugeSeries {
    return new GaugeSeries();
  }
  protected renderSeries(out: string[], values: string[], s: GaugeSeries): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(s.value)}`);
  }
}

/** A histogram family with fixed bucket bounds. */
export class Histogram extends Family<HistogramSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, "histogram", labelNames);
  }
  protected create(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }
  protected renderSeries(out: string[], values: string[], s: HistogramSeries): void {
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += s.counts[i];
      const le = `le="${formatNumber(this.bounds[i])}"`;
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, le)} ${cumulative}`);
    }
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${s.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatNumber(s.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
  }
}

/** A set of metric families rendered together; collectors refresh gauges first. */
export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #collectors: (() => void | Promise<void>)[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, "counter", labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, "gauge", labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, labelNames, bounds));
  }

  /** Runs before each render (sets gauges from the current state). */
  collect(fn: () => void | Promise<void>): void {
    this.#collectors.push(fn);
  }

  /** Every family in the text format. */
  async render(): Promise<string> {
    for (const c of this.#collectors) await c();
    const out: string[] = [];
    for (const m of this.#metrics) m.render(out);
    return out.join("\n") + "\n";
  }

  #add<M extends Metric>(m: M): M {
    this.#metrics.push(m);
    return m;
  }
}

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
