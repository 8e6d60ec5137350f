// DHCPv4 options: the TLV walk shared by the options/file/sname fields and by encapsulated
// sub-options (43, 175), RFC 3396 concatenation and splitting, and typed codecs for the options
// a PXE/iPXE server reads or writes. Everything here is pure and works on Buffers.

/** Option code → value, in first-appearance order; a repeated option is already concatenated (RFC 3396). */
export type DhcpOptions = Map<number, Buffer>;

export const OPTION_PAD = 0;
export const OPTION_END = 255;
export const OPTION_OVERLOAD = 52;

/** One run of TLVs (a field of the packet or an encapsulated option) walked without throwing. */
export type TlvWalk = { ok: true; entries: Array<[number, Buffer]> } | { ok: false; reason: string };

/**
 * Walks `bytes` as code/length/value triples. PAD may appear anywhere and is skipped; END stops the
 * walk (bytes after it are padding). A value that runs past the end of `bytes` is an error, not a
 * silent truncation: that is how a broken packet is told apart from a short one. A run that ends
 * without END is accepted when every option in it is complete (many clients omit END in sname/file).
 */
export function walkTlvs(bytes: Buffer, where: string): TlvWalk {
  const entries: Array<[number, Buffer]> = [];
  let offset = 0;
  while (offset < bytes.length) {
    const code = bytes[offset] as number;
    if (code === OPTION_PAD) {
      offset += 1;
      continue;
    }
    if (code === OPTION_END) break;
    if (offset + 1 >= bytes.length) {
      return { ok: false, reason: `${where}: option ${code} at offset ${offset} has no length byte` };
    }
    const length = bytes[offset + 1] as number;
    const end = offset + 2 + length;
    if (end > bytes.length) {
      return {
        ok: false,
        reason: `${where}: option ${code} at offset ${offset} declares ${length} bytes but only ${bytes.length - offset - 2} remain`,
      };
    }
    entries.push([code, bytes.subarray(offset + 2, end)]);
    offset = end;
  }
  return { ok: true, entries };
}

/**
 * Adds entries to `options`, concatenating the value of a code seen before (RFC 3396 §7). Values
 * are copies unless `copy` is false (the caller owns the bytes the entries view).
 */
export function concatenateInto(options: DhcpOptions, entries: Array<[number, Buffer]>, copy = true): void {
  for (const [code, value] of entries) {
    const previous = options.get(code);
    options.set(code, previous === undefined ? (copy ? Buffer.from(value) : value) : Buffer.concat([previous, value]));
  }
}

/**
 * Encodes one option as TLVs, split into consecutive instances of at most 255 bytes each when the
 * value is longer (RFC 3396 §6). An empty value is one zero-length instance.
 */
export function encodeOption(code: number, value: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  do {
    const part = value.subarray(offset, offset + 255);
    chunks.push(Buffer.concat([Buffer.from([code, part.length]), part]));
    offset += 255;
  } while (offset < value.length);
  return chunks;
}

/** Sub-options of an encapsulated option (43 vendor-specific, 175 iPXE), in order. */
export type SubOptions = Map<number, Buffer>;

/** Parses an encapsulated option's value as TLVs; undefined when it is not a well-formed TLV run. */
export function decodeSubOptions(value: Buffer): SubOptions | undefined {
  const walk = walkTlvs(value, 'sub-options');
  if (!walk.ok) return undefined;
  const subOptions: SubOptions = new Map();
  concatenateInto(subOptions, walk.entries);
  return subOptions;
}

/** Encodes sub-options followed by END, as PXE ROMs expect for option 43. */
export function encodeSubOptions(subOptions: SubOptions): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of subOptions) parts.push(...encodeOption(code, value));
  parts.push(Buffer.from([OPTION_END]));
  return Buffer.concat(parts);
}

// ---- typed option codecs ----

/** How one option's value maps to a typed value. `invalid` says why a received value is unusable. */
export interface OptionCodec<T> {
  readonly code: number;
  readonly name: string;
  invalid(value: Buffer): string | undefined;
  decode(value: Buffer): T;
  encode(value: T): Buffer;
}

/** The typed value of an option; undefined when absent or unusable (see OptionCodec.invalid). */
export function getOption<T>(options: DhcpOptions, codec: OptionCodec<T>): T | undefined {
  const value = options.get(codec.code);
  if (value === undefined || codec.invalid(value) !== undefined) return undefined;
  return codec.decode(value);
}

/** Sets an option from its typed value; a new code goes last, an existing one keeps its place. */
export function setOption<T>(options: DhcpOptions, codec: OptionCodec<T>, value: T): void {
  options.set(codec.code, codec.encode(value));
}

export function ipv4ToBuffer(address: string): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  writeIpv4(bytes, address, 0);
  return bytes;
}

/**
 * Writes dotted-quad `address` as 4 bytes at `offset`: four decimal parts 0–255 without leading
 * zeros, else a RangeError. A loop over the characters: this runs several times per reply.
 */
