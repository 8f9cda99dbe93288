/**
 * The chaos network harness on its own: members reach each other over the
 * bridge, an iptables cut stops that and heal restores it, destroy leaves no
 * namespace behind, and a leftover of a run whose process is gone is removed.
 * Ignored (never passed) without root or `ip`/`iptables` outside CI.
 */
import assert from "node:assert/strict";
import { ChaosNetwork, removeStale, run, unavailableReason } from "./netns.ts";

const reason = await unavailableReason();
const ignore = reason !== undefined && !Deno.env.get("CI");

async function namespaces(): Promise<string[]> {
  return (await run("ip", ["netns", "list"])).split("\n").map((l) => l.split(" ")[0]).filter((n) => n);
}

/** Whether a TCP connection from `from`'s namespace to `ip:port` succeeds within a second. */
async function connects(net: ChaosNetwork, from: string, ip: string, port: number): Promise<boolean> {
  const script = `const c = await Deno.connect({ hostname: "${ip}", port: ${port} }); c.close();`;
  const { cmd, args } = net.exec(from, Deno.execPath(), ["eval", script]);
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
  const status = await child.status;
  clearTimeout(timer);
  return status.success;
}

Deno.test({
  name:
    "chaos network: members reach each other; a cut drops it, heal restores it; nothing is left after destroy",
  ignore,
  fn: async () => {
    const net = await ChaosNetwork.create(["a", "b"]);
    const a = net.member("a");
    const listener = net.exec("b", Deno.execPath(), [
      "eval",
      `const l = Deno.listen({ hostname: "${
        net.member("b").ip
      }", port: 7999 }); for await (const c of l) c.close();`,
    ]);
    const server = new Deno.Command(listener.cmd, { args: listener.args, stdout: "null", stderr: "null" })
      .spawn();
    try {
      assert.ok((await namespaces()).includes(a.ns));
      let up = false;
      for (let i = 0; i < 20 && !up; i++) up = await connects(net, "a", net.member("b").ip, 7999);
      assert.ok(up, "a reaches b over the bridge");
      await net.iptables("a", ["-A", "OUTPUT", "-d", net.member("b").ip, "-j", "DROP"]);
      assert.equal(
        await connects(net, "a", net.member("b").ip, 7999),
        false,
        "the cut drops a's packets to b",
      );
      await net.heal();
      assert.ok(await connects(net, "a", net.member("b").ip, 7999), "heal restores the link");
    } finally {
      server.kill("SIGKILL");
      await server.status;
      await net.destroy();
    }
    const left = (await namespaces()).filter((n) => n.startsWith(net.tag));
    assert.deepEqual(left, []);
  },
});

Deno.test({
  name: "chaos network: a namespace left by a run whose process is gone is removed at the next start",
  ignore,
  fn: async () => {
    let dead = 4_000_000;
    while (await Deno.stat(`/proc/${dead}`).then(() => true, () => false)) dead++;
    const stale = `kvc-${dead}-test-sw`;
    await run("ip", ["netns", "add", stale]);
    try {
      const removed = await removeStale();
      assert.ok(removed.includes(stale), `removed ${removed.join(", ")}`);
      assert.equal((await namespaces()).includes(stale), false);
    } finally {
      await run("ip", ["netns", "delete", stale]).catch(() => {});
    }
  },
});
