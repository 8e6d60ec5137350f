import test from 'ava';
import { seededRandom } from './helpers/prng.js';
import { readFileSync, readdirSync } from 'node:fs';
import {
  BOOTREPLY,
  BOOTREQUEST,
  BROADCAST_FLAG,
  formatHardwareAddress,
  parseDhcp,
  parseHardwareAddress,
  serializeDhcp,
  type DhcpPacket,
} from '../src/net/dhcp/codec.js';
import {
  DhcpMessageType,
  IpxeSubOption,
  Option,
  PxeDiscoveryControl,
  PxeSubOption,
  decodeSubOptions,
  encodeSubOptions,
  getOption,
  ipv4ToBuffer,
  setOption,
  type DhcpOptions,
} from '../src/net/dhcp/options.js';

const fixtureDir = new URL('./fixtures/dhcp/', import.meta.url);
const fixtureNames = readdirSync(fixtureDir).filter((name) => name.endsWith('.bin')).sort();
const fixture = (name: string) => readFileSync(new URL(name, fixtureDir));

function parsed(buf: Buffer): DhcpPacket {
  const result = parseDhcp(buf);
  if (!result.ok) throw new Error(`expected a packet, got: ${result.reason}`);
  return result.packet;
}

function reason(buf: Buffer): string {
  const result = parseDhcp(buf);
  if (result.ok) throw new Error('expected a rejection, got a packet');
  return result.reason;
}

/** The fixed 240 bytes of a DHCPDISCOVER from 52:54:00:00:00:01 followed by `options` (no END added). */
function rawPacket(options: number[], fields: { sname?: number[]; file?: number[] } = {}): Buffer {
  const buf = Buffer.alloc(240 + options.length);
  buf[0] = BOOTREQUEST;
  buf[1] = 1;
  buf[2] = 6;
  buf.writeUInt32BE(0x01020304, 4);
  Buffer.from([0x52, 0x54, 0, 0, 0, 1]).copy(buf, 28);
  Buffer.from(fields.sname ?? []).copy(buf, 44);
  Buffer.from(fields.file ?? []).copy(buf, 108);
  buf.writeUInt32BE(0x63825363, 236);
  Buffer.from(options).copy(buf, 240);
  return buf;
}

function basePacket(options: DhcpOptions): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: 1,
    hops: 0,
    xid: 0xdeadbeef,
    secs: 0,
    flags: BROADCAST_FLAG,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '10.67.0.1',
    giaddr: '0.0.0.0',
    chaddr: '52:54:00:12:34:57',
    sname: '',
    file: '',
    options,
  };
}

test('fixtures are present for every real client', (t) => {
  for (const client of ['udhcpc', 'perfdhcp', 'qemu-ipxe', 'qemu-ovmf']) {
    t.true(fixtureNames.some((name) => name.startsWith(`${client}-`)), client);
  }
});

for (const name of fixtureNames) {
  test(`fixture ${name}: parse → serialize reproduces the wire bytes, parse again is equal`, (t) => {
    const wire = fixture(name);
    const packet = parsed(wire);
    const again = serializeDhcp(packet);
    // perfdhcp sends 262-byte packets; everything we send is padded to the 300-byte BOOTP minimum.
    const expected = wire.length >= 300 ? wire : Buffer.concat([wire, Buffer.alloc(300 - wire.length)]);
    t.true(again.equals(expected), `${again.toString('hex')}\n!=\n${expected.toString('hex')}`);
    t.deepEqual(parsed(again), packet);
  });
}

test('udhcpc DISCOVER and REQUEST: what `udhcpc -V keel-test -x hostname:bbox` on 52:54:00:12:34:56 sent', (t) => {
  const discover = parsed(fixture('udhcpc-01-to-server.bin'));
  t.is(discover.op, BOOTREQUEST);
  t.is(discover.chaddr, '52:54:00:12:34:56');
  t.is(getOption(discover.options, Option.messageType), DhcpMessageType.DISCOVER);
  t.is(getOption(discover.options, Option.vendorClassId), 'keel-test');
  t.is(getOption(discover.options, Option.hostname), 'bbox');
  // RFC 2132 client id: hardware type 1 then the MAC.
  t.deepEqual(getOption(discover.options, Option.clientId), Buffer.from('01525400123456', 'hex'));

  const offer = parsed(fixture('udhcpc-02-to-client.bin'));
  const request = parsed(fixture('udhcpc-03-to-server.bin'));
  t.is(getOption(request.options, Option.messageType), DhcpMessageType.REQUEST);
  t.is(request.xid, discover.xid);
  // The REQUEST selects what busybox udhcpd offered.
  t.is(getOption(request.options, Option.requestedIp), offer.yiaddr);
  t.is(getOption(request.options, Option.serverId), '10.67.0.1');
});

