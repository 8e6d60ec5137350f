import test from 'ava';
import { isDeepStrictEqual } from 'node:util';
import {
  ErrorCode,
  Opcode,
  parseTftp,
  serializeAck,
  serializeData,
  serializeError,
  serializeOack,
  serializeRequest,
  serializeTftp,
  type TftpPacket,
} from '../src/net/tftp/packets.js';
import { classifyRequest } from '../src/net/tftp/request.js';
import { seededRandom } from './helpers/prng.js';

function parsed(buf: Buffer): TftpPacket {
  const result = parseTftp(buf);
  if (!result.ok) throw new Error(`expected a packet, got: ${result.reason}`);
  return result.packet;
}

function reason(buf: Buffer): string {
  const result = parseTftp(buf);
  if (result.ok) throw new Error(`expected a rejection, got ${JSON.stringify(result.packet)}`);
  return result.reason;
}

const bytes = (text: string) => Buffer.from(text, 'latin1');
const opcode = (op: number) => Buffer.from([0, op]);

test('RRQ as curl sends it: filename, mode, options in order', (t) => {
  const buf = Buffer.concat([opcode(1), bytes('pxelinux.0\0octet\0tsize\x000\0blksize\x001468\0')]);
  t.deepEqual(parsed(buf), {
    type: 'rrq',
    filename: 'pxelinux.0',
    mode: 'octet',
    options: [
      { name: 'tsize', value: '0' },
      { name: 'blksize', value: '1468' },
    ],
  });
});

test('request mode is lower-cased, option names keep their spelling, first of a repeated option wins', (t) => {
  const buf = Buffer.concat([opcode(1), bytes('f\0OCTET\0BlkSize\x001024\0blksize\x00512\0')]);
  const packet = parsed(buf);
  t.like(packet, { type: 'rrq', mode: 'octet', options: [{ name: 'BlkSize', value: '1024' }] });
});

test('request tail: padding zeros, a dangling name and an unterminated string are dropped', (t) => {
  t.deepEqual(parsed(Buffer.concat([opcode(1), bytes('f\0octet\0tsize\x000\0\0\0\0')])), {
    type: 'rrq',
    filename: 'f',
    mode: 'octet',
    options: [{ name: 'tsize', value: '0' }],
  });
  t.like(parsed(Buffer.concat([opcode(1), bytes('f\0octet\0tsize\0')])), { options: [] });
  t.like(parsed(Buffer.concat([opcode(1), bytes('f\0octet\0tsize\x000')])), { options: [] });
});

test('filename bytes survive as latin1', (t) => {
  const name = Buffer.from([0x63, 0xc3, 0xa9, 0xff]);
  const packet = parsed(Buffer.concat([opcode(1), name, bytes('\0octet\0')]));
  t.true(packet.type === 'rrq' && Buffer.from(packet.filename, 'latin1').equals(name));
});

test('malformed requests are rejected with a reason', (t) => {
  t.regex(reason(Buffer.from([0])), /shorter than an opcode/);
  t.regex(reason(Buffer.concat([opcode(1), bytes('file')])), /filename is not NUL-terminated/);
  t.regex(reason(Buffer.concat([opcode(2), bytes('file\0octet')])), /WRQ mode is not NUL-terminated/);
  t.regex(reason(Buffer.concat([opcode(1), bytes('file\0\0')])), /empty mode/);
  t.regex(reason(Buffer.from([0, 7, 0, 1])), /unknown opcode 7/);
  t.regex(reason(Buffer.from([0, 3, 0])), /DATA is 3 bytes/);
  t.regex(reason(Buffer.from([0, 4, 0])), /ACK is 3 bytes/);
  t.regex(reason(Buffer.from([0, 5, 0])), /ERROR is 3 bytes/);
});

test('DATA, ACK, ERROR and OACK parse', (t) => {
  t.deepEqual(parsed(Buffer.from([0, 3, 0xff, 0xff, 1, 2, 3])), { type: 'data', block: 65535, payload: Buffer.from([1, 2, 3]) });
  t.deepEqual(parsed(Buffer.from([0, 3, 0, 0])), { type: 'data', block: 0, payload: Buffer.alloc(0) });
  t.deepEqual(parsed(Buffer.from([0, 4, 0x12, 0x34])), { type: 'ack', block: 0x1234 });
  // Trailing bytes after an ACK's block number do not matter.
  t.deepEqual(parsed(Buffer.from([0, 4, 0, 1, 0, 0])), { type: 'ack', block: 1 });
  t.deepEqual(parsed(Buffer.concat([Buffer.from([0, 5, 0, 8]), bytes('tsize probe\0')])), { type: 'error', code: 8, message: 'tsize probe' });
  // EDK2-style ERROR without the terminating NUL keeps its message.
  t.deepEqual(parsed(Buffer.concat([Buffer.from([0, 5, 0, 0]), bytes('aborted')])), { type: 'error', code: 0, message: 'aborted' });
  t.deepEqual(parsed(Buffer.concat([opcode(6), bytes('blksize\x001468\0tsize\x0012345\0')])), {
    type: 'oack',
    options: [
      { name: 'blksize', value: '1468' },
      { name: 'tsize', value: '12345' },
    ],
  });
});

