// A DHCP request read as the boot policy's BootClient (src/boot/policy.ts): which firmware sent
// it, whether it is iPXE already, and whether that iPXE speaks HTTP.
import type { BootClient } from '../../boot/policy.js';
import { IpxeSubOption, Option, getOption, type DhcpOptions } from './options.js';

/** The client a DHCP request describes; undefined when it is not a network-boot client at all. */
export function bootClientOf(chaddr: string, options: DhcpOptions): BootClient | undefined {
  const vendorClass = getOption(options, Option.vendorClassId) ?? '';
  const userClass = getOption(options, Option.userClass) ?? [];
  const ipxeOptions = options.has(Option.ipxeEncapsulated.code) ? getOption(options, Option.ipxeEncapsulated) : undefined;
  const ipxe = userClass.includes('iPXE') || options.has(Option.ipxeEncapsulated.code);
  // undionly's iPXE sends option 60 as bare 'PXEClient': match on the prefix.
  if (!vendorClass.startsWith('PXEClient') && !vendorClass.startsWith('HTTPClient') && !ipxe) return undefined;
  return {
    mac: chaddr,
    arch: getOption(options, Option.clientArch)?.[0],
    vendorClass,
    ipxe,
    ipxeWithoutHttp: ipxeOptions !== undefined && !ipxeOptions.has(IpxeSubOption.FEATURE_HTTP),
  };
}
