/**
 * How a node started with `--join` enters a running cluster.
 *
 * First it asks one of the given addresses for the cluster's member list and
 * settings (it has no cluster file). Once it serves, it calls JoinCluster
 * until the claimant accepts it, waiting and asking again while another
 * change is under way; the accepted list names it JOINING, and from then on
 * the node pulls its ranges (see `mover.ts`).
 */
import type { Logger } from "../log.ts";
import { Code, errorMessage, KvError } from "../errors.ts";
import { sleep } from "../async.ts";
import type { JoinerAddress, MembershipSnapshot, MembershipTransport } from "./transport.ts";
import type { Membership } from "./manager.ts";

/** Pause between attempts while the cluster asks to retry. */
const RETRY_PAUSE_MS = 1000;

/** The peer id under which a seed address is called. */
function seedId(address: string): string {
  return `seed:${address}`;
}

/** Makes each `host:port` callable; resolves with their peer ids. */
export function addSeeds(transport: MembershipTransport, addresses: readonly string[]): string[] {
  return addresses.map((a) => {
    const i = a.lastIndexOf(":");
    transport.addPeer(seedId(a), a.slice(0, i), Number(a.slice(i + 1)));
    return seedId(a);
  });
}

/**
 * Asks the seeds, in turn, for the cluster's membership until one answers,
 * `timeoutMs` passes, or (`hopeless`) every seed failed in a way waiting
 * does not mend (a certificate the other side does not trust).
 */
export async function fetchFromSeeds(
  transport: MembershipTransport,
  addresses: readonly string[],
  timeoutMs: number,
  hopeless: (error: string) => boolean = () => false,
): Promise<MembershipSnapshot & { seed: string }> {
  const ids = addSeeds(transport, addresses);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (true) {
    let mendable = false;
    for (const [i, id] of ids.entries()) {
      try {
        return { ...await transport.fetchMembership(id), seed: addresses[i] };
      } catch (err) {
        last = `${addresses[i]}: ${errorMessage(err)}`;
        if (!hopeless(errorMessage(err))) mendable = true;
      }
    }
    if (Date.now() > deadline || !mendable) {
      throw new Error(`no node of ${addresses.join(", ")} answered (${last})`);
    }
    await sleep(500);
  }
}

/**
 * Calls JoinCluster through the seeds until accepted; a refusal (the id or
 * address belongs to another member) throws.
 */
export async function joinUntilAccepted(o: {
  self: JoinerAddress;
  seeds: readonly string[];
  transport: MembershipTransport;
  membership: Membership;
  log: Logger;
  timeoutMs: number;
}): Promise<void> {
  const ids = addSeeds(o.transport, o.seeds);
  const deadline = Date.now() + o.timeoutMs;
  for (let attempt = 0;; attempt++) {
    const seed = ids[attempt % ids.length];
    try {
      const res = await o.transport.join(seed, o.self);
      if (res.accepted) {
        // The seed the operator named is this joiner's anchor: its answer is adopted as it is.
        if (res.list) o.membership.adoptTrusted(res.list, seed);
        o.log.info("joined the cluster; pulling this node's ranges", { message: res.message });
        return;
      }
      o.log.info("join not accepted yet; will retry", { via: seed, message: res.message });
    } catch (err) {
      if (err instanceof KvError && !isTransient(err)) throw err;
      o.log.warn("join attempt failed; will retry", { via: seed, error: errorMessage(err) });
    }
    if (Date.now() > deadline) throw new Error(`not accepted within ${o.timeoutMs} ms`);
    await sleep(RETRY_PAUSE_MS);
  }
}

function isTransient(err: KvError): boolean {
  return err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED;
}
