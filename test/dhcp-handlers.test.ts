// The proxy and authoritative handlers and the boot policy, pure: packets captured from real clients
// (test/fixtures/dhcp) in, reply packets and their destinations out. No sockets.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { ClientArch, decideBoot } from '../src/boot/policy.js';
import { bootClientOf } from '../src/net/dhcp/boot-client.js';
import { BOOTREPLY, parseDhcp, serializeDhcp, type DhcpPacket } from '../src/net/dhcp/codec.js';
import { handleAuthoritative, type NodeBinding } from '../src/net/dhcp/handler-authoritative.js';
import { handleProxy } from '../src/net/dhcp/handler-proxy.js';
import type { HandlerResult, OutgoingReply, RequestContext } from '../src/net/dhcp/reply.js';
import { DhcpMessageType, Option, getOption, setOption } from '../src/net/dhcp/options.js';

const fixture = (name: string): DhcpPacket => {
  const result = parseDhcp(readFileSync(new URL(`./fixtures/dhcp/${name}.bin`, import.meta.url)));
  if (!result.ok) throw new Error(result.reason);
  return result.packet;
};

const SERVER = '10.67.0.1';
const context = (overrides: Partial<RequestContext> = {}): RequestContext => ({
  serverAddress: SERVER, localPort: 67, onPxePort: false, source: { address: '0.0.0.0', port: 68 }, httpPort: 8080, ...overrides,
});

function replyOf(result: HandlerResult): OutgoingReply {
  if ('drop' in result) throw new Error(`expected a reply, dropped: ${result.drop} ${result.detail ?? ''}`);
  // Every reply must encode: what the server would put on the wire.
  const wire = parseDhcp(serializeDhcp(result.reply.packet));
  if (!wire.ok) throw new Error(wire.reason);
  return { ...result.reply, packet: wire.packet };
}

const hex = (value: Buffer | undefined) => value?.toString('hex');

test('proxy: QEMU iPXE ROM DISCOVER → broadcast OFFER with no address and its iPXE script URL', (t) => {
  const discover = fixture('qemu-ipxe-01-to-server');
  const { packet: offer, address, port } = replyOf(handleProxy(discover, context()));
  t.is(address, '255.255.255.255');
  t.is(port, 68);
  t.is(offer.op, BOOTREPLY);
  t.is(offer.xid, discover.xid);
  t.is(offer.chaddr, '52:54:00:12:34:57');
  t.is(getOption(offer.options, Option.messageType), DhcpMessageType.OFFER);
  t.is(offer.yiaddr, '0.0.0.0');
  t.is(offer.siaddr, SERVER);
  t.is(getOption(offer.options, Option.serverId), SERVER);
  t.is(getOption(offer.options, Option.vendorClassId), 'PXEClient');
  t.is(hex(offer.options.get(97)), hex(discover.options.get(97)));
  const url = 'http://10.67.0.1:8080/boot/ipxe?mac=52:54:00:12:34:57';
  t.is(offer.file, url);
  t.is(getOption(offer.options, Option.bootfileName), url);
  // iPXE needs no PXE discovery control, and a proxy never leases.
  t.false(offer.options.has(43));
  t.false(offer.options.has(51));
});

test('proxy: OVMF UEFI PXE DISCOVER → OFFER of ipxe.efi with option 43 06 01 08 ff (take the offered file)', (t) => {
  const discover = fixture('qemu-ovmf-01-to-server');
  const { packet: offer, address } = replyOf(handleProxy(discover, context()));
  t.is(address, '255.255.255.255');
  t.is(offer.yiaddr, '0.0.0.0');
  t.is(offer.file, 'ipxe.efi');
  t.is(getOption(offer.options, Option.bootfileName), 'ipxe.efi');
  t.is(hex(offer.options.get(43)), '060108ff');
  t.is(getOption(offer.options, Option.vendorClassId), 'PXEClient');
  t.is(hex(offer.options.get(97)), '0078563412bc9af0de123456789abcdef1');
});

