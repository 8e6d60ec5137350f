// IPv4 addresses as host-order uint32 (the form the addon takes and reports) and interface
// index/name lookups.
import { binding } from './binding.js';

/** Parses a dotted-quad IPv4 address to a host-order uint32; throws TypeError otherwise. */
export function parseIPv4(address: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let valid = address.length <= 15;
  for (let i = 0; valid && i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // no leading zeros: inet_aton would read them as octal
      valid = !(digits === 1 && octet === 0);
      octet = octet * 10 + (c - 48);
      digits++;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      valid = false;
    }
    valid &&= octet <= 255;
  }
  if (!valid || dots !== 3 || digits === 0) {
    throw Object.assign(new TypeError(`not an IPv4 address: ${JSON.stringify(address)}`), { code: 'ERR_INVALID_IP_ADDRESS' });
  }
  return (value * 256 + octet) >>> 0;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** formatIPv4 remembering the last few values (addresses repeat within a receive batch). */
export function memoizedFormatIPv4(): (value: number) => string {
  const values = [-1, -1, -1];
  const strings = ['', '', ''];
  let next = 0;
  return (value) => {
    for (let i = 0; i < 3; i++) if (values[i] === value) return strings[i]!;
    const text = formatIPv4(value);
    values[next] = value;
    strings[next] = text;
    next = (next + 1) % 3;
    return text;
  };
}

// Interface names are looked up per index once per interval, not per datagram (an ioctl each).
const IFNAME_CACHE_MS = 10_000;
const ifnameCache = new Map<number, string | undefined>();
let ifnameCacheSince = 0;

/** Name of the interface with this index (undefined if none). */
export function interfaceName(ifindex: number): string | undefined {
  const now = Date.now();
  if (now - ifnameCacheSince > IFNAME_CACHE_MS) {
    ifnameCache.clear();
    ifnameCacheSince = now;
  }
  if (ifnameCache.has(ifindex)) return ifnameCache.get(ifindex);
  const name = binding.interfaceName(ifindex) ?? undefined;
  ifnameCache.set(ifindex, name);
  return name;
}

/** Index of the named interface (undefined if none). */
export function interfaceIndex(name: string): number | undefined {
  return binding.interfaceIndex(name) || undefined;
}
