// What the DHCP server asks of the cluster (as Tinkerbell smee's handlers see only a backend):
// which mode a subnet is in, what a known node gets there, and whether and how an unknown MAC
// becomes a node. directory.ts answers from the object model; tests may answer otherwise.
import type { NodeBinding } from './handler-authoritative.js';

/** A subnet keel serves authoritatively, as the backend describes it to itself in `binding`. */
export type SubnetMode<Network = unknown> = { mode: 'proxy' } | { mode: 'authoritative'; network: Network };

export interface DhcpBackend<Network = unknown> {
  /** The mode of the subnet `address` (the arrival interface's address, or the relay's giaddr) is in. */
  modeFor(address: string): SubnetMode<Network>;
  /**
   * What the node with `mac` gets on `network`; undefined when no node has that MAC; a `problem`
   * when the node exists but cannot be given an address there.
   */
  binding(mac: string, network: Network): NodeBinding | { problem: string } | undefined;
  /** Whether an unknown MAC is registered as a new node. */
  acceptNewNodes(): boolean;
  /** Register an unknown MAC as a node; resolves to the new node (its name and ip are logged). */
  registerNode(mac: string): Promise<Readonly<Record<string, unknown>>>;
  /** Stop following the cluster's changes. */
  close(): void;
}
