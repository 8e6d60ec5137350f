// RFC 2347 option negotiation for read requests: blksize (RFC 2348), timeout and tsize (RFC 2349),
// windowsize (RFC 7440). Pure: the client's options and the server's limits in, the values the
// transfer uses and the OACK to send out.

import type { TftpOption } from './packets.js';

export const DEFAULT_BLOCK_SIZE = 512;
export const MIN_BLOCK_SIZE = 8;
export const MAX_BLOCK_SIZE = 65464;
export const MIN_TIMEOUT_SECONDS = 1;
export const MAX_TIMEOUT_SECONDS = 255;
export const MAX_WINDOW_SIZE = 65535;
/** IPv4 header 20 + UDP header 8 + TFTP DATA header 4: what a DATA packet adds to its block. */
export const DATA_OVERHEAD = 32;

export interface TftpLimits {
  /** Largest block the server answers, whatever the client asks (at most 65464). */
  maxBlockSize: number;
  /** MTU of the path to the client (the interface MTU is a fair hint): blocks stay within mtu - 32, so DATA is never fragmented. */
  mtu?: number;
  /** Largest window the server answers; with blockSize it bounds the memory a transfer holds. */
  maxWindowSize: number;
}

export const DEFAULT_LIMITS: TftpLimits = { maxBlockSize: MAX_BLOCK_SIZE, maxWindowSize: 64 };

export interface NegotiatedOptions {
  blockSize: number;
  windowSize: number;
  /** The client's timeout in seconds when it set an acceptable one; the server then retransmits on it. */
  timeoutSeconds: number | undefined;
  /** The options to acknowledge, in the client's order and spelling; undefined = none accepted, no OACK (RFC 1350 flow). */
  oack: TftpOption[] | undefined;
  /** Options the client sent that are not acknowledged, with why, for the transfer log. */
  ignored: string[];
}

export type NegotiationResult = { ok: true; negotiated: NegotiatedOptions } | { ok: false; reason: string };

const DECIMAL = /^[0-9]+$/;

/** The largest block the server may answer under `limits`. */
export function maxBlockSizeFor(limits: TftpLimits): number {
  const byMtu = limits.mtu === undefined ? MAX_BLOCK_SIZE : limits.mtu - DATA_OVERHEAD;
  return Math.max(MIN_BLOCK_SIZE, Math.min(MAX_BLOCK_SIZE, limits.maxBlockSize, byMtu));
}

/**
 * Negotiates a read request's options. `fileSize` undefined means the size on the wire is not known
 * in advance (netascii), so tsize is not answered. `ok: false` means ERROR 8: the client asked for a
 * block or window smaller than the protocol allows, which no answer can honour (an answer may only be
 * smaller than the request). Other malformed values are not acknowledged, so the client falls back to
 * the RFC 1350 default for them; unknown options are ignored (RFC 2347).
 */
export function negotiateOptions(requested: readonly TftpOption[], limits: TftpLimits, fileSize: number | undefined): NegotiationResult {
  const negotiated: NegotiatedOptions = {
    blockSize: DEFAULT_BLOCK_SIZE,
    windowSize: 1,
    timeoutSeconds: undefined,
    oack: undefined,
    ignored: [],
  };
  const oack: TftpOption[] = [];
  const acknowledge = (name: string, value: number) => oack.push({ name, value: String(value) });

  for (const { name, value } of requested) {
    const key = name.toLowerCase();
    if (!['blksize', 'windowsize', 'timeout', 'tsize'].includes(key)) {
      negotiated.ignored.push(`${name}: unknown option`);
      continue;
    }
    if (!DECIMAL.test(value)) {
      negotiated.ignored.push(`${name}: value ${JSON.stringify(value)} is not a decimal number`);
      continue;
    }
    const number = Number(value);
    switch (key) {
      case 'blksize':
        if (number < MIN_BLOCK_SIZE) return { ok: false, reason: `blksize ${value} is below the minimum of ${MIN_BLOCK_SIZE}` };
        negotiated.blockSize = Math.min(number, maxBlockSizeFor(limits));
        acknowledge(name, negotiated.blockSize);
        break;
      case 'windowsize':
        if (number < 1) return { ok: false, reason: `windowsize ${value} is below the minimum of 1` };
        negotiated.windowSize = Math.max(1, Math.min(number, MAX_WINDOW_SIZE, limits.maxWindowSize));
        acknowledge(name, negotiated.windowSize);
        break;
      case 'timeout':
        // RFC 2349: the server accepts the client's timeout as it is or omits it.
        if (number < MIN_TIMEOUT_SECONDS || number > MAX_TIMEOUT_SECONDS) {
          negotiated.ignored.push(`${name}: ${value} is outside ${MIN_TIMEOUT_SECONDS}..${MAX_TIMEOUT_SECONDS} seconds`);
          break;
        }
        negotiated.timeoutSeconds = number;
        acknowledge(name, number);
        break;
      case 'tsize':
        // A read request carries 0 (RFC 2349); any value gets the real size back.
        if (fileSize === undefined) {
          negotiated.ignored.push(`${name}: size on the wire not known in advance (netascii)`);
          break;
        }
        acknowledge(name, fileSize);
        break;
    }
  }
  if (oack.length > 0) negotiated.oack = oack;
  return { ok: true, negotiated };
}
