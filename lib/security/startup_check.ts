/**
 * What a node checks about its own security settings before it listens.
 *
 * Two mistakes leave a node running but useless, and silently so: peers on
 * other machines while the node is in protected mode (it would refuse them
 * all), and a certificate that does not name the node (its peers admit a
 * node by its certificate's common name, so they would refuse it, and it
 * would serve alone). Both stop the node at startup with the reason.
 */
import type { NodeConfig } from "../config.ts";
import type { NodeSecurity } from "./settings.ts";
import { unreachablePeers } from "./protected_mode.ts";
import { nodeCertProblem } from "./node_cert.ts";

/** Why node `self` must not start with these settings, or undefined when it may. */
export function startRefusal(
  security: NodeSecurity,
  self: NodeConfig,
  nodes: readonly Pick<NodeConfig, "id" | "host">[],
): string | undefined {
  const peers = unreachablePeers(security, self.id, nodes);
  if (peers) return peers;
  if (!security.tls) return undefined;
  const problem = nodeCertProblem(security.tls, self.id);
  return problem && `${self.tlsCertFile} (security.tls): ${problem}`;
}
