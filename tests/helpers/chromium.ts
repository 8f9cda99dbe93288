/**
 * Headless Chromium driven over the DevTools protocol (a WebSocket), for
 * tests that check what a real browser shows. The browser runs from a fresh
 * profile directory on a free port, with networking extras off, and is
 * killed by PID when the test ends.
 */
import { freePort } from "./ports.ts";
import { sleep } from "../../lib/async.ts";

/** Path of Debian's chromium, if installed. */
export function chromiumPath(): string | undefined {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* absent */ }
  }
  return undefined;
}

/** One page of a running headless browser. */
export class BrowserPage {
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly child: Deno.ChildProcess,
    private readonly ws: WebSocket,
    private readonly profile: string,
  ) {
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${msg.error.message}`));
      else p.resolve(msg.result);
    };
  }

  /** Starts chromium headless and attaches to its first page. */
  static async open(): Promise<BrowserPage> {
    const path = chromiumPath();
    if (!path) throw new Error("chromium is required in CI: apt-get install -y chromium");
    const profile = await Deno.makeTempDir({ prefix: "kvstore-chromium-" });
    const port = freePort();
    const child = new Deno.Command(path, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        `--remote-debugging-port=${port}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const wsUrl = await pageSocket(port);
      const ws = new WebSocket(wsUrl);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error(`cannot open ${wsUrl}`));
      });
      return new BrowserPage(child, ws, profile);
    } catch (err) {
      child.kill("SIGKILL");
      await child.status;
      throw err;
    }
  }

  /** Sends one DevTools command and waits for its result. */
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Sets the viewport (CSS pixels); `mobile` as a phone would. */
  async viewport(width: number, height: number, mobile = false): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile });
  }

  async navigate(url: string): Promise<void> {
    await this.send("Page.enable");
    await this.send("Page.navigate", { url });
  }

  /** Evaluates an expression in the page; its value, as JSON allows. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: { text: string } }>(
      "Runtime.evaluate",
      { expression, returnByValue: true },
    );
    if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** Saves a PNG of the viewport (or of the whole page) to `path`. */
  async screenshot(path: string, fullPage = false): Promise<void> {
    const params: Record<string, unknown> = { format: "png" };
    if (fullPage) params.captureBeyondViewport = true;
    if (fullPage) {
      const { cssContentSize } = await this.send<{ cssContentSize: { width: number; height: number } }>(
        "Page.getLayoutMetrics",
      );
      params.clip = { x: 0, y: 0, width: cssContentSize.width, height: cssContentSize.height, scale: 1 };
    }
    const { data } = await this.send<{ data: string }>("Page.captureScreenshot", params);
    await Deno.writeFile(path, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  }

  /** Kills the browser by PID and removes its profile. */
  async close(): Promise<void> {
    try {
      this.ws.close();
    } catch { /* already closed */ }
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
    await Deno.remove(this.profile, { recursive: true }).catch(() => {});
  }
}

/** The DevTools WebSocket of the browser's first page, once the browser listens. */
async function pageSocket(port: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`);
      const targets = await res.json() as { type: string; webSocketDebuggerUrl: string }[];
      const page = targets.find((t) => t.type === "page");
      if (page) return page.webSocketDebuggerUrl;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`chromium did not open its DevTools port ${port} within 30 s`);
}
