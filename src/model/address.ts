// IPv4 and MAC address arithmetic for networks, IP allocation and node lookup. IPv4 addresses are
// handled as unsigned 32-bit integers; MACs are normalised to `aa:bb:cc:dd:ee:ff`.
import { isIPv4 } from 'node:net';

/** The address as an integer, or undefined when the text is not a dotted-quad IPv4 address. */
export function parseIPv4(text: string): number | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** First address of the subnet of `address` with `maskBits` network bits. */
export function subnetBase(address: number, maskBits: number): number {
  return maskBits === 0 ? 0 : (address & (~0 << (32 - maskBits))) >>> 0;
}

export function subnetSize(maskBits: number): number {
  return 2 ** (32 - maskBits);
}

/** Whether `address` lies in the subnet `base`/`maskBits`. */
export function inSubnet(address: number, base: number, maskBits: number): boolean {
  return subnetBase(address, maskBits) === subnetBase(base, maskBits);
}

const MAC_SEPARATED = /^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2}){4}$/i;
const MAC_DOTTED = /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i;
const MAC_BARE = /^[0-9a-f]{12}$/i;

/**
 * A MAC in any usual notation — any case; `:` or `-` between octets (leading zero optional),
 * Cisco `aabb.ccdd.eeff`, or 12 bare hex digits — as `aa:bb:cc:dd:ee:ff`; undefined if not a MAC.
 */
export function normaliseMac(text: string): string | undefined {
  let hex: string;
  if (MAC_SEPARATED.test(text)) hex = text.split(/[:-]/).map((octet) => octet.padStart(2, '0')).join('');
  else if (MAC_DOTTED.test(text)) hex = text.replaceAll('.', '');
  else if (MAC_BARE.test(text)) hex = text;
  else return undefined;
  return hex.toLowerCase().match(/../g)!.join(':');
}
