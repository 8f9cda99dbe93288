/**
 * The benchmark's own measuring parts, against real processes: CPU time and
 * resident memory read from /proc (bench/_procs.ts), and the etcd row
 * (bench/etcd.ts): three real etcd members started, loaded through etcd's
 * gRPC KV API with the benchmark's client, and stopped by PID. Needs `etcd`
 * (Debian: etcd-server); outside CI the etcd test is ignored without it.
 */
import assert from "node:assert/strict";
import { cpuSecondsOf, memoryOf, ProcessGroup } from "../bench/_procs.ts";
import { EtcdClient, etcdPath, startEtcd } from "../bench/etcd.ts";
import { clusterTest, text } from "./helpers/cluster.ts";

Deno.test("cpuSecondsOf counts the CPU a busy process uses; a gone process reads undefined", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "const end = Date.now() + 600; while (Date.now() < end) {}"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const before = cpuSecondsOf(child.pid) ?? 0;
  let last = before;
  while (true) {
    const now = cpuSecondsOf(child.pid);
    if (now === undefined) break;
    last = now;
    if ((await Promise.race([child.status, new Promise((r) => setTimeout(r, 50))])) !== undefined) break;
  }
  await child.status;
  console.log(`busy child used ${last.toFixed(2)} s of CPU (read ${before.toFixed(2)} s at start)`);
  assert.ok(last > before, "CPU time grew while the child spun");
  assert.equal(cpuSecondsOf(child.pid), undefined, "a reaped process has no /proc entry");
  const mem = memoryOf(Deno.pid)!;
  assert.ok(mem.rss > 0 && mem.hwm >= mem.rss, `rss ${mem.rss}, peak ${mem.hwm}`);
});

const noEtcd = !etcdPath() && !Deno.env.get("CI");

clusterTest("the etcd row's client puts and gets through three real members, batched too", async () => {
  const group = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "kvstore-etcd-test-" });
  try {
    const etcd = await startEtcd(group, dir);
    assert.equal(etcd.procs.filter((p) => p.running).length, 3);
    const client = new EtcdClient(etcd.addresses);
    // Round-robin: consecutive calls go to different members, all see the same data.
    for (let i = 0; i < 6; i++) assert.equal((await client.put(`k${i}`, `v${i}`)).ok, true);
    for (let i = 0; i < 6; i++) {
      const r = await client.get(`k${i}`);
      assert.equal(r.found, true, `k${i}`);
      assert.equal(text.decode(r.value), `v${i}`);
    }
    assert.equal((await client.get("never-written")).found, false);
    const items = Array.from({ length: 100 }, (_, i) => ({ key: `b${i}`, value: `batch ${i}` }));
    assert.ok((await client.multiPut(items)).every((w) => w.ok));
    const reads = await client.multiGet([...items.map((i) => i.key), "b-missing"]);
    items.forEach((item, i) => assert.equal(text.decode(reads[i].value), item.value));
    assert.equal(reads[100].found, false);
    await etcd.stop();
    assert.equal(etcd.procs.filter((p) => p.running).length, 0, "every member stopped by PID");
  } finally {
    await group.stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}, { ignore: noEtcd });