test('proxy: a REQUEST on port 4011 gets a unicast ACK to its source address and port', (t) => {
  const request = fixture('qemu-ovmf-03-to-server');
  request.ciaddr = '10.67.0.150';
  const { packet: ack, address, port } = replyOf(handleProxy(request, context({ localPort: 4011, onPxePort: true, source: { address: '10.67.0.150', port: 4011 } })));
  t.deepEqual([address, port], ['10.67.0.150', 4011]);
  t.is(getOption(ack.options, Option.messageType), DhcpMessageType.ACK);
  t.is(ack.ciaddr, '10.67.0.150');
  t.is(ack.yiaddr, '0.0.0.0');
  t.is(ack.file, 'ipxe.efi');
});

test('proxy: leaves REQUESTs on port 67 and non-boot clients to the site DHCP server', (t) => {
  t.like(handleProxy(fixture('qemu-ovmf-03-to-server'), context()), { drop: 'not-for-proxy' });
  t.like(handleProxy(fixture('udhcpc-01-to-server'), context()), { drop: 'not-pxe' });
  t.like(handleProxy(fixture('perfdhcp-01-to-server'), context()), { drop: 'not-pxe' });
  t.like(handleProxy(fixture('udhcpc-02-to-client'), context()), { drop: 'not-a-request' });
});

test('proxy: a relayed PXE DISCOVER (perfdhcp with option 60) is answered to the relay on port 67', (t) => {
  const discover = fixture('perfdhcp-01-to-server');
  setOption(discover.options, Option.vendorClassId, 'PXEClient');
  const { packet: offer, address, port } = replyOf(handleProxy(discover, context()));
  t.deepEqual([address, port], ['10.67.0.2', 67]);
  t.is(offer.giaddr, '10.67.0.2');
  t.is(offer.file, 'undionly.kpxe'); // no option 93: a BIOS PXE ROM
});

test('policy: architecture → iPXE binary; HTTP boot gets a URL and HTTPClient; unknown arch is refused', (t) => {
  const server = { address: SERVER, httpPort: 80 };
  const client = (arch: number | undefined, vendorClass = 'PXEClient') => ({ mac: '52:54:00:00:00:01', arch, vendorClass, ipxe: false, ipxeWithoutHttp: false });
  t.like(decideBoot(client(ClientArch.X86_BIOS), server), { bootFile: 'undionly.kpxe', vendorClass: 'PXEClient', pxeDiscoveryControl: true });
  t.like(decideBoot(client(ClientArch.X64_UEFI), server), { bootFile: 'ipxe.efi' });
  t.like(decideBoot(client(ClientArch.X64_UEFI_ALT), server), { bootFile: 'ipxe.efi' });
  t.like(decideBoot(client(ClientArch.ARM64_UEFI), server), { bootFile: 'ipxe-arm64.efi' });
  t.like(decideBoot(client(ClientArch.X64_UEFI_HTTP, 'HTTPClient:Arch:00016'), server), {
    bootFile: 'http://10.67.0.1:80/boot/firmware/ipxe.efi', vendorClass: 'HTTPClient', pxeDiscoveryControl: false,
  });
  t.like(decideBoot(client(2), server), { boot: false });
  // iPXE without HTTP support (option 175 lacks feature 0x13) is given a full iPXE over TFTP first.
  const options = new Map([[60, Buffer.from('PXEClient')], [93, Buffer.from([0, 0])], [175, Buffer.from([0x15, 1, 1])]]);
  t.like(decideBoot(bootClientOf('52:54:00:00:00:01', options)!, server), { bootFile: 'undionly.kpxe', pxeDiscoveryControl: false });
  // Bare 'PXEClient' (undionly's iPXE) is a boot client.
  t.truthy(bootClientOf('52:54:00:00:00:01', new Map([[60, Buffer.from('PXEClient')]])));
});

const binding = (ip: string): NodeBinding => ({
  nodeUid: 'u1', ip, subnetMask: '255.255.255.0', routers: ['10.67.0.254'], dnsServers: ['10.67.0.53', '10.67.0.54'],
  domain: 'lab.example', hostname: 'n7', leaseSeconds: 7200,
});

