// What to do with a datagram that arrives on the server port (69): start a read transfer, answer
// with an ERROR, or ignore it. Pure; the file lookup (ERROR 1 / 2) is the server's, after this.

import { ErrorCode, parseTftp, serializeError, type TftpOption } from './packets.js';

/** Transfer modes the server speaks; "mail" (obsolete, RFC 1350) is refused. */
export type TransferMode = 'octet' | 'netascii';

export interface ReadRequest {
  filename: string;
  mode: TransferMode;
  options: TftpOption[];
}

export type RequestDecision =
  | { kind: 'read'; request: ReadRequest }
  /** Send `reply` (an ERROR) to the sender; the server counts and logs `reason`. */
  | { kind: 'refuse'; code: number; reason: string; reply: Buffer }
  /** Send nothing: an ERROR is never answered (RFC 1350 §7), so two peers cannot loop on each other. */
  | { kind: 'ignore'; reason: string };

function refuse(code: number, reason: string): RequestDecision {
  return { kind: 'refuse', code, reason, reply: serializeError(code, reason) };
}

export function classifyRequest(buf: Buffer): RequestDecision {
  const parsed = parseTftp(buf);
  if (!parsed.ok) return refuse(ErrorCode.illegalOperation, `malformed request: ${parsed.reason}`);
  const packet = parsed.packet;
  switch (packet.type) {
    case 'error':
      return { kind: 'ignore', reason: `ERROR ${packet.code} "${packet.message}" on the server port` };
    case 'wrq':
      return refuse(ErrorCode.accessViolation, 'write requests are refused: this server is read-only');
    case 'rrq':
      if (packet.mode === 'octet' || packet.mode === 'netascii') {
        return { kind: 'read', request: { filename: packet.filename, mode: packet.mode, options: packet.options } };
      }
      return refuse(ErrorCode.illegalOperation, `transfer mode "${packet.mode}" is not supported (octet or netascii)`);
    default:
      return refuse(ErrorCode.illegalOperation, `${packet.type.toUpperCase()} on the server port, which takes RRQ only`);
  }
}
