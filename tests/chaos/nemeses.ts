/**
 * The faults of the chaos suite. Each nemesis starts a fault on a running
 * cluster of nodes n1, n2, n3 (with the clients in their own namespace) and
 * heals it; network faults are iptables DROP rules inside the namespaces
 * (tc netem is not available on the kernels this runs on), process faults
 * are signals to the node's PID.
 */
import type { ChaosNetwork } from "./netns.ts";
import type { NsCluster } from "./ns_cluster.ts";

/** What a nemesis acts on. */
export interface NemesisContext {
  net: ChaosNetwork;
  cluster: NsCluster;
}

/** A fault: how to start it and how to heal it. */
export interface Nemesis {
  name: string;
  description: string;
  /** Extra `server` flags for a node from the start of the run. */
  nodeArgs?: Record<string, string[]>;
  /** Storage engine the nodes run (default memory); redis gives each node a redis-server in its namespace. */
  storage?: "memory" | "redis";
  /** Nodes it leaves down to the end: the final reads leave them out. */
  leftDown?: string[];
  start(ctx: NemesisContext): Promise<void>;
  heal(ctx: NemesisContext): Promise<void>;
}

/** How far ahead the skewed node's clock runs. */
export const CLOCK_OFFSET_MS = 5000;

/** Drops every packet between `a` and `b`, in both directions (rules in `a`'s namespace). */
async function cut(net: ChaosNetwork, a: string, b: string): Promise<void> {
  const ip = net.member(b).ip;
  await net.iptables(a, ["-A", "INPUT", "-s", ip, "-j", "DROP"]);
  await net.iptables(a, ["-A", "OUTPUT", "-d", ip, "-j", "DROP"]);
}

const healNetwork = ({ net }: NemesisContext) => net.heal();

const isolate = async ({ net }: NemesisContext, id: string) => {
  await net.iptables(id, ["-A", "INPUT", "-s", "10.213.0.0/24", "-j", "DROP"]);
  await net.iptables(id, ["-A", "OUTPUT", "-d", "10.213.0.0/24", "-j", "DROP"]);
};

/** Every nemesis, in the order of the table in docs/chaos.md. */
export const NEMESES: Nemesis[] = [
  {
    name: "isolate",
    description: "n1 cut from every node and from the clients",
    start: (ctx) => isolate(ctx, "n1"),
    heal: healNetwork,
  },
  {
    name: "cut-peers",
    description: "n1 cut from n2 and n3; the clients still reach n1",
    start: async ({ net }) => {
      await cut(net, "n1", "n2");
      await cut(net, "n1", "n3");
    },
    heal: healNetwork,
  },
  {
    name: "partial",
    description: "n1 and n3 cannot talk; n2 reaches both, the clients reach all",
    start: ({ net }) => cut(net, "n1", "n3"),
    heal: healNetwork,
  },
  {
    name: "one-way",
    description: "packets from n1 to n2 dropped; n2 to n1 flow",
    start: ({ net }) => net.iptables("n1", ["-A", "OUTPUT", "-d", net.member("n2").ip, "-j", "DROP"]),
    heal: healNetwork,
  },
  {
    name: "loss-30",
    description: "30% of n1's packets (in and out) dropped at random",
    start: async ({ net }) => {
      const loss = ["-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"];
      await net.iptables("n1", ["-A", "INPUT", "-s", "10.213.0.0/24", ...loss]);
      await net.iptables("n1", ["-A", "OUTPUT", "-d", "10.213.0.0/24", ...loss]);
    },
    heal: healNetwork,
  },
  {
    name: "kill-9",
    description: "n1 killed with SIGKILL, restarted at heal with its Redis data (Redis engine)",
    storage: "redis",
    start: ({ cluster }) => cluster.signal("n1", "SIGKILL"),
    heal: ({ cluster }) => Promise.resolve(cluster.startNode("n1")),
  },
  {
    name: "kill-9-memory",
    description: "n1 killed with SIGKILL and left down to the end (memory engine: its copies are gone)",
    leftDown: ["n1"],
    start: ({ cluster }) => cluster.signal("n1", "SIGKILL"),
    heal: () => Promise.resolve(),
  },
  {
    name: "sigstop",
    description: "n1 frozen with SIGSTOP, resumed with SIGCONT at heal",
    start: ({ cluster }) => cluster.signal("n1", "SIGSTOP"),
    heal: ({ cluster }) => cluster.signal("n1", "SIGCONT"),
  },
  {
    name: "wipe",
    description: "n1 killed with SIGKILL, its Redis flushed, restarted at heal with no data (Redis engine)",
    storage: "redis",
    start: async ({ cluster }) => {
      await cluster.signal("n1", "SIGKILL");
      await cluster.redisCli("n1", "FLUSHALL");
    },
    heal: ({ cluster }) => Promise.resolve(cluster.startNode("n1")),
  },
  {
    name: "clock-ahead",
    description:
      `n1's clock ${CLOCK_OFFSET_MS} ms ahead all run (--clock-offset-ms); n1 isolated during the fault`,
    nodeArgs: { n1: ["--clock-offset-ms", String(CLOCK_OFFSET_MS)] },
    start: (ctx) => isolate(ctx, "n1"),
    heal: healNetwork,
  },
];

/** A nemesis by name. */
export function nemesis(name: string): Nemesis {
  const n = NEMESES.find((x) => x.name === name);
  if (!n) throw new Error(`no nemesis ${name} (have ${NEMESES.map((x) => x.name).join(", ")})`);
  return n;
}
