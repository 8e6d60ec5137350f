// DHCPv4 packet codec (RFC 2131/2132, option overload, RFC 3396 long options): pure functions
// between the UDP payload and a DhcpPacket. parseDhcp never throws, whatever the bytes: a packet it
// cannot use comes back as a reason for the server to count and log.

import {
  OPTION_END,
  OPTION_OVERLOAD,
  OPTION_PAD,
  Option,
  VALIDATED_ON_PARSE,
  bufferToIpv4,
  concatenateInto,
  encodeOption,
  writeIpv4,
  walkTlvs,
  type DhcpOptions,
} from './options.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** The one defined bit of `flags`: the client wants replies broadcast (it cannot take unicast yet). */
export const BROADCAST_FLAG = 0x8000;
export const MAGIC_COOKIE = 0x63825363;

// Fixed BOOTP layout (RFC 951/2131 §2): offsets of the fields and their sizes.
const CHADDR_OFFSET = 28;
const CHADDR_SIZE = 16;
const SNAME_OFFSET = 44;
const SNAME_SIZE = 64;
const FILE_OFFSET = 108;
const FILE_SIZE = 128;
const COOKIE_OFFSET = 236;
const OPTIONS_OFFSET = 240;
/** RFC 1542 §2.1: relay agents may drop BOOTP messages shorter than this, so replies are padded to it. */
export const BOOTP_MIN_LENGTH = 300;

// Option overload (option 52) values: which of file/sname carry options.
const OVERLOAD_FILE = 1;
const OVERLOAD_SNAME = 2;

export interface DhcpPacket {
  op: number;
  htype: number;
  hops: number;
  xid: number;
  secs: number;
  /** Raw flags; test BROADCAST_FLAG. */
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The hlen bytes of chaddr as lower-case colon hex ("aa:bb:cc:dd:ee:ff" for Ethernet); hlen is its length. */
  chaddr: string;
  /** Server host name; '' when empty or when the field carried options (overload). */
  sname: string;
  /** Boot file name; '' when empty or when the field carried options (overload). */
  file: string;
  /** Every option but PAD, END and overload (52), in order, repeated instances concatenated (RFC 3396). */
  options: DhcpOptions;
}

export type ParseResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

export function parseDhcp(buf: Buffer): ParseResult {
  try {
    return parseUnchecked(buf);
  } catch (error) {
    // Every check above is explicit; this only keeps a codec bug from taking the server down.
    return { ok: false, reason: `codec error: ${(error as Error).message}` };
  }
}

function parseUnchecked(input: Buffer): ParseResult {
  // One copy of the whole packet: option values are views into it, owned by the result.
  const buf = Buffer.from(input);
  if (buf.length < OPTIONS_OFFSET) {
    return { ok: false, reason: `packet is ${buf.length} bytes, shorter than the 240-byte header and magic cookie` };
  }
  const op = buf[0] as number;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return { ok: false, reason: `op ${op} is neither BOOTREQUEST nor BOOTREPLY` };
  const hlen = buf[2] as number;
  if (hlen > CHADDR_SIZE) return { ok: false, reason: `hlen ${hlen} exceeds the 16-byte chaddr field` };
  if (buf.readUInt32BE(COOKIE_OFFSET) !== MAGIC_COOKIE) {
    return { ok: false, reason: `no DHCP magic cookie (found 0x${buf.readUInt32BE(COOKIE_OFFSET).toString(16).padStart(8, '0')})` };
  }

  const options: DhcpOptions = new Map();
  const invalid = readOptionsInto(options, buf, OPTIONS_OFFSET, buf.length, 'options field');
  if (invalid !== undefined) return { ok: false, reason: invalid };

  // Option overload: file, then sname, carry more options (RFC 2131 §4.1 order, RFC 3396 §5).
  const overload = options.get(OPTION_OVERLOAD);
  let overloaded = 0;
  if (overload !== undefined) {
    const invalid = Option.overload.invalid(overload);
    if (invalid !== undefined) return { ok: false, reason: `option 52 (overload): ${invalid}` };
    overloaded = Option.overload.decode(overload);
    options.delete(OPTION_OVERLOAD);
    const fields: Array<[number, string, number, number]> = [
      [OVERLOAD_FILE, 'file field', FILE_OFFSET, FILE_SIZE],
      [OVERLOAD_SNAME, 'sname field', SNAME_OFFSET, SNAME_SIZE],
    ];
    for (const [bit, where, offset, size] of fields) {
      if ((overloaded & bit) === 0) continue;
      const walk = walkTlvs(buf.subarray(offset, offset + size), where);
      if (!walk.ok) return walk;
      if (walk.entries.some(([code]) => code === OPTION_OVERLOAD)) return { ok: false, reason: `${where}: option 52 outside the options field` };
      concatenateInto(options, walk.entries, false);
    }
  }

  for (const codec of VALIDATED_ON_PARSE) {
    const value = options.get(codec.code);
    const invalid = value === undefined ? undefined : codec.invalid(value);
    if (invalid !== undefined) return { ok: false, reason: `option ${codec.code} (${codec.name}): ${invalid}` };
  }

  return {
    ok: true,
    packet: {
      op,
      htype: buf[1] as number,
      hops: buf[3] as number,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: bufferToIpv4(buf.subarray(12, 16)),
      yiaddr: bufferToIpv4(buf.subarray(16, 20)),
      siaddr: bufferToIpv4(buf.subarray(20, 24)),
      giaddr: bufferToIpv4(buf.subarray(24, 28)),
      chaddr: formatHardwareAddress(buf.subarray(CHADDR_OFFSET, CHADDR_OFFSET + hlen)),
      sname: (overloaded & OVERLOAD_SNAME) !== 0 ? '' : readCString(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_SIZE)),
      file: (overloaded & OVERLOAD_FILE) !== 0 ? '' : readCString(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_SIZE)),
      options,
    },
  };
}

