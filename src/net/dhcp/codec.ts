// DHCPv4 packet codec (RFC 2131/2132, option overload, RFC 3396 long options): pure functions
// between the UDP payload and a DhcpPacket. parseDhcp never throws, whatever the bytes: a packet it
// cannot use comes back as a reason for the server to count and log.

import {
  OPTION_END,
  OPTION_OVERLOAD,
  Option,
  VALIDATED_ON_PARSE,
  bufferToIpv4,
  concatenateInto,
  encodeOption,
  ipv4ToBuffer,
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

function parseUnchecked(buf: Buffer): ParseResult {
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

  const main = walkTlvs(buf.subarray(OPTIONS_OFFSET), 'options field');
  if (!main.ok) return main;
  const options: DhcpOptions = new Map();
  concatenateInto(options, main.entries);

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
      concatenateInto(options, walk.entries);
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
  const chaddr = parseHardwareAddress(packet.chaddr);
  const header = Buffer.alloc(OPTIONS_OFFSET);
  header[0] = packet.op;
  header[1] = packet.htype;
  header[2] = chaddr.length;
  header[3] = packet.hops;
  header.writeUInt32BE(packet.xid, 4);
  header.writeUInt16BE(packet.secs, 8);
  header.writeUInt16BE(packet.flags, 10);
  ipv4ToBuffer(packet.ciaddr).copy(header, 12);
  ipv4ToBuffer(packet.yiaddr).copy(header, 16);
  ipv4ToBuffer(packet.siaddr).copy(header, 20);
  ipv4ToBuffer(packet.giaddr).copy(header, 24);
  chaddr.copy(header, CHADDR_OFFSET);
  writeCString(header, packet.sname, SNAME_OFFSET, SNAME_SIZE, 'sname');
  writeCString(header, packet.file, FILE_OFFSET, FILE_SIZE, 'file');
  header.writeUInt32BE(MAGIC_COOKIE, COOKIE_OFFSET);

  const room = settings.maxLength === undefined ? Infinity : settings.maxLength - OPTIONS_OFFSET;
  const options = [...packet.options].filter(([code]) => code !== OPTION_OVERLOAD); // 52 is decided here
  const encoded = options.flatMap(([code, value]) => encodeOption(code, value));
  const encodedLength = encoded.reduce((sum, chunk) => sum + chunk.length, END.length);
  const main = encodedLength <= room ? Buffer.concat([...encoded, END]) : overloadInto(header, options, room, packet);
  const message = Buffer.concat([header, main]);
  return message.length >= BOOTP_MIN_LENGTH ? message : Buffer.concat([message, Buffer.alloc(BOOTP_MIN_LENGTH - message.length)]);
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

export function formatHardwareAddress(bytes: Buffer): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
}

export function parseHardwareAddress(address: string): Buffer {
  if (address === '') return Buffer.alloc(0);
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,15}$/.test(address)) {
    throw new RangeError(`not a colon-hex hardware address of at most 16 bytes: ${JSON.stringify(address)}`);
  }
  return Buffer.from(address.replaceAll(':', ''), 'hex');
}

function readCString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('latin1', 0, end === -1 ? field.length : end);
}

function writeCString(target: Buffer, text: string, offset: number, size: number, name: string): void {
  const bytes = Buffer.from(text, 'latin1');
  // Shorter text is NUL-terminated by the zeroed field.
  if (bytes.length > size) throw new RangeError(`${name} is ${bytes.length} bytes; the field holds ${size}`);
  bytes.copy(target, offset);
}