test('busybox udhcpd OFFER/ACK: server fields from its config', (t) => {
  const offer = parsed(fixture('udhcpc-02-to-client.bin'));
  t.is(offer.op, BOOTREPLY);
  t.is(getOption(offer.options, Option.messageType), DhcpMessageType.OFFER);
  t.is(offer.siaddr, '10.67.0.1');
  t.is(offer.sname, 'keel');
  t.is(offer.file, 'undionly.kpxe');
  t.is(getOption(offer.options, Option.subnetMask), '255.255.255.0');
  t.deepEqual(getOption(offer.options, Option.routers), ['10.67.0.1']);
  t.is(getOption(offer.options, Option.leaseTime), 3600);
  t.regex(offer.yiaddr, /^10\.67\.0\.(1[0-4]\d|150)$/);
  t.is(getOption(parsed(fixture('udhcpc-04-to-client.bin')).options, Option.messageType), DhcpMessageType.ACK);
});

test('perfdhcp DISCOVER: relayed (giaddr, hops), short unpadded packet, reply sent back to the relay', (t) => {
  const discover = parsed(fixture('perfdhcp-01-to-server.bin'));
  t.is(fixture('perfdhcp-01-to-server.bin').length, 262);
  t.is(getOption(discover.options, Option.messageType), DhcpMessageType.DISCOVER);
  t.is(discover.giaddr, '10.67.0.2');
  t.is(discover.hops, 1);
  // perfdhcp simulates clients from its base MAC, one per exchange (-R 2).
  t.not(discover.chaddr, parsed(fixture('perfdhcp-02-to-server.bin')).chaddr);
  const offer = parsed(fixture('perfdhcp-03-to-relay.bin'));
  t.is(getOption(offer.options, Option.messageType), DhcpMessageType.OFFER);
  t.is(offer.giaddr, '10.67.0.2');
  t.is(offer.chaddr, discover.chaddr);
});

/** SMBIOS stores the first three UUID fields little-endian; PXE clients put those bytes in option 97. */
function smbiosGuid(uuid: string): Buffer {
  const b = Buffer.from(uuid.replaceAll('-', ''), 'hex');
  return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
}

test('QEMU iPXE ROM DISCOVER/REQUEST: PXE identity, user class "iPXE", option 175 features', (t) => {
  for (const name of ['qemu-ipxe-01-to-server.bin', 'qemu-ipxe-04-to-server.bin']) {
    const packet = parsed(fixture(name));
    t.is(packet.chaddr, '52:54:00:12:34:57');
    t.deepEqual(getOption(packet.options, Option.clientArch), [0]); // x86 BIOS
    t.deepEqual(getOption(packet.options, Option.clientNdi), { type: 1, major: 2, minor: 1 });
    t.true(getOption(packet.options, Option.vendorClassId)?.startsWith('PXEClient:Arch:00000:UNDI:'));
    t.deepEqual(getOption(packet.options, Option.userClass), ['iPXE']); // plain string, not RFC 3004
    t.deepEqual(getOption(packet.options, Option.clientUuid), { type: 0, guid: smbiosGuid('12345678-9abc-def0-1234-56789abcdef0') });
    const ipxe = getOption(packet.options, Option.ipxeEncapsulated);
    if (ipxe === undefined) throw new Error('no option 175');
    // Bus id: PCI (1), virtio-net vendor 1af4 device 1000.
    t.deepEqual(ipxe.get(IpxeSubOption.BUS_ID), Buffer.from('011af41000', 'hex'));
    t.true(ipxe.has(IpxeSubOption.FEATURE_HTTP));
    t.true(ipxe.has(IpxeSubOption.FEATURE_PXE_EXT));
    t.true(getOption(packet.options, Option.parameterRequestList)?.includes(175));
  }
  const request = parsed(fixture('qemu-ipxe-04-to-server.bin'));
  t.is(getOption(request.options, Option.messageType), DhcpMessageType.REQUEST);
  t.is(getOption(request.options, Option.requestedIp), parsed(fixture('qemu-ipxe-03-to-client.bin')).yiaddr);
});

