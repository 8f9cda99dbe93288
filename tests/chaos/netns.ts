/**
 * A private network of Linux network namespaces for chaos tests.
 *
 * One namespace holds a bridge (the switch); each member (a node, or the
 * clients) gets its own namespace, linked to the bridge by a veth pair, with
 * its loopback up and one address in 10.213.0.0/24. Nothing is added to the
 * root namespace, and every name carries this process's PID, so runs never
 * collide and a leftover of a crashed run is recognised (its PID is gone) and
 * removed by the next run. Faults are iptables rules inside a member's
 * namespace. Needs root, `ip` and `iptables`.
 */

/** The subnet every chaos network uses (each in its own isolated bridge namespace). */
export const SUBNET = "10.213.0.0/24";

/** Prefix of every namespace this module creates. */
const PREFIX = "kvc-";

/** Runs a command; throws with its output when it fails. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** Why namespaces cannot be made here, or undefined when they can. */
export async function unavailableReason(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root";
  if (!await succeeds("ip", ["-V"])) return "no ip (iproute2)";
  if (!await succeeds("iptables", ["--version"])) return "no iptables";
  const probe = `${PREFIX}${Deno.pid}-probe`;
  if (!await succeeds("ip", ["netns", "add", probe])) return "cannot create a network namespace";
  await run("ip", ["netns", "delete", probe]).catch(() => {});
  return undefined;
}

/** A member of the network: its namespace and address. */
export interface Member {
  name: string;
  ns: string;
  ip: string;
}

/** A bridge and one namespace per member. */
export class ChaosNetwork {
  readonly members = new Map<string, Member>();

  private constructor(readonly tag: string, readonly switchNs: string) {}

  /** Creates the network; `names` get addresses 10.213.0.11, .12, ... in order. */
  static async create(names: string[]): Promise<ChaosNetwork> {
    await removeStale();
    const tag = `${PREFIX}${Deno.pid}-${Math.floor(Math.random() * 1e6).toString(36)}`;
    const net = new ChaosNetwork(tag, `${tag}-sw`);
    try {
      await run("ip", ["netns", "add", net.switchNs]);
      await run("ip", ["-n", net.switchNs, "link", "add", "br0", "type", "bridge"]);
      await run("ip", ["-n", net.switchNs, "link", "set", "br0", "up"]);
      for (const [i, name] of names.entries()) await net.#addMember(name, `10.213.0.${11 + i}`, i);
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  async #addMember(name: string, ip: string, index: number): Promise<void> {
    const ns = `${this.tag}-${name}`;
    await run("ip", ["netns", "add", ns]);
    this.members.set(name, { name, ns, ip });
    const port = `p${index}`;
    await run("ip", [
      "-n",
      this.switchNs,
      "link",
      "add",
      port,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      ns,
    ]);
    await run("ip", ["-n", this.switchNs, "link", "set", port, "master", "br0"]);
    await run("ip", ["-n", this.switchNs, "link", "set", port, "up"]);
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    await run("ip", ["-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  }

  member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** The command line that runs `cmd args` inside a member's namespace. */
  exec(name: string, cmd: string, args: string[]): { cmd: string; args: string[] } {
    return { cmd: "ip", args: ["netns", "exec", this.member(name).ns, cmd, ...args] };
  }

  /** Adds an iptables rule in a member's namespace (e.g. ["-A", "INPUT", "-s", ip, "-j", "DROP"]). */
  async iptables(name: string, rule: string[]): Promise<void> {
    await run("ip", ["netns", "exec", this.member(name).ns, "iptables", "-w", ...rule]);
  }

  /** Removes every rule this test added, in every member. */
  async heal(): Promise<void> {
    for (const m of this.members.values()) {
      for (const chain of ["INPUT", "OUTPUT"]) {
        await run("ip", ["netns", "exec", m.ns, "iptables", "-w", "-F", chain]);
      }
    }
  }

  /** Deletes every namespace (their veths go with them). Processes inside must be stopped first. */
  async destroy(): Promise<void> {
    for (const ns of [...[...this.members.values()].map((m) => m.ns), this.switchNs]) {
      await run("ip", ["netns", "delete", ns]).catch(() => {});
    }
    this.members.clear();
  }
}

/**
 * Removes namespaces left by a chaos run whose process is gone (crashed or
 * killed before its cleanup ran): first the processes still inside them,
 * by PID, then the namespaces.
 */
export async function removeStale(): Promise<string[]> {
  const listing = await run("ip", ["netns", "list"]).catch(() => "");
  const removed: string[] = [];
  for (const line of listing.split("\n")) {
    const ns = line.split(" ")[0];
    const m = /^kvc-(\d+)-/.exec(ns);
    if (!m || processAlive(Number(m[1]))) continue;
    const pids = await run("ip", ["netns", "pids", ns]).catch(() => "");
    for (const pid of pids.split("\n").filter((p) => /^\d+$/.test(p))) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    await run("ip", ["netns", "delete", ns]).catch(() => {});
    removed.push(ns);
  }
  if (removed.length > 0) console.log(`removed stale chaos namespaces: ${removed.join(", ")}`);
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