/**
 * The options field's TLVs into `options` (walkTlvs + concatenateInto without the intermediate
 * entries: this runs once per request). Values are views of `buf`. Returns why it is malformed.
 */
function readOptionsInto(options: DhcpOptions, buf: Buffer, start: number, end: number, where: string): string | undefined {
  let offset = start;
  while (offset < end) {
    const code = buf[offset]!;
    if (code === OPTION_PAD) {
      offset += 1;
      continue;
    }
    if (code === OPTION_END) break;
    if (offset + 1 >= end) return `${where}: option ${code} at offset ${offset - start} has no length byte`;
    const length = buf[offset + 1]!;
    const next = offset + 2 + length;
    if (next > end) return `${where}: option ${code} at offset ${offset - start} declares ${length} bytes but only ${end - offset - 2} remain`;
    const value = buf.subarray(offset + 2, next);
    const previous = options.get(code);
    options.set(code, previous === undefined ? value : Buffer.concat([previous, value]));
    offset = next;
  }
  return undefined;
}

export interface SerializeOptions {
  /**
   * Largest DHCP message the peer takes (its option 57 less IP/UDP headers; 548 for the RFC 2131
   * default of 576). Options that do not fit the options field go to an empty file, then an empty
   * sname field (option overload). Without it the options field just grows.
   */
  maxLength?: number;
}

/**
 * Encodes a packet; options longer than 255 bytes are split (RFC 3396) and the result is padded to
 * 300 bytes. Throws RangeError only for a packet no caller should build (bad address, chaddr longer
 * than 16 bytes, sname/file too long, options that do not fit maxLength).
 */
export function serializeDhcp(packet: DhcpPacket, settings: SerializeOptions = {}): Buffer {
  const room = settings.maxLength === undefined ? Infinity : settings.maxLength - OPTIONS_OFFSET;
  // Sizes first, so that the usual reply (its options fit the options field) is written into one
  // buffer without intermediate ones: this runs once per reply on the hot path.
  let encodedLength = 1; // END
  for (const [code, value] of packet.options) if (code !== OPTION_OVERLOAD) encodedLength += encodedOptionLength(value);
  const fits = encodedLength <= room;
  // allocUnsafe + fill: small buffers come from Node's pool instead of an allocation each.
  const message = Buffer.allocUnsafe(Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + (fits ? encodedLength : 0))).fill(0);
  const hlen = writeHardwareAddress(message, packet.chaddr, CHADDR_OFFSET);
  message[0] = packet.op;
  message[1] = packet.htype;
  message[2] = hlen;
  message[3] = packet.hops;
  message.writeUInt32BE(packet.xid, 4);
  message.writeUInt16BE(packet.secs, 8);
  message.writeUInt16BE(packet.flags, 10);
  writeIpv4(message, packet.ciaddr, 12);
  writeIpv4(message, packet.yiaddr, 16);
  writeIpv4(message, packet.siaddr, 20);
  writeIpv4(message, packet.giaddr, 24);
  writeCString(message, packet.sname, SNAME_OFFSET, SNAME_SIZE, 'sname');
  writeCString(message, packet.file, FILE_OFFSET, FILE_SIZE, 'file');
  message.writeUInt32BE(MAGIC_COOKIE, COOKIE_OFFSET);
  if (fits) {
    let offset = OPTIONS_OFFSET;
    for (const [code, value] of packet.options) if (code !== OPTION_OVERLOAD) offset = writeOption(message, offset, code, value); // 52 is decided here
    message[offset] = OPTION_END;
    return message;
  }
  const options = [...packet.options].filter(([code]) => code !== OPTION_OVERLOAD);
  const main = overloadInto(message, options, room, packet);
  const whole = Buffer.concat([message.subarray(0, OPTIONS_OFFSET), main]);
  return whole.length >= BOOTP_MIN_LENGTH ? whole : Buffer.concat([whole, Buffer.alloc(BOOTP_MIN_LENGTH - whole.length)]);
}