test('QEMU OVMF UEFI PXE DISCOVER/REQUEST: arch 7, broadcast flag, UUID, no user class', (t) => {
  for (const name of ['qemu-ovmf-01-to-server.bin', 'qemu-ovmf-03-to-server.bin']) {
    const packet = parsed(fixture(name));
    t.is(packet.chaddr, '52:54:00:12:34:58');
    t.is(packet.flags & BROADCAST_FLAG, BROADCAST_FLAG);
    t.deepEqual(getOption(packet.options, Option.clientArch), [7]); // x64 UEFI
    t.true(getOption(packet.options, Option.vendorClassId)?.startsWith('PXEClient:Arch:00007:UNDI:'));
    t.is(getOption(packet.options, Option.userClass), undefined);
    t.deepEqual(getOption(packet.options, Option.clientUuid), { type: 0, guid: smbiosGuid('12345678-9abc-def0-1234-56789abcdef1') });
  }
  t.is(getOption(parsed(fixture('qemu-ovmf-01-to-server.bin')).options, Option.messageType), DhcpMessageType.DISCOVER);
  t.is(getOption(parsed(fixture('qemu-ovmf-03-to-server.bin')).options, Option.messageType), DhcpMessageType.REQUEST);
});

test('option 97 echoed from a request into a reply is the same bytes', (t) => {
  const request = parsed(fixture('qemu-ovmf-01-to-server.bin'));
  const reply = basePacket(new Map());
  const uuid = getOption(request.options, Option.clientUuid);
  if (uuid === undefined) throw new Error('no option 97');
  setOption(reply.options, Option.clientUuid, uuid);
  t.deepEqual(parsed(serializeDhcp(reply)).options.get(97), request.options.get(97));
});

test('proxy OFFER with PXE_DISCOVERY_CONTROL serializes to the exact bytes', (t) => {
  const options: DhcpOptions = new Map();
  setOption(options, Option.messageType, DhcpMessageType.OFFER);
  setOption(options, Option.serverId, '10.67.0.1');
  setOption(options, Option.vendorClassId, 'PXEClient');
  setOption(options, Option.vendorSpecific, new Map([[PxeSubOption.DISCOVERY_CONTROL, Buffer.from([PxeDiscoveryControl.USE_BOOTFILE])]]));
  const packet = { ...basePacket(options), file: 'ipxe.efi' };
  const wire = serializeDhcp(packet);

  const expected = Buffer.alloc(300);
  Buffer.from('02010600deadbeef00008000', 'hex').copy(expected, 0);
  Buffer.from([10, 67, 0, 1]).copy(expected, 20); // siaddr
  Buffer.from('525400123457', 'hex').copy(expected, 28);
  Buffer.from('ipxe.efi', 'latin1').copy(expected, 108);
  Buffer.from(
    '63825363' + '350102' + '36040a430001' + '3c09' + Buffer.from('PXEClient').toString('hex') + '2b04060108ff' + 'ff',
    'hex',
  ).copy(expected, 236);
  t.is(wire.toString('hex'), expected.toString('hex'));
  t.deepEqual(options.get(43), Buffer.from('060108ff', 'hex'));
});

test('PAD anywhere is skipped, bytes after END are ignored, missing END is tolerated', (t) => {
  // The npm `dhcp` package lost option 53 when a PAD came before it.
  const packet = parsed(rawPacket([0, 0, 53, 1, 3, 0, 61, 2, 1, 2, 0, 255, 53, 1, 7, 0xab]));
  t.is(getOption(packet.options, Option.messageType), DhcpMessageType.REQUEST);
  t.deepEqual([...packet.options.keys()], [53, 61]);
  t.is(getOption(parsed(rawPacket([53, 1, 1])).options, Option.messageType), DhcpMessageType.DISCOVER);
  t.is(parsed(rawPacket([])).options.size, 0);
});

test('RFC 3396: repeated instances are concatenated in order on parse', (t) => {
  const packet = parsed(rawPacket([43, 2, 6, 1, 53, 1, 1, 43, 2, 8, 255, 255]));
  t.deepEqual(packet.options.get(43), Buffer.from([6, 1, 8, 255]));
  t.deepEqual([...packet.options.keys()], [43, 53]);
  t.deepEqual(decodeSubOptions(packet.options.get(43)!), new Map([[6, Buffer.from([8])]]));
});

