// What the proxy and authoritative handlers share: the context a request arrives in, the result
// they return (replies to send, or why nothing is sent), and the reply skeleton and addressing of
// RFC 2131 §4.1. Pure: no sockets, no store.
import type { BootDecision } from '../../boot/policy.js';
import { BOOTREPLY, BROADCAST_FLAG, type DhcpPacket } from './codec.js';
import { DhcpMessageType, Option, PxeDiscoveryControl, PxeSubOption, setOption, type DhcpOptions } from './options.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
/** PXE boot server discovery (PXE 2.1): proxyDHCP REQUESTs go here, answered by unicast. */
export const PXE_PORT = 4011;
const ANY = '0.0.0.0';
const BROADCAST = '255.255.255.255';

export interface RequestContext {
  /** The local address of the interface the request arrived on: option 54 and siaddr. */
  serverAddress: string;
  /** Port the request arrived on (67 or 4011, unless configured otherwise). */
  localPort: number;
  /** It arrived on the PXE boot server port (4011) rather than the DHCP server port. */
  onPxePort: boolean;
  /** Source address and port of the datagram. */
  source: { address: string; port: number };
  httpPort: number;
}

export interface OutgoingReply {
  packet: DhcpPacket;
  address: string;
  port: number;
}

export type HandlerResult =
  | { reply: OutgoingReply }
  /** Not answered: `reason` is a counter name (e.g. 'not-pxe'), `detail` for the log. */
  | { drop: string; detail?: string };

export const MESSAGE_TYPE_NAMES: Readonly<Record<number, string>> = {
  [DhcpMessageType.DISCOVER]: 'DISCOVER',
  [DhcpMessageType.OFFER]: 'OFFER',
  [DhcpMessageType.REQUEST]: 'REQUEST',
  [DhcpMessageType.DECLINE]: 'DECLINE',
  [DhcpMessageType.ACK]: 'ACK',
  [DhcpMessageType.NAK]: 'NAK',
  [DhcpMessageType.RELEASE]: 'RELEASE',
  [DhcpMessageType.INFORM]: 'INFORM',
};

/** A BOOTREPLY to `request` with the request's xid, flags, giaddr and chaddr, message type and server id. */
export function replySkeleton(request: DhcpPacket, type: number, serverAddress: string): DhcpPacket {
  const options: DhcpOptions = new Map();
  setOption(options, Option.messageType, type);
  setOption(options, Option.serverId, serverAddress);
  return {
    op: BOOTREPLY, htype: request.htype, hops: 0, xid: request.xid, secs: 0, flags: request.flags,
    ciaddr: ANY, yiaddr: ANY, siaddr: ANY, giaddr: request.giaddr, chaddr: request.chaddr, sname: '', file: '', options,
  };
}

/** Option 43 with PXE_DISCOVERY_CONTROL = use the boot file; encoded once (serializing only reads it). */
const USE_OFFERED_BOOT_FILE = Option.vendorSpecific.encode(new Map([[PxeSubOption.DISCOVERY_CONTROL, Buffer.from([PxeDiscoveryControl.USE_BOOTFILE])]]));

/** Puts a boot decision in a reply: next-server, file and option 67, option 60, option 43, option 97 echoed. */
export function addBootOptions(reply: DhcpPacket, request: DhcpPacket, decision: Extract<BootDecision, { boot: true }>, serverAddress: string): void {
  reply.siaddr = serverAddress;
  // The file field holds 128 bytes; a longer URL (it is not) would go in option 67 only.
  if (Buffer.byteLength(decision.bootFile, 'latin1') < 128) reply.file = decision.bootFile;
  setOption(reply.options, Option.bootfileName, decision.bootFile);
  setOption(reply.options, Option.vendorClassId, decision.vendorClass);
  // 06 01 08 ff: firmware PXE (EDK2) takes the offer's boot file instead of asking again on 4011.
  if (decision.pxeDiscoveryControl) reply.options.set(Option.vendorSpecific.code, USE_OFFERED_BOOT_FILE);
  const uuid = request.options.get(Option.clientUuid.code);
  if (uuid !== undefined) reply.options.set(Option.clientUuid.code, uuid);
}

/**
 * Where a reply goes (RFC 2131 §4.1): to the relay (giaddr, port 67) if there is one, to a
 * client that has an address (ciaddr) by unicast, else by broadcast. Unicast to yiaddr before the
 * client has it needs an ARP entry the server cannot make from user space: broadcast instead.
 */
export function replyDestination(request: DhcpPacket, forceBroadcast = false): { address: string; port: number } {
  if (request.giaddr !== ANY) return { address: request.giaddr, port: DHCP_SERVER_PORT };
  if (!forceBroadcast && request.ciaddr !== ANY && (request.flags & BROADCAST_FLAG) === 0) return { address: request.ciaddr, port: DHCP_CLIENT_PORT };
  return { address: BROADCAST, port: DHCP_CLIENT_PORT };
}

export function messageTypeOf(packet: DhcpPacket): number | undefined {
  const value = packet.options.get(Option.messageType.code);
  return value?.length === 1 ? value[0] : undefined;
}