export function writeIpv4(target: Buffer, address: string, offset: number): void {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= address.length; i++) {
    const char = i === address.length ? 0x2e : address.charCodeAt(i);
    if (char === 0x2e) {
      if (digits === 0 || part === 4) throw notIpv4(address);
      target[offset + part] = value;
      part += 1;
      value = 0;
      digits = 0;
    } else if (char >= 0x30 && char <= 0x39) {
      if (digits > 0 && value === 0) throw notIpv4(address); // a leading zero
      value = value * 10 + (char - 0x30);
      digits += 1;
      if (value > 255) throw notIpv4(address);
    } else {
      throw notIpv4(address);
    }
  }
  if (part !== 4) throw notIpv4(address);
}

function notIpv4(address: string): RangeError {
  return new RangeError(`not a dotted IPv4 address: ${JSON.stringify(address)}`);
}

export function bufferToIpv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** Strings are bytes on the wire; latin1 keeps every byte, and trailing NULs some ROMs add are dropped. */
function decodeString(value: Buffer): string {
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end -= 1;
  return value.toString('latin1', 0, end);
}

function lengthIs(expected: number) {
  return (value: Buffer) => (value.length === expected ? undefined : `length ${value.length}, expected ${expected}`);
}

function stringCodec(code: number, name: string): OptionCodec<string> {
  return { code, name, invalid: () => undefined, decode: decodeString, encode: (value) => Buffer.from(value, 'latin1') };
}

function ipv4Codec(code: number, name: string): OptionCodec<string> {
  return { code, name, invalid: lengthIs(4), decode: bufferToIpv4, encode: ipv4ToBuffer };
}

function ipv4ListCodec(code: number, name: string): OptionCodec<string[]> {
  return {
    code,
    name,
    invalid: (value) =>
      value.length > 0 && value.length % 4 === 0 ? undefined : `length ${value.length} is not a positive multiple of 4`,
    decode: (value) => Array.from({ length: value.length / 4 }, (_, i) => bufferToIpv4(value.subarray(i * 4, i * 4 + 4))),
    encode: (addresses) => Buffer.concat(addresses.map(ipv4ToBuffer)),
  };
}

function u32Codec(code: number, name: string): OptionCodec<number> {
  return {
    code,
    name,
    invalid: lengthIs(4),
    decode: (value) => value.readUInt32BE(0),
    encode: (seconds) => {
      const value = Buffer.alloc(4);
      value.writeUInt32BE(seconds);
      return value;
    },
  };
}

function rawCodec(code: number, name: string, minLength: number): OptionCodec<Buffer> {
  return {
    code,
    name,
    invalid: (value) => (value.length >= minLength ? undefined : `length ${value.length}, expected at least ${minLength}`),
    decode: (value) => Buffer.from(value),
    encode: (value) => Buffer.from(value),
  };
}

export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Client network device interface (option 94, RFC 4578): UNDI type and version. */
export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

/** Client machine identifier (option 97, RFC 4578): a type byte (0) and a 16-byte GUID, echoed verbatim. */
export interface ClientUuid {
  type: number;
  guid: Buffer;
}

/**
 * User class (option 77). RFC 3004 makes it a list of length-prefixed strings, but iPXE and others
 * send one plain string ("iPXE"): a value that is not an exact RFC 3004 list is that one string.
 */