test('RFC 3396: an option over 255 bytes is split into consecutive instances and joined again', (t) => {
  const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i % 251));
  const options: DhcpOptions = new Map([
    [53, Buffer.from([DhcpMessageType.ACK])],
    [43, long],
    [60, Buffer.from('PXEClient')],
  ]);
  const wire = serializeDhcp(basePacket(options));
  t.deepEqual([...wire.subarray(240, 243)], [53, 1, 5]);
  t.deepEqual([...wire.subarray(243, 245)], [43, 255]);
  t.deepEqual([...wire.subarray(243 + 257, 243 + 259)], [43, 255]);
  t.deepEqual([...wire.subarray(243 + 514, 243 + 516)], [43, 90]);
  t.true(wire.subarray(243 + 516, 243 + 606).equals(long.subarray(510)));
  t.deepEqual(parsed(wire).options, options);
  // An empty value is one zero-length instance.
  t.deepEqual(parsed(serializeDhcp(basePacket(new Map([[80, Buffer.alloc(0)]])))).options, new Map([[80, Buffer.alloc(0)]]));
});

test('option overload on parse: options continue in file, then sname, and those fields read empty', (t) => {
  const wire = rawPacket([53, 1, 1, 52, 1, 3, 60, 3, 0x50, 0x58, 0x45, 255], {
    file: [60, 6, 0x43, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0, 93, 2, 0, 7, 255],
    sname: [97, 17, 0, ...Array.from({ length: 16 }, (_, i) => i), 255, 0x41],
  });
  const packet = parsed(wire);
  t.is(packet.file, '');
  t.is(packet.sname, '');
  t.is(getOption(packet.options, Option.vendorClassId), 'PXEClient');
  t.deepEqual(getOption(packet.options, Option.clientArch), [7]);
  t.is(getOption(packet.options, Option.clientUuid)?.guid.length, 16);
  t.false(packet.options.has(52));
  t.deepEqual([...packet.options.keys()], [53, 60, 93, 97]);

  // Only the file field overloaded: sname is a name again.
  const fileOnly = parsed(rawPacket([52, 1, 1, 255], { file: [67, 3, 0x61, 0x62, 0x63, 255], sname: [0x6b, 0x65, 0x65, 0x6c] }));
  t.is(fileOnly.sname, 'keel');
  t.is(getOption(fileOnly.options, Option.bootfileName), 'abc');
});

test('option overload on serialize: what does not fit maxLength moves to free file/sname fields', (t) => {
  const options: DhcpOptions = new Map([
    [53, Buffer.from([DhcpMessageType.OFFER])],
    [43, Buffer.alloc(280, 0x11)],
    [175, Buffer.alloc(100, 0x22)],
    [60, Buffer.from('PXEClient')],
  ]);
  const packet = basePacket(options);
  const wire = serializeDhcp(packet, { maxLength: 548 });
  t.true(wire.length <= 548);
  t.not(wire.indexOf(Buffer.from([52, 1])), -1);
  t.deepEqual(parsed(wire), packet);

  // A boot file name keeps the file field: only sname takes options.
  const fewer: DhcpOptions = new Map([...options].filter(([code]) => code !== 175));
  const withFile = { ...basePacket(fewer), file: 'ipxe.efi' };
  const small = serializeDhcp(withFile, { maxLength: 500 });
  t.true(small.length <= 500);
  t.deepEqual([...small.subarray(108, 116)], [...Buffer.from('ipxe.efi')]);
  t.not(small.indexOf(Buffer.from([52, 1, 2])), -1);
  t.deepEqual(parsed(small), withFile);

  // Everything fits: no overload even with a limit.
  const fits = serializeDhcp(basePacket(new Map([[53, Buffer.from([2])]])), { maxLength: 548 });
  t.is(fits.indexOf(Buffer.from([52, 1])), -1);

  t.throws(() => serializeDhcp({ ...packet, sname: 'x', file: 'y' }, { maxLength: 400 }), { instanceOf: RangeError });
});