/** Bytes of an option's TLVs: one 2-byte header per instance of at most 255 bytes (RFC 3396). */
function encodedOptionLength(value: Buffer): number {
  return value.length + 2 * Math.max(1, Math.ceil(value.length / 255));
}

/** Writes an option's TLVs (split as encodeOption does) at `offset`; returns the offset after them. */
function writeOption(target: Buffer, offset: number, code: number, value: Buffer): number {
  let start = 0;
  do {
    const take = Math.min(255, value.length - start);
    target[offset] = code;
    target[offset + 1] = take;
    value.copy(target, offset + 2, start, start + take);
    offset += 2 + take;
    start += 255;
  } while (start < value.length);
  return offset;
}

const END = Buffer.from([OPTION_END]);

interface OptionArea {
  overloadBit: number;
  offset: number;
  /** Bytes for option TLVs, END excluded. */
  capacity: number;
  parts: Buffer[];
  used: number;
}

/**
 * Fills the options field (keeping 3 bytes for option 52 and 1 for END), then the file and sname
 * fields when they are empty, each ended by END; returns the options field. Values are cut at field
 * boundaries into instances the receiver's RFC 3396 concatenation (options, file, sname order)
 * joins again.
 */
function overloadInto(header: Buffer, options: Array<[number, Buffer]>, room: number, packet: DhcpPacket): Buffer {
  const tooBig = () => new RangeError(`options do not fit a ${room + OPTIONS_OFFSET}-byte message, even with overload`);
  if (room < 4) throw tooBig();
  const areas: OptionArea[] = [{ overloadBit: 0, offset: OPTIONS_OFFSET, capacity: room - 4, parts: [], used: 0 }];
  if (packet.file === '') areas.push({ overloadBit: OVERLOAD_FILE, offset: FILE_OFFSET, capacity: FILE_SIZE - 1, parts: [], used: 0 });
  if (packet.sname === '') areas.push({ overloadBit: OVERLOAD_SNAME, offset: SNAME_OFFSET, capacity: SNAME_SIZE - 1, parts: [], used: 0 });
  let index = 0;
  for (const [code, value] of options) {
    let offset = 0;
    do {
      let area = areas[index];
      // An instance needs its 2 header bytes and, unless the value is empty, at least 1 data byte.
      while (area !== undefined && area.capacity - area.used < (value.length === 0 ? 2 : 3)) area = areas[++index];
      if (area === undefined) throw tooBig();
      const take = Math.min(255, area.capacity - area.used - 2, value.length - offset);
      area.parts.push(Buffer.from([code, take]), value.subarray(offset, offset + take));
      area.used += 2 + take;
      offset += take;
    } while (offset < value.length);
  }
  let overloaded = 0;
  for (const area of areas.slice(1)) {
    if (area.parts.length === 0) continue;
    overloaded |= area.overloadBit;
    Buffer.concat([...area.parts, END]).copy(header, area.offset);
  }
  const main = areas[0]!.parts;
  if (overloaded !== 0) main.push(...encodeOption(OPTION_OVERLOAD, Option.overload.encode(overloaded)));
  return Buffer.concat([...main, END]);
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

export function formatHardwareAddress(bytes: Buffer): string {
  let text = '';
  for (let i = 0; i < bytes.length; i++) text += i === 0 ? HEX_BYTES[bytes[i]!] : `:${HEX_BYTES[bytes[i]!]}`;
  return text;
}

export function parseHardwareAddress(address: string): Buffer {
  const bytes = Buffer.alloc(CHADDR_SIZE);
  return bytes.subarray(0, writeHardwareAddress(bytes, address, 0));
}

/** Writes colon-hex `address` (at most 16 bytes) at `offset`; returns its length in bytes. */
function writeHardwareAddress(target: Buffer, address: string, offset: number): number {
  if (address === '') return 0;
  const length = (address.length + 1) / 3;
  const bad = () => new RangeError(`not a colon-hex hardware address of at most 16 bytes: ${JSON.stringify(address)}`);
  if (!Number.isInteger(length) || length > CHADDR_SIZE) throw bad();
  for (let i = 0; i < length; i++) {
    const high = hexDigit(address.charCodeAt(i * 3));
    const low = hexDigit(address.charCodeAt(i * 3 + 1));
    if (high < 0 || low < 0 || (i + 1 < length && address.charCodeAt(i * 3 + 2) !== 0x3a)) throw bad();
    target[offset + i] = (high << 4) | low;
  }
  return length;
}

function hexDigit(char: number): number {
  if (char >= 0x30 && char <= 0x39) return char - 0x30;
  const lower = char | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function readCString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('latin1', 0, end === -1 ? field.length : end);
}

function writeCString(target: Buffer, text: string, offset: number, size: number, name: string): void {
  if (text === '') return;
  // Shorter text is NUL-terminated by the zeroed field.
  const length = Buffer.byteLength(text, 'latin1');
  if (length > size) throw new RangeError(`${name} is ${length} bytes; the field holds ${size}`);
  target.write(text, offset, 'latin1');
}
