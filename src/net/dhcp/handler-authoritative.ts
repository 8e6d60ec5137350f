// Authoritative DHCP for known nodes (RFC 2131 server side): a node's address is computed by the
// cluster model (naming pool and network), so there is no pool to allocate from — the handler
// offers that address, ACKs a REQUEST for it, NAKs a REQUEST for any other, and says which lease
// to record. Boot clients also get the boot policy's file, and option 60 PXEClient (without it
// iPXE waits 2–3 s for a proxy offer that never comes).
import { decideBoot } from '../../boot/policy.js';
import { bootClientOf } from './boot-client.js';
import { BOOTREQUEST, type DhcpPacket } from './codec.js';
import { addBootOptions, messageTypeOf, MESSAGE_TYPE_NAMES, replyDestination, replySkeleton, type HandlerResult, type RequestContext } from './reply.js';
import { DhcpMessageType, Option, getOption, setOption } from './options.js';

/** What the cluster model says a node gets (src/net/dhcp/directory.ts builds it). */
export interface NodeBinding {
  nodeUid: string;
  ip: string;
  subnetMask: string;
  routers: string[];
  dnsServers: string[];
  /** Without dnsServers: name the address this reply comes from, keel's DNS server (docs/dns.md). */
  dnsIsServer?: boolean;
  domain: string;
  hostname: string;
  leaseSeconds: number;
}

export type LeaseChange = { op: 'bind'; mac: string; ip: string; nodeUid: string; leaseSeconds: number } | { op: 'release'; mac: string; ip: string };

/** A reply may need a lease written first (ACK): the server sends it only once the lease is durable. */
export type AuthoritativeResult = HandlerResult & { lease?: LeaseChange };

const DOMAIN_NAME_OPTION = 15;
/** Option 56: why a NAK was sent (RFC 2132 §9.9), for whoever reads the client's log. */
const MESSAGE_OPTION = 56;

export function handleAuthoritative(request: DhcpPacket, context: RequestContext, binding: NodeBinding | undefined): AuthoritativeResult {
  if (request.op !== BOOTREQUEST) return { drop: 'not-a-request' };
  const type = messageTypeOf(request);
  if (type === undefined) return { drop: 'bootp', detail: 'no option 53: plain BOOTP is not answered' };
  if (!binding) return { drop: 'unknown-node', detail: `no node has MAC ${request.chaddr}` };
  const serverId = getOption(request.options, Option.serverId);

  switch (type) {
    case DhcpMessageType.DISCOVER:
      return { reply: { packet: offerOrAck(request, context, binding, DhcpMessageType.OFFER), ...replyDestination(request, true) } };

    case DhcpMessageType.REQUEST: {
      // SELECTING names the chosen server; a REQUEST for another server's offer is not ours to answer.
      if (serverId !== undefined && serverId !== context.serverAddress) return { drop: 'other-server', detail: `client chose server ${serverId}` };
      // SELECTING / INIT-REBOOT carry option 50; RENEWING / REBINDING carry ciaddr.
      const wanted = getOption(request.options, Option.requestedIp) ?? (request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined);
      if (wanted !== binding.ip) {
        const nak = replySkeleton(request, DhcpMessageType.NAK, context.serverAddress);
        nak.options.set(MESSAGE_OPTION, Buffer.from(`requested ${wanted ?? 'no address'}; this node's address is ${binding.ip}`, 'latin1'));
        return { reply: { packet: nak, ...replyDestination(request, true) } };
      }
      const ack = offerOrAck(request, context, binding, DhcpMessageType.ACK);
      return {
        reply: { packet: ack, ...replyDestination(request) },
        lease: { op: 'bind', mac: request.chaddr, ip: binding.ip, nodeUid: binding.nodeUid, leaseSeconds: binding.leaseSeconds },
      };
    }

    case DhcpMessageType.INFORM: {
      // The client has its address (configured by hand): parameters only, no lease (RFC 2131 §3.4).
      const ack = offerOrAck(request, context, binding, DhcpMessageType.ACK);
      ack.yiaddr = '0.0.0.0';
      ack.options.delete(Option.leaseTime.code);
      return { reply: { packet: ack, ...replyDestination(request) } };
    }

    case DhcpMessageType.RELEASE:
      if (serverId !== undefined && serverId !== context.serverAddress) return { drop: 'other-server' };
      return { drop: 'released', lease: { op: 'release', mac: request.chaddr, ip: request.ciaddr } };

    case DhcpMessageType.DECLINE:
      // The address is in use by someone else on the wire: only an operator can fix that.
      return { drop: 'declined', detail: `${request.chaddr} says ${binding.ip} is already in use on the network`, lease: { op: 'release', mac: request.chaddr, ip: binding.ip } };

    default:
      return { drop: 'unexpected-type', detail: `${MESSAGE_TYPE_NAMES[type] ?? `type ${type}`} from a client` };
  }
}

function offerOrAck(request: DhcpPacket, context: RequestContext, binding: NodeBinding, type: number): DhcpPacket {
  const reply = replySkeleton(request, type, context.serverAddress);
  reply.yiaddr = binding.ip;
  if (type === DhcpMessageType.ACK) reply.ciaddr = request.ciaddr;
  setOption(reply.options, Option.leaseTime, binding.leaseSeconds);
  setOption(reply.options, Option.subnetMask, binding.subnetMask);
  if (binding.routers.length > 0) setOption(reply.options, Option.routers, binding.routers);
  const dnsServers = binding.dnsServers.length > 0 ? binding.dnsServers : binding.dnsIsServer ? [context.serverAddress] : [];
  if (dnsServers.length > 0) setOption(reply.options, Option.dnsServers, dnsServers);
  setOption(reply.options, Option.hostname, binding.hostname);
  reply.options.set(DOMAIN_NAME_OPTION, Buffer.from(binding.domain, 'latin1'));
  const client = bootClientOf(request.chaddr, request.options);
  if (client) {
    const decision = decideBoot(client, { address: context.serverAddress, httpPort: context.httpPort });
    if (decision.boot) addBootOptions(reply, request, decision, context.serverAddress);
  }
  return reply;
}
