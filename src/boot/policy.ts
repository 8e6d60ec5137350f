// The boot policy (pixiecore's "Booter"): the one answer to "what does this client boot?" that the
// DHCP handlers put in their replies, and whose files the TFTP and HTTP servers then serve. Pure:
// the client as a plain value in (src/net/dhcp/boot-client.ts reads it from a DHCP request), a boot
// file (TFTP name or HTTP URL) out.

/** RFC 4578 / IANA "Processor Architecture Types" (option 93) keel knows how to boot. */
export const ClientArch = {
  X86_BIOS: 0,
  X86_UEFI: 6,
  X64_UEFI: 7,
  /** Assigned to EFI byte code, but sent by many x86-64 UEFI firmwares; booted as 7. */
  X64_UEFI_ALT: 9,
  ARM64_UEFI: 11,
  X64_UEFI_HTTP: 16,
  ARM64_UEFI_HTTP: 19,
} as const;

/**
 * iPXE binaries the policy hands out, as TFTP names (content-store files `tftp/<name>`; see
 * src/boot/ipxe-binaries.ts for where they come from). The UEFI image is `ipxe.efi`, with all of
 * iPXE's drivers and SNP as fallback; `snponly.efi` is imported too for sites that prefer it.
 */
export const IpxeBinary = {
  BIOS: 'undionly.kpxe',
  X64_EFI: 'ipxe.efi',
  ARM64_EFI: 'ipxe-arm64.efi',
} as const;

/** What a boot client says about its firmware (in DHCP, options 60, 77, 93 and 175). */
export interface BootClient {
  mac: string;
  /** Option 93, first entry; undefined when absent (old BIOS PXE ROMs send none: treated as BIOS). */
  arch: number | undefined;
  /** Option 60 as sent ('PXEClient:Arch:00007:UNDI:003000', bare 'PXEClient', 'HTTPClient…'). */
  vendorClass: string;
  /** iPXE is already running: option 77 'iPXE' or option 175 present. */
  ipxe: boolean;
  /** iPXE said (option 175) that it has no HTTP support: it must chain a full iPXE over TFTP. */
  ipxeWithoutHttp: boolean;
}

/** Where the head's HTTP server is, as seen from the client's network. */
export interface BootServer {
  /** Address of the interface the request arrived on (also the TFTP next-server). */
  address: string;
  httpPort: number;
}

export type BootDecision =
  | {
      boot: true;
      /** TFTP file name, or an http:// URL (HTTP boot and iPXE). */
      bootFile: string;
      /** Option 60 of the reply: 'HTTPClient' for UEFI HTTP boot, else 'PXEClient'. */
      vendorClass: 'PXEClient' | 'HTTPClient';
      /** Firmware PXE (not iPXE): include option 43 PXE_DISCOVERY_CONTROL = use the offered file. */
      pxeDiscoveryControl: boolean;
      /** Short words for logs and counters, e.g. 'bios', 'uefi-x64', 'ipxe-script'. */
      kind: string;
    }
  | { boot: false; reason: string };

/** URL of a node's iPXE script (GET /boot/ipxe, src/boot/ipxe-script.ts). */
export function ipxeScriptUrl(server: BootServer, mac: string): string {
  return `http://${server.address}:${server.httpPort}/boot/ipxe?mac=${mac}`;
}

/** URL of an iPXE binary over HTTP, for UEFI HTTP boot (GET /boot/firmware/<name>). */
export function firmwareUrl(server: BootServer, name: string): string {
  return `http://${server.address}:${server.httpPort}/boot/firmware/${name}`;
}

/**
 * iPXE that can speak HTTP fetches its per-node script; any other PXE firmware is first given iPXE
 * for its architecture (TFTP, or an HTTP URL for UEFI HTTP boot), which then DHCPs again as iPXE.
 */
export function decideBoot(client: BootClient, server: BootServer): BootDecision {
  const pxe = (bootFile: string, kind: string): BootDecision => ({
    boot: true, bootFile, vendorClass: 'PXEClient', pxeDiscoveryControl: !client.ipxe, kind,
  });
  const http = (name: string, kind: string): BootDecision => ({
    boot: true, bootFile: firmwareUrl(server, name), vendorClass: 'HTTPClient', pxeDiscoveryControl: false, kind,
  });
  if (client.ipxe && !client.ipxeWithoutHttp) {
    // The literal MAC of the DHCP request, not ${net0/mac}: on a node with several NICs, iPXE may
    // be booting from net1, and the script must be the one of the NIC that asked.
    return { boot: true, bootFile: ipxeScriptUrl(server, client.mac), vendorClass: 'PXEClient', pxeDiscoveryControl: false, kind: 'ipxe-script' };
  }
  switch (client.arch ?? ClientArch.X86_BIOS) {
    case ClientArch.X86_BIOS:
      return pxe(IpxeBinary.BIOS, 'bios');
    case ClientArch.X64_UEFI:
    case ClientArch.X64_UEFI_ALT:
      return pxe(IpxeBinary.X64_EFI, 'uefi-x64');
    case ClientArch.ARM64_UEFI:
      return pxe(IpxeBinary.ARM64_EFI, 'uefi-arm64');
    case ClientArch.X64_UEFI_HTTP:
      return http(IpxeBinary.X64_EFI, 'uefi-x64-http');
    case ClientArch.ARM64_UEFI_HTTP:
      return http(IpxeBinary.ARM64_EFI, 'uefi-arm64-http');
    default:
      return { boot: false, reason: `client architecture ${client.arch} (option 93) has no iPXE binary` };
  }
}
