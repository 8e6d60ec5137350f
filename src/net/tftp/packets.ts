// TFTP packet codec (RFC 1350, RFC 2347 options and OACK): pure functions between a UDP payload
// and a TftpPacket. parseTftp never throws, whatever the bytes: a packet it cannot use comes back
// as a reason for the server to count, log and answer with ERROR 4.

export const Opcode = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** RFC 1350 §5 error codes, and 8 from RFC 2347. */
export const ErrorCode = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRefused: 8,
} as const;

/** 16-bit block numbers on the wire. */
export const MAX_BLOCK_NUMBER = 0xffff;

/** One option of a request or OACK, with the name as the peer spelled it (names compare case-insensitively). */
export interface TftpOption {
  name: string;
  value: string;
}

export interface TftpRequest {
  type: 'rrq' | 'wrq';
  /** latin1, byte for byte (no charset is defined by the RFC); Buffer.from(filename, 'latin1') gives the bytes back. */
  filename: string;
  /** Lower-cased ('octet', 'netascii', 'mail' or whatever the client sent). */
  mode: string;
  /** RFC 2347 options in request order; the first instance of a repeated name only. */
  options: TftpOption[];
}

export interface TftpData {
  type: 'data';
  block: number;
  /** A view into the parsed buffer, not a copy. */
  payload: Buffer;
}

export interface TftpAck {
  type: 'ack';
  block: number;
}

export interface TftpError {
  type: 'error';
  code: number;
  message: string;
}

export interface TftpOack {
  type: 'oack';
  options: TftpOption[];
}

export type TftpPacket = TftpRequest | TftpData | TftpAck | TftpError | TftpOack;

export type ParseResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

export function parseTftp(buf: Buffer): ParseResult {
  try {
    return parseUnchecked(buf);
  } catch (error) {
    // Every check below is explicit; this only keeps a codec bug from taking the server down.
    return { ok: false, reason: `codec error: ${(error as Error).message}` };
  }
}

function parseUnchecked(buf: Buffer): ParseResult {
  if (buf.length < 2) return { ok: false, reason: `packet is ${buf.length} bytes, shorter than an opcode` };
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.rrq:
    case Opcode.wrq:
      return parseRequest(buf, opcode === Opcode.rrq ? 'rrq' : 'wrq');
    case Opcode.data:
      if (buf.length < 4) return { ok: false, reason: `DATA is ${buf.length} bytes, shorter than its 4-byte header` };
      return { ok: true, packet: { type: 'data', block: buf.readUInt16BE(2), payload: buf.subarray(4) } };
    case Opcode.ack:
      // Bytes after the block number are ignored: nothing in an ACK depends on them.
      if (buf.length < 4) return { ok: false, reason: `ACK is ${buf.length} bytes, shorter than 4` };
      return { ok: true, packet: { type: 'ack', block: buf.readUInt16BE(2) } };
    case Opcode.error: {
      if (buf.length < 4) return { ok: false, reason: `ERROR is ${buf.length} bytes, shorter than 4` };
      // A message without its terminating NUL is kept: it is only logged.
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end === -1 ? buf.length : end);
      return { ok: true, packet: { type: 'error', code: buf.readUInt16BE(2), message } };
    }
    case Opcode.oack: {
      const options = parseOptions(buf, 2);
      return { ok: true, packet: { type: 'oack', options } };
    }
    default:
      return { ok: false, reason: `unknown opcode ${opcode}` };
  }
}

function parseRequest(buf: Buffer, type: 'rrq' | 'wrq'): ParseResult {
  const filenameEnd = buf.indexOf(0, 2);
  if (filenameEnd === -1) return { ok: false, reason: `${type.toUpperCase()} filename is not NUL-terminated` };
  const modeEnd = buf.indexOf(0, filenameEnd + 1);
  if (modeEnd === -1) return { ok: false, reason: `${type.toUpperCase()} mode is not NUL-terminated` };
  const filename = buf.toString('latin1', 2, filenameEnd);
  const mode = buf.toString('latin1', filenameEnd + 1, modeEnd).toLowerCase();
  if (mode === '') return { ok: false, reason: `${type.toUpperCase()} has an empty mode` };
  return { ok: true, packet: { type, filename, mode, options: parseOptions(buf, modeEnd + 1) } };
}

/**
 * name NUL value NUL pairs from `start`. Lenient on the tail, as clients pad requests: empty names
 * (zero padding), a name without a value and an unterminated last string are dropped.
 */
function parseOptions(buf: Buffer, start: number): TftpOption[] {
  const options: TftpOption[] = [];
  const seen = new Set<string>();
  let offset = start;
  while (offset < buf.length) {
    const nameEnd = buf.indexOf(0, offset);
    if (nameEnd === -1) break;
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd === -1) break;
    const name = buf.toString('latin1', offset, nameEnd);
    const value = buf.toString('latin1', nameEnd + 1, valueEnd);
    offset = valueEnd + 1;
    if (name === '') continue;
    const key = name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    options.push({ name, value });
  }
  return options;
}

function cString(text: string, what: string): Buffer {
  if (text.includes('\0')) throw new RangeError(`${what} contains a NUL byte`);
  return Buffer.from(`${text}\0`, 'latin1');
}

function checkUint16(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`${what} ${value} is not a 16-bit unsigned integer`);
}

function header(opcode: number, word: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(opcode, 0);
  buf.writeUInt16BE(word, 2);
  return buf;
}

function optionBytes(options: readonly TftpOption[]): Buffer[] {
  return options.flatMap((option) => [cString(option.name, 'option name'), cString(option.value, `option ${option.name} value`)]);
}

export function serializeRequest(request: Omit<TftpRequest, 'type'> & { type?: 'rrq' | 'wrq' }): Buffer {
  const opcode = Buffer.alloc(2);
  opcode.writeUInt16BE(request.type === 'wrq' ? Opcode.wrq : Opcode.rrq);
  return Buffer.concat([opcode, cString(request.filename, 'filename'), cString(request.mode, 'mode'), ...optionBytes(request.options)]);
}

/** `block` is the 16-bit wire number: wrapping the transfer's block index is the caller's job. */
export function serializeData(block: number, payload: Buffer): Buffer {
  checkUint16(block, 'block');
  const buf = Buffer.allocUnsafe(4 + payload.length);
  buf.writeUInt16BE(Opcode.data, 0);
  buf.writeUInt16BE(block, 2);
  payload.copy(buf, 4);
  return buf;
}

export function serializeAck(block: number): Buffer {
  checkUint16(block, 'block');
  return header(Opcode.ack, block);
}

export function serializeError(code: number, message: string): Buffer {
  checkUint16(code, 'error code');
  return Buffer.concat([header(Opcode.error, code), cString(message, 'error message')]);
}

export function serializeOack(options: readonly TftpOption[]): Buffer {
  const opcode = Buffer.alloc(2);
  opcode.writeUInt16BE(Opcode.oack);
  return Buffer.concat([opcode, ...optionBytes(options)]);
}

/** Any packet back to bytes; parseTftp(serializeTftp(p)) gives p back. */
export function serializeTftp(packet: TftpPacket): Buffer {
  switch (packet.type) {
    case 'rrq':
    case 'wrq':
      return serializeRequest(packet);
    case 'data':
      return serializeData(packet.block, packet.payload);
    case 'ack':
      return serializeAck(packet.block);
    case 'error':
      return serializeError(packet.code, packet.message);
    case 'oack':
      return serializeOack(packet.options);
  }
}