test('serializers write the RFC layout', (t) => {
  t.deepEqual(serializeAck(0xabcd), Buffer.from([0, 4, 0xab, 0xcd]));
  t.deepEqual(serializeData(2, Buffer.from([9, 8])), Buffer.from([0, 3, 0, 2, 9, 8]));
  t.deepEqual(serializeError(ErrorCode.fileNotFound, 'nope'), Buffer.concat([Buffer.from([0, 5, 0, 1]), bytes('nope\0')]));
  t.deepEqual(serializeOack([{ name: 'tsize', value: '7' }]), Buffer.concat([opcode(6), bytes('tsize\x007\0')]));
  t.deepEqual(serializeRequest({ type: 'wrq', filename: 'a', mode: 'octet', options: [] }), Buffer.concat([opcode(2), bytes('a\0octet\0')]));
  t.throws(() => serializeData(65536, Buffer.alloc(0)), { instanceOf: RangeError });
  t.throws(() => serializeAck(-1), { instanceOf: RangeError });
  t.throws(() => serializeError(0, 'a\0b'), { instanceOf: RangeError });
});

test('every packet type round-trips', (t) => {
  const packets: TftpPacket[] = [
    { type: 'rrq', filename: 'boot/grubx64.efi', mode: 'octet', options: [{ name: 'windowsize', value: '16' }] },
    { type: 'wrq', filename: 'x', mode: 'netascii', options: [] },
    { type: 'data', block: 65535, payload: Buffer.alloc(512, 7) },
    { type: 'ack', block: 0 },
    { type: 'error', code: 5, message: 'unknown transfer ID' },
    { type: 'oack', options: [{ name: 'timeout', value: '3' }] },
  ];
  for (const packet of packets) t.deepEqual(parsed(serializeTftp(packet)), packet);
});

/** What in `packet` disagrees with the bytes it was parsed from: its type and the fields at fixed offsets. */
function fieldMismatches(buf: Buffer, packet: TftpPacket): string[] {
  const opcode = buf.readUInt16BE(0);
  if (Opcode[packet.type] !== opcode) return [`opcode ${opcode} parsed as ${packet.type.toUpperCase()}`];
  switch (packet.type) {
    case 'rrq':
    case 'wrq':
      return Buffer.from(packet.filename, 'latin1').equals(buf.subarray(2, buf.indexOf(0, 2))) ? [] : [`filename ${JSON.stringify(packet.filename)}`];
    case 'data':
      return packet.block === buf.readUInt16BE(2) && packet.payload.equals(buf.subarray(4)) ? [] : [`block ${packet.block} or payload of ${packet.payload.length} bytes`];
    case 'ack':
      return packet.block === buf.readUInt16BE(2) ? [] : [`block ${packet.block}`];
    case 'error':
      return packet.code === buf.readUInt16BE(2) ? [] : [`code ${packet.code}`];
    case 'oack':
      return [];
  }
}

test('fuzz: random and mutated datagrams, parsed in place between other bytes: refused with a reason, or the packet their bytes say, which re-serializes and parses the same', (t) => {
  const random = seededRandom(1350);
  const randomBytes = (length: number) => Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
  const seeds = [
    serializeRequest({ type: 'rrq', filename: 'ipxe.efi', mode: 'octet', options: [{ name: 'blksize', value: '1428' }, { name: 'tsize', value: '0' }] }),
    serializeData(1, Buffer.alloc(16, 1)),
    serializeAck(3),
    serializeError(8, 'refused'),
    serializeOack([{ name: 'windowsize', value: '4' }]),
  ];
  const problems: string[] = [];
  let parsedCount = 0;
  for (let i = 0; i < 20000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = randomBytes(Math.floor(random() * 40));
      // Favour small opcodes so every branch of the parser is reached.
      if (buf.length >= 2 && random() < 0.8) buf.writeUInt16BE(Math.floor(random() * 8), 0);
    } else {
      buf = Buffer.from(seeds[i % seeds.length] as Buffer);
      const mutations = 1 + Math.floor(random() * 4);
      for (let m = 0; m < mutations && buf.length > 0; m++) {
        const at = Math.floor(random() * buf.length);
        const choice = random();
        if (choice < 0.5) buf[at] = Math.floor(random() * 256);
        else if (choice < 0.75) buf = buf.subarray(0, at);
        else buf[at] = 0;
      }
    }
    // The server parses each datagram where it was received, in a slab between other datagrams:
    // nothing outside the datagram's own bytes may change the result.
    const before = randomBytes(Math.floor(random() * 8));
    const inPlace = Buffer.concat([before, buf, randomBytes(1 + Math.floor(random() * 8))]).subarray(before.length, before.length + buf.length);
    const input = `input ${i} ${buf.toString('hex')}`;
    const result = parseTftp(inPlace);
    if (!isDeepStrictEqual(result, parseTftp(Buffer.from(buf)))) problems.push(`${input}: parsed differently in place`);
    if (!result.ok) {
      // parseTftp turns an exception into a 'codec error' reason: that is a parser bug, not a reason.
      if (result.reason === '' || result.reason.startsWith('codec error')) problems.push(`${input}: refused with reason "${result.reason}"`);
    } else {
      parsedCount++;
      problems.push(...fieldMismatches(buf, result.packet).map((mismatch) => `${input}: ${mismatch}`));
      const again = parseTftp(serializeTftp(result.packet));
      if (!again.ok) problems.push(`${input}: re-serialized packet does not parse: ${again.reason}`);
      else if (!isDeepStrictEqual(again.packet, result.packet)) problems.push(`${input}: re-serialized packet parses as ${JSON.stringify(again.packet)}`);
    }
    // On the server port: a read only for an RRQ in a mode the server speaks, silence for an ERROR,
    // and for everything else an ERROR packet that carries the decision's code and reason.
    const decision = classifyRequest(inPlace);
    const packet = result.ok ? result.packet : undefined;
    const kind = packet?.type === 'error' ? 'ignore' : packet?.type === 'rrq' && (packet.mode === 'octet' || packet.mode === 'netascii') ? 'read' : 'refuse';
    if (decision.kind !== kind) problems.push(`${input}: ${decision.kind} on the server port, not ${kind}`);
    if (decision.kind === 'refuse') {
      const reply = parseTftp(decision.reply);
      if (!reply.ok || !isDeepStrictEqual(reply.packet, { type: 'error', code: decision.code, message: decision.reason })) problems.push(`${input}: refused with reply ${decision.reply.toString('hex')}`);
    }
  }
  t.is(problems.length, 0, problems.slice(0, 10).join('\n'));
  t.true(parsedCount > 1000, `only ${parsedCount} fuzz inputs parsed, the fuzzer reaches too little`);
});