function decodeUserClass(value: Buffer): string[] {
  const classes: string[] = [];
  let offset = 0;
  while (offset < value.length) {
    const length = value[offset] as number;
    if (length === 0 || offset + 1 + length > value.length) return [decodeString(value)];
    classes.push(value.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  return classes;
}

export const Option = {
  subnetMask: ipv4Codec(1, 'subnet-mask'),
  routers: ipv4ListCodec(3, 'routers'),
  dnsServers: ipv4ListCodec(6, 'dns-servers'),
  hostname: stringCodec(12, 'hostname'),
  requestedIp: ipv4Codec(50, 'requested-ip'),
  leaseTime: u32Codec(51, 'lease-time'),
  overload: {
    code: OPTION_OVERLOAD,
    name: 'overload',
    invalid: (value) =>
      value.length !== 1 ? `length ${value.length}, expected 1` : value[0]! >= 1 && value[0]! <= 3 ? undefined : `value ${value[0]} is not 1, 2 or 3`,
    decode: (value) => value[0] as number,
    encode: (fields) => Buffer.from([fields]),
  } satisfies OptionCodec<number>,
  messageType: {
    code: 53,
    name: 'message-type',
    invalid: lengthIs(1),
    decode: (value) => value[0] as number,
    encode: (type) => Buffer.from([type]),
  } satisfies OptionCodec<number>,
  serverId: ipv4Codec(54, 'server-id'),
  parameterRequestList: {
    code: 55,
    name: 'parameter-request-list',
    invalid: () => undefined,
    decode: (value) => [...value],
    encode: (codes) => Buffer.from(codes),
  } satisfies OptionCodec<number[]>,
  maxMessageSize: {
    code: 57,
    name: 'max-message-size',
    invalid: (value) =>
      value.length !== 2 ? `length ${value.length}, expected 2` : value.readUInt16BE(0) >= 576 ? undefined : `${value.readUInt16BE(0)} is below the 576-byte minimum`,
    decode: (value) => value.readUInt16BE(0),
    encode: (size) => {
      const value = Buffer.alloc(2);
      value.writeUInt16BE(size);
      return value;
    },
  } satisfies OptionCodec<number>,
  vendorClassId: stringCodec(60, 'vendor-class-id'),
  clientId: rawCodec(61, 'client-id', 2),
  tftpServerName: stringCodec(66, 'tftp-server-name'),
  bootfileName: stringCodec(67, 'bootfile-name'),
  userClass: {
    code: 77,
    name: 'user-class',
    invalid: () => undefined,
    decode: decodeUserClass,
    encode: (classes) => Buffer.concat(classes.map((c) => Buffer.concat([Buffer.from([c.length]), Buffer.from(c, 'latin1')]))),
  } satisfies OptionCodec<string[]>,
  clientArch: {
    code: 93,
    name: 'client-arch',
    invalid: (value) =>
      value.length > 0 && value.length % 2 === 0 ? undefined : `length ${value.length} is not a positive multiple of 2`,
    decode: (value) => Array.from({ length: value.length / 2 }, (_, i) => value.readUInt16BE(i * 2)),
    encode: (arches) => {
      const value = Buffer.alloc(arches.length * 2);
      arches.forEach((arch, i) => value.writeUInt16BE(arch, i * 2));
      return value;
    },
  } satisfies OptionCodec<number[]>,
  clientNdi: {
    code: 94,
    name: 'client-ndi',
    invalid: lengthIs(3),
    decode: (value) => ({ type: value[0] as number, major: value[1] as number, minor: value[2] as number }),
    encode: (ndi) => Buffer.from([ndi.type, ndi.major, ndi.minor]),
  } satisfies OptionCodec<ClientNdi>,
  clientUuid: {
    code: 97,
    name: 'client-uuid',
    invalid: lengthIs(17),
    decode: (value) => ({ type: value[0] as number, guid: Buffer.from(value.subarray(1)) }),
    encode: (uuid) => Buffer.concat([Buffer.from([uuid.type]), uuid.guid]),
  } satisfies OptionCodec<ClientUuid>,
  vendorSpecific: encapsulatedCodec(43, 'vendor-specific'),
  ipxeEncapsulated: encapsulatedCodec(175, 'ipxe-encapsulated'),
} as const;

function encapsulatedCodec(code: number, name: string): OptionCodec<SubOptions> {
  return {
    code,
    name,
    invalid: (value) => (decodeSubOptions(value) === undefined ? 'not a well-formed sub-option list' : undefined),
    decode: (value) => decodeSubOptions(value) ?? new Map(),
    encode: encodeSubOptions,
  };
}

/**
 * Options whose malformed value rejects the whole packet: a server cannot act on a DHCP packet whose
 * message type, server id or PXE identity is garbled. Encapsulated options (43, 175) are left out,
 * since option 43 belongs to whichever vendor the client is and need not be TLVs.
 */
export const VALIDATED_ON_PARSE: ReadonlyArray<OptionCodec<unknown>> = [
  Option.subnetMask,
  Option.requestedIp,
  Option.leaseTime,
  Option.messageType,
  Option.serverId,
  Option.maxMessageSize,
  Option.clientId,
  Option.clientArch,
  Option.clientNdi,
  Option.clientUuid,
] as ReadonlyArray<OptionCodec<unknown>>;

// ---- PXE sub-options of option 43 (PXE spec 2.1, table 2-1) ----

export const PxeSubOption = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/** Bits of PXE_DISCOVERY_CONTROL (sub-option 6). */
export const PxeDiscoveryControl = {
  DISABLE_BROADCAST: 1,
  DISABLE_MULTICAST: 2,
  ONLY_LISTED_SERVERS: 4,
  /** Use the boot file name from the offer, skip boot server discovery (proxyDHCP with bootfile). */
  USE_BOOTFILE: 8,
} as const;

/** Sub-option 71 as a client sends it in a boot server request: boot server type and layer. */
export function decodePxeBootItem(value: Buffer): { type: number; layer: number } | undefined {
  if (value.length !== 4) return undefined;
  return { type: value.readUInt16BE(0), layer: value.readUInt16BE(2) };
}

// ---- iPXE sub-options of option 175 (iPXE include/ipxe/dhcp.h) ----

export const IpxeSubOption = {
  PRIORITY: 0x01,
  FEATURE_PXE_EXT: 0x10,
  FEATURE_ISCSI: 0x11,
  FEATURE_AOE: 0x12,
  FEATURE_HTTP: 0x13,
  FEATURE_HTTPS: 0x14,
  FEATURE_TFTP: 0x15,
  FEATURE_DNS: 0x17,
  FEATURE_PXE: 0x21,
  FEATURE_EFI: 0x24,
  BUS_ID: 0xb1,
  VERSION: 0xeb,
} as const;