test('typed accessors: user class in both forms, client arch list, encapsulated sub-options', (t) => {
  const options: DhcpOptions = new Map([
    [77, Buffer.from('\x03abc\x02de', 'latin1')],
    [93, Buffer.from('00070009', 'hex')],
  ]);
  t.deepEqual(getOption(options, Option.userClass), ['abc', 'de']);
  t.deepEqual(getOption(options, Option.clientArch), [7, 9]);
  setOption(options, Option.userClass, ['iPXE']);
  t.deepEqual(options.get(77), Buffer.from('\x04iPXE', 'latin1'));
  t.deepEqual(getOption(options, Option.userClass), ['iPXE']);
  t.deepEqual(getOption(new Map([[77, Buffer.from('iPXE')]]), Option.userClass), ['iPXE']);
  // A vendor's option 43 need not be TLVs: the packet parses, the typed view is absent.
  const vendor43 = parsed(rawPacket([53, 1, 1, 43, 3, 9, 9, 9, 255]));
  t.is(getOption(vendor43.options, Option.vendorSpecific), undefined);
  t.deepEqual(vendor43.options.get(43), Buffer.from([9, 9, 9]));
  t.deepEqual(encodeSubOptions(new Map([[PxeSubOption.DISCOVERY_CONTROL, Buffer.from([8])]])), Buffer.from('060108ff', 'hex'));
});

const malformed: Array<[string, Buffer, RegExp]> = [
  ['empty datagram', Buffer.alloc(0), /0 bytes, shorter than the 240-byte/],
  ['BOOTP header without cookie', rawPacket([]).subarray(0, 236), /236 bytes, shorter/],
  ['bad op', (() => { const b = rawPacket([255]); b[0] = 3; return b; })(), /op 3 is neither/],
  ['hlen over 16', (() => { const b = rawPacket([255]); b[2] = 17; return b; })(), /hlen 17 exceeds/],
  ['wrong magic cookie', (() => { const b = rawPacket([255]); b.writeUInt32BE(0x63825364, 236); return b; })(), /no DHCP magic cookie \(found 0x63825364\)/],
  ['option overflowing the packet', rawPacket([53, 1, 1, 60, 20, 0x50, 0x58]), /options field: option 60 at offset 3 declares 20 bytes but only 2 remain/],
  ['option without length byte', rawPacket([53, 1, 1, 61]), /options field: option 61 at offset 3 has no length byte/],
  ['message type of 2 bytes', rawPacket([53, 2, 1, 1, 255]), /option 53 \(message-type\): length 2, expected 1/],
  ['server id of 3 bytes', rawPacket([54, 3, 10, 0, 0, 255]), /option 54 \(server-id\): length 3, expected 4/],
  ['max message size below 576', rawPacket([57, 2, 1, 0, 255]), /option 57 \(max-message-size\): 256 is below the 576-byte minimum/],
  ['client arch of odd length', rawPacket([93, 3, 0, 7, 0, 255]), /option 93 \(client-arch\): length 3 is not a positive multiple of 2/],
  ['client NDI of 2 bytes', rawPacket([94, 2, 1, 2, 255]), /option 94 \(client-ndi\): length 2, expected 3/],
  ['client UUID without type byte', rawPacket([97, 16, ...Array(16).fill(1), 255]), /option 97 \(client-uuid\): length 16, expected 17/],
  ['client id of 1 byte', rawPacket([61, 1, 1, 255]), /option 61 \(client-id\): length 1, expected at least 2/],
  ['overload value 4', rawPacket([52, 1, 4, 255]), /option 52 \(overload\): value 4 is not 1, 2 or 3/],
  ['truncated option in the overloaded file field', rawPacket([52, 1, 1, 255], { file: [...Array(126).fill(0), 60, 5] }), /file field: option 60 at offset 126 declares 5 bytes but only 0 remain/],
  ['option 52 inside the sname field', rawPacket([52, 1, 2, 255], { sname: [52, 1, 1, 255] }), /sname field: option 52 outside the options field/],
  ['bad option in the overloaded sname field', rawPacket([52, 1, 2, 255], { sname: [53, 0, 255] }), /option 53 \(message-type\): length 0, expected 1/],
];

for (const [what, wire, expected] of malformed) {
  test(`malformed: ${what} is rejected with its reason`, (t) => {
    t.regex(reason(wire), expected);
  });
}