test('authoritative: udhcpc DORA — OFFER and ACK of the node address with router, DNS, domain, hostname; the ACK records a lease', (t) => {
  const node = binding('10.67.0.148');
  const offer = replyOf(handleAuthoritative(fixture('udhcpc-01-to-server'), context(), node));
  t.is(offer.address, '255.255.255.255');
  t.is(getOption(offer.packet.options, Option.messageType), DhcpMessageType.OFFER);
  t.is(offer.packet.yiaddr, '10.67.0.148');
  t.is(getOption(offer.packet.options, Option.serverId), SERVER);
  t.is(getOption(offer.packet.options, Option.subnetMask), '255.255.255.0');
  t.deepEqual(getOption(offer.packet.options, Option.routers), ['10.67.0.254']);
  t.deepEqual(getOption(offer.packet.options, Option.dnsServers), ['10.67.0.53', '10.67.0.54']);
  t.is(getOption(offer.packet.options, Option.hostname), 'n7');
  t.is(offer.packet.options.get(15)?.toString(), 'lab.example');
  t.is(getOption(offer.packet.options, Option.leaseTime), 7200);
  // Not a boot client (option 60 keel-test): no boot file.
  t.is(offer.packet.file, '');

  const result = handleAuthoritative(fixture('udhcpc-03-to-server'), context(), node);
  const ack = replyOf(result);
  t.is(getOption(ack.packet.options, Option.messageType), DhcpMessageType.ACK);
  t.is(ack.packet.yiaddr, '10.67.0.148');
  t.deepEqual(result.lease, { op: 'bind', mac: '52:54:00:12:34:56', ip: '10.67.0.148', nodeUid: 'u1', leaseSeconds: 7200 });
});

test('authoritative: a REQUEST for another address is NAKed; one for another server is ignored', (t) => {
  const request = fixture('udhcpc-03-to-server'); // asks for 10.67.0.148 from 10.67.0.1
  const nak = handleAuthoritative(request, context(), binding('10.67.0.20'));
  t.is(getOption(replyOf(nak).packet.options, Option.messageType), DhcpMessageType.NAK);
  t.is(replyOf(nak).packet.yiaddr, '0.0.0.0');
  t.is(nak.lease, undefined);
  t.like(handleAuthoritative(request, context({ serverAddress: '10.67.0.2' }), binding('10.67.0.148')), { drop: 'other-server' });
});

test('authoritative: a renewal (ciaddr, no option 50/54) is ACKed by unicast; RELEASE drops the lease', (t) => {
  const renew = fixture('udhcpc-03-to-server');
  renew.options.delete(50);
  renew.options.delete(54);
  renew.ciaddr = '10.67.0.148';
  const result = handleAuthoritative(renew, context(), binding('10.67.0.148'));
  t.like(replyOf(result), { address: '10.67.0.148', port: 68 });
  t.is(result.lease?.op, 'bind');
  const release = fixture('udhcpc-03-to-server');
  setOption(release.options, Option.messageType, DhcpMessageType.RELEASE);
  release.ciaddr = '10.67.0.148';
  t.like(handleAuthoritative(release, context(), binding('10.67.0.148')), { drop: 'released', lease: { op: 'release', mac: '52:54:00:12:34:56' } });
});

test('authoritative: iPXE gets its address, its script URL and option 60 PXEClient; unknown MACs are not answered', (t) => {
  const offer = replyOf(handleAuthoritative(fixture('qemu-ipxe-01-to-server'), context(), binding('10.67.0.149')));
  t.is(offer.packet.yiaddr, '10.67.0.149');
  t.is(getOption(offer.packet.options, Option.vendorClassId), 'PXEClient');
  t.is(offer.packet.file, 'http://10.67.0.1:8080/boot/ipxe?mac=52:54:00:12:34:57');
  t.is(offer.packet.siaddr, SERVER);
  const ovmf = replyOf(handleAuthoritative(fixture('qemu-ovmf-01-to-server'), context(), binding('10.67.0.150')));
  t.is(ovmf.packet.file, 'ipxe.efi');
  t.is(ovmf.packet.yiaddr, '10.67.0.150');
  t.like(handleAuthoritative(fixture('qemu-ipxe-01-to-server'), context(), undefined), { drop: 'unknown-node' });
});