test('server port: RRQ starts a read, WRQ is refused with error 2', (t) => {
  t.deepEqual(classifyRequest(serializeRequest({ type: 'rrq', filename: 'f', mode: 'NetASCII', options: [] })), {
    kind: 'read',
    request: { filename: 'f', mode: 'netascii', options: [] },
  });
  const wrq = classifyRequest(serializeRequest({ type: 'wrq', filename: 'f', mode: 'octet', options: [] }));
  t.like(wrq, { kind: 'refuse', code: ErrorCode.accessViolation });
  t.like(wrq.kind === 'refuse' ? parsed(wrq.reply) : undefined, { type: 'error', code: 2 });
});

test('server port: malformed packets, DATA/ACK/OACK and mail mode get error 4; ERROR is never answered', (t) => {
  for (const buf of [
    Buffer.from([0, 1, 0x66]),
    Buffer.from([0, 9]),
    serializeAck(1),
    serializeData(1, Buffer.alloc(1)),
    serializeOack([]),
    serializeRequest({ type: 'rrq', filename: 'f', mode: 'mail', options: [] }),
    serializeRequest({ type: 'rrq', filename: 'f', mode: 'binary', options: [] }),
  ]) {
    const decision = classifyRequest(buf);
    t.like(decision, { kind: 'refuse', code: ErrorCode.illegalOperation });
    if (decision.kind === 'refuse') t.like(parsed(decision.reply), { type: 'error', code: 4, message: decision.reason });
  }
  t.like(classifyRequest(serializeError(0, 'x')), { kind: 'ignore' });
});

// Requests as real clients sent them to a UDP listener on 127.0.0.1 (captured once, hex below):
// `curl -o /dev/null --max-time 3 tftp://127.0.0.1:PORT/boot/ipxe.efi` (curl 7.88.1),
// the same with `--tftp-blksize 1468`, and `busybox tftp -g -b 1468 -r grubx64.efi 127.0.0.1 PORT` (1.35).
const capturedRequests: Array<[string, string, TftpPacket]> = [
  [
    'curl',
    '0001626f6f742f697078652e656669006f63746574007473697a65003000626c6b73697a65003531320074696d656f7574003100',
    { type: 'rrq', filename: 'boot/ipxe.efi', mode: 'octet', options: [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '512' }, { name: 'timeout', value: '1' }] },
  ],
  [
    'curl --tftp-blksize 1468',
    '00017078656c696e75782e30006f63746574007473697a65003000626c6b73697a6500313436380074696d656f7574003100',
    { type: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1468' }, { name: 'timeout', value: '1' }] },
  ],
  [
    'busybox tftp -b 1468',
    '0001677275627836342e656669006f6374657400626c6b73697a650031343638007473697a65003000',
    { type: 'rrq', filename: 'grubx64.efi', mode: 'octet', options: [{ name: 'blksize', value: '1468' }, { name: 'tsize', value: '0' }] },
  ],
];

test('requests captured from curl and busybox parse, start a read and re-serialize byte for byte', (t) => {
  for (const [client, hex, expected] of capturedRequests) {
    const buf = Buffer.from(hex, 'hex');
    t.deepEqual(parsed(buf), expected, client);
    t.like(classifyRequest(buf), { kind: 'read', request: { mode: 'octet' } }, client);
    t.deepEqual(serializeTftp(expected), buf, client);
  }
});