/** parseDhcp must answer, never throw; a packet it accepts must survive serialize → parse unchanged. */
function checkAnyBytes(t: { fail(message: string): void }, wire: Buffer, label: string): 'ok' | 'rejected' {
  let result;
  try {
    result = parseDhcp(wire);
  } catch (error) {
    t.fail(`${label}: parseDhcp threw ${String(error)}`);
    return 'rejected';
  }
  if (!result.ok) {
    if (typeof result.reason !== 'string' || result.reason.length === 0) t.fail(`${label}: rejected without a reason`);
    if (result.reason.startsWith('codec error')) t.fail(`${label}: ${result.reason}`);
    return 'rejected';
  }
  const again = parseDhcp(serializeDhcp(result.packet));
  if (!again.ok) t.fail(`${label}: re-parse failed: ${again.reason}`);
  else if (JSON.stringify([...again.packet.options]) !== JSON.stringify([...result.packet.options])) t.fail(`${label}: options changed`);
  return 'ok';
}

test('fuzz: random buffers never throw and always give a packet or a reason', (t) => {
  const random = seededRandom(0x6b65656c);
  const counts = { ok: 0, rejected: 0 };
  for (let i = 0; i < 5000; i += 1) {
    const wire = Buffer.from(Array.from({ length: Math.floor(random() * 600) }, () => Math.floor(random() * 256)));
    // Half the cases get a valid header and cookie so that the option walk is exercised, not just the length check.
    if (i % 2 === 0 && wire.length >= 240) {
      wire[0] = 1;
      wire[2] = 6;
      wire.writeUInt32BE(0x63825363, 236);
    }
    counts[checkAnyBytes(t, wire, `random case ${i}`)] += 1;
  }
  t.true(counts.rejected > 0);
  t.log(counts);
});

test('fuzz: random mutations of the real fixtures never throw; accepted ones round-trip', (t) => {
  const random = seededRandom(0x64686370);
  const counts = { ok: 0, rejected: 0 };
  const sources = fixtureNames.map(fixture);
  for (let i = 0; i < 10000; i += 1) {
    const wire = Buffer.from(sources[i % sources.length]!);
    const mutations = 1 + Math.floor(random() * 4);
    let mutated: Buffer = wire;
    for (let m = 0; m < mutations; m += 1) {
      const kind = random();
      if (kind < 0.6) {
        // Flip a byte in the options area, where length bytes and codes are.
        const at = 236 + Math.floor(random() * (mutated.length - 236));
        mutated[at] = Math.floor(random() * 256);
      } else if (kind < 0.8) {
        mutated = mutated.subarray(0, Math.floor(random() * mutated.length));
      } else {
        const at = Math.floor(random() * mutated.length);
        mutated[at] = Math.floor(random() * 256);
      }
    }
    counts[checkAnyBytes(t, mutated, `mutation case ${i}`)] += 1;
  }
  t.true(counts.ok > 0 && counts.rejected > 0);
  t.log(counts);
});

test('IPv4 and hardware addresses: converted both ways, malformed ones rejected with a RangeError', (t) => {
  t.deepEqual([...ipv4ToBuffer('10.0.255.9')], [10, 0, 255, 9]);
  t.deepEqual([...ipv4ToBuffer('0.0.0.0')], [0, 0, 0, 0]);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '1.2.3.256', '01.2.3.4', '1..3.4', '1.2.3.4.', ' 1.2.3.4', '1.2.3.a']) {
    t.throws(() => ipv4ToBuffer(bad), { instanceOf: RangeError }, bad);
  }
  t.deepEqual([...parseHardwareAddress('52:54:00:AB:cd:0f')], [0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
  t.is(formatHardwareAddress(parseHardwareAddress('52:54:00:AB:cd:0f')), '52:54:00:ab:cd:0f');
  t.is(parseHardwareAddress('').length, 0);
  for (const bad of ['5', '52:54:0', '52-54-00-12-34-56', '52:54:00:12:34:5g', `${'aa:'.repeat(16)}aa`]) {
    t.throws(() => parseHardwareAddress(bad), { instanceOf: RangeError }, bad);
  }
  const packet = parseDhcp(readFileSync(new URL('udhcpc-01-to-server.bin', fixtureDir)));
  t.true(packet.ok);
  if (packet.ok) t.throws(() => serializeDhcp({ ...packet.packet, giaddr: '10.0.0.300' }), { instanceOf: RangeError });
});
