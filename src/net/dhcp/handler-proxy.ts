// Proxy DHCP (PXE 2.1 §2.2.3): boot information only, never an address, next to the site's own
// DHCP server. Port 67: a PXE/HTTP client's DISCOVER gets an OFFER (yiaddr 0) with the boot file;
// port 4011: its REQUEST gets an ACK by unicast to where it came from. Everything else on 67 —
// REQUESTs, RELEASEs, clients that are not booting — belongs to the site's server.
import { decideBoot } from '../../boot/policy.js';
import { bootClientOf } from './boot-client.js';
import { BOOTREQUEST, type DhcpPacket } from './codec.js';
import { addBootOptions, messageTypeOf, MESSAGE_TYPE_NAMES, replyDestination, replySkeleton, type HandlerResult, type RequestContext } from './reply.js';
import { DhcpMessageType } from './options.js';

export function handleProxy(request: DhcpPacket, context: RequestContext): HandlerResult {
  if (request.op !== BOOTREQUEST) return { drop: 'not-a-request' };
  const type = messageTypeOf(request);
  if (type === undefined) return { drop: 'bootp', detail: 'no option 53: plain BOOTP is not answered' };
  const { onPxePort } = context;
  const expected = onPxePort ? [DhcpMessageType.REQUEST, DhcpMessageType.INFORM] : [DhcpMessageType.DISCOVER];
  if (!(expected as number[]).includes(type)) return { drop: 'not-for-proxy', detail: `${MESSAGE_TYPE_NAMES[type] ?? type} on port ${context.localPort}` };

  const client = bootClientOf(request.chaddr, request.options);
  if (!client) return { drop: 'not-pxe', detail: 'option 60 is neither PXEClient nor HTTPClient and the client is not iPXE' };
  const server = { address: context.serverAddress, httpPort: context.httpPort };
  const decision = decideBoot(client, server);
  if (!decision.boot) return { drop: 'no-boot-file', detail: decision.reason };

  const reply = replySkeleton(request, onPxePort ? DhcpMessageType.ACK : DhcpMessageType.OFFER, context.serverAddress);
  addBootOptions(reply, request, decision, context.serverAddress);
  if (onPxePort) {
    // The client has its address already: answer it where it asked from (EDK2 sends from port 4011).
    reply.ciaddr = request.ciaddr;
    return { reply: { packet: reply, ...context.source } };
  }
  return { reply: { packet: reply, ...replyDestination(request, true) } };
}
