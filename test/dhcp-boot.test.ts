// A QEMU VM network-boots through keel's DHCP, TFTP and HTTP servers up to the fetch of its iPXE
// script, in both firmware paths and both DHCP modes (test/dhcp/boot-lab.ts builds the network).
// What this asserts is what a user checks in keel's log: the script was served for the VM's MAC
// to the VM's address (keel's own lease in authoritative mode, the site server's in proxy mode)
// and, for UEFI, the TFTP transfer of the iPXE binary completed. What the firmware does here:
// - BIOS, e1000: QEMU's option ROM *is* iPXE (option 77 "iPXE", option 175): its first DHCP
//   already gets the script URL; no TFTP at all.
// - UEFI (OVMF), virtio-net: EDK2's PXE (option 93 = 7) gets `ipxe.efi` with option 43
//   PXE_DISCOVERY_CONTROL, fetches it by TFTP from the offer (no request on 4011), then iPXE
//   DHCPs again and gets the script URL.
// Each boot is bounded (BOOT_TIMEOUT_MS); QEMU, radvd, udhcpd and keel are killed by pid at teardown.
import test, { type ExecutionContext } from 'ava';
import { nodes } from '../src/model/cluster.js';
import { parseIPv4 } from '../src/model/address.js';
import { LeaseStore } from '../src/store/leases.js';
import { Store } from '../src/store/store.js';
import { bootLab, SITE_POOL, startVm, type Firmware } from './dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace, type KeelProcess } from './dhcp/keel-in-netns.js';

const BOOT_TIMEOUT_MS = 120_000;
const HTTP_PORT = 8080;
const TFTP_PORT = 69;

type Mode = 'authoritative' | 'proxy';

const network = (mode: Mode) => ({ name: 'lab', first_ip: '10.67.0.100', ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: mode });

interface Booted {
  keel: KeelProcess;
  /** keel's `iPXE script served` log line for the VM's MAC. */
  script: Record<string, unknown>;
  /** keel's `tftp transfer` log lines before the script was served. */
  transfers: Record<string, unknown>[];
  dataDir: string;
}

/** Boots a VM with `mac` in a fresh lab (keel in `mode`, with a node for `mac`), until keel serves its iPXE script. */
async function bootUntilScript(t: ExecutionContext, mode: Mode, firmware: Firmware, mac: string): Promise<Booted> {
  const lab = bootLab(t, { siteDhcp: mode === 'proxy' });
  await prepareCluster(lab.dataDir, { network: network(mode), macs: [mac] });
  const keel = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', HTTP_PORT, TFTP_PORT);
  const started = Date.now();
  const vm = startVm(t, lab, firmware, mac);
  const quit = vm.exited.then(() => {
    throw new Error(`QEMU exited before the script fetch: ${vm.output()}`);
  });
  const script = await Promise.race([
    keel.waitForLog((line) => line.msg === 'iPXE script served' && line.mac === mac, BOOT_TIMEOUT_MS),
    quit,
  ]);
  t.log(`${firmware} (${mode}): iPXE script served ${Date.now() - started} ms after QEMU started`);
  const transfers = keel.logs.slice(0, keel.logs.indexOf(script)).filter((line) => line.msg === 'tftp transfer');
  for (const transfer of transfers) t.log(`tftp: ${String(transfer.file)} ${String(transfer.outcome)} ${String(transfer.bytes)} bytes`);
  return { keel, script, transfers, dataDir: lab.dataDir };
}

const inSitePool = (address: string) => {
  const value = parseIPv4(address);
  return value !== undefined && value >= parseIPv4(SITE_POOL.first)! && value <= parseIPv4(SITE_POOL.last)!;
};

/** The lease keel recorded for `mac`, read from its store after it stopped. */
async function leaseOf(t: ExecutionContext, booted: Booted, mac: string) {
  await booted.keel.stop();
  const store = new Store({ dataDir: booted.dataDir, headName: 'check' });
  t.teardown(() => store.close());
  return { lease: new LeaseStore(store).get(mac), nodeIp: nodes(store).get(nodes(store).lookup('mac', mac)!)?.ip };
}

test.serial('BIOS e1000, authoritative: QEMU\'s iPXE ROM gets the script URL in its first DHCP and fetches its script from its node\'s address', async (t) => {
  const mac = '52:54:00:6b:00:01';
  const booted = await bootUntilScript(t, 'authoritative', 'bios-e1000', mac);
  t.is(booted.script.from, '10.67.0.100', 'the script was fetched from the node\'s address');
  t.deepEqual(booted.transfers, [], 'the ROM is iPXE already: nothing is fetched by TFTP');
  const { lease, nodeIp } = await leaseOf(t, booted, mac);
  t.is(nodeIp, '10.67.0.100');
  t.like(lease, { mac, ip: nodeIp as string });
});

test.serial('UEFI (OVMF) virtio, authoritative: EDK2 PXE → TFTP ipxe.efi → iPXE → HTTP script', async (t) => {
  const mac = '52:54:00:6b:00:02';
  const booted = await bootUntilScript(t, 'authoritative', 'uefi-virtio', mac);
  t.is(booted.script.from, '10.67.0.100');
  const complete = booted.transfers.filter((line) => line.file === 'ipxe.efi' && line.outcome === 'complete');
  t.is(complete.length, 1, 'ipxe.efi was transferred once, completely');
  t.is(complete[0]!.bytes, complete[0]!.size);
  t.true(String(complete[0]!.peer).startsWith('10.67.0.100:'), 'to the VM');
  const { lease } = await leaseOf(t, booted, mac);
  t.like(lease, { mac, ip: '10.67.0.100' });
});

test.serial('BIOS e1000, proxy next to the site\'s DHCP server: address from the site, script URL from keel', async (t) => {
  const mac = '52:54:00:6b:00:03';
  const booted = await bootUntilScript(t, 'proxy', 'bios-e1000', mac);
  t.true(inSitePool(String(booted.script.from)), `the VM's address ${String(booted.script.from)} came from the site's server`);
  t.deepEqual(booted.transfers, []);
  const { lease } = await leaseOf(t, booted, mac);
  t.is(lease, undefined, 'proxy mode records no lease');
});

test.serial('UEFI (OVMF) virtio, proxy next to the site\'s DHCP server: TFTP ipxe.efi from keel, then the script', async (t) => {
  const mac = '52:54:00:6b:00:04';
  const booted = await bootUntilScript(t, 'proxy', 'uefi-virtio', mac);
  const from = String(booted.script.from);
  t.true(inSitePool(from), `the VM's address ${from} came from the site's server`);
  const complete = booted.transfers.filter((line) => line.file === 'ipxe.efi' && line.outcome === 'complete');
  t.is(complete.length, 1);
  t.is(complete[0]!.bytes, complete[0]!.size);
  t.true(String(complete[0]!.peer).startsWith(`${from}:`));
});
