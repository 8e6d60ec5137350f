// Real boots, end to end: a QEMU VM (TCG) network-boots through keel into the default image
// (images/build.sh: Debian's kernel, keel's initramfs, the Debian root with the node agent) until
// the agent's first report is seen through the API — what a user checks after powering on a node.
// Each boot runs in network namespaces the test creates (test/dhcp/boot-lab.ts: bridge, tap,
// radvd, and the site's udhcpd for proxy mode); the image and boot config get into keel through
// the API (test/e2e/netns-api.ts), as an operator uploads them. Between the two boots every path
// of the initramfs is taken: BIOS/e1000 and UEFI/virtio, proxy and authoritative DHCP, rwram and
// roram, chunked and whole fetch. A failure prints the VM's serial console and keel's log tail.
// QEMU, radvd, udhcpd and keel are killed by pid at teardown.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { bootLab, startVm, type Firmware } from '../dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace, type KeelProcess } from '../dhcp/keel-in-netns.js';
import { defaultAssets } from './assets.js';
import { BOOT_TIMEOUT_MS, BUILD_TIMEOUT_MS, HTTP_PORT, NODE_IP, TFTP_PORT, VM_RAM_MIB, bootFailure, firstReport, sha256Of, uploadDefaults, type RootMode } from './boot-node.js';
import { namespaceApi } from './netns-api.js';

interface Scenario {
  mode: 'proxy' | 'authoritative';
  firmware: Firmware;
  root: RootMode;
  fetch: 'chunks' | 'whole';
  mac: string;
}

async function bootToFirstReport(t: ExecutionContext, scenario: Scenario): Promise<void> {
  t.timeout(BUILD_TIMEOUT_MS + BOOT_TIMEOUT_MS + 60_000);
  const assets = await defaultAssets();
  const rootfsSha256 = await sha256Of(assets.rootfs);
  t.timeout(BOOT_TIMEOUT_MS + 60_000);
  const { mode, firmware, root, fetch, mac } = scenario;
  // Beside a proxy, the site's server gives the node the address keel has for it (keel knows a
  // reporting node by its source address).
  const lab = bootLab(t, { siteDhcp: mode === 'proxy', siteStaticLeases: mode === 'proxy' ? { [mac]: NODE_IP } : {} });
  await prepareCluster(lab.dataDir, {
    network: { name: 'lab', first_ip: NODE_IP, ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: mode },
    macs: [mac],
  });
  const keel: KeelProcess = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', HTTP_PORT, TFTP_PORT);
  const api = await namespaceApi(t, lab, HTTP_PORT);
  const token = await api.login('admin', 'dhcp-test-password');
  const { image, bootConfig } = await uploadDefaults(api, token, assets, root);
  const attributes = await api.call('PATCH', `/node/${mac}/attributes`, { token, body: { _boot_config: 'DefaultBoot', _image_fetch: fetch } });
  t.is(attributes.status, 200, JSON.stringify(attributes.json));

  const serial = join(lab.dir, 'serial.log');
  const failure = bootFailure(serial, keel);
  const started = Date.now();
  const vm = startVm(t, lab, firmware, mac, { memoryMiB: VM_RAM_MIB, serial: ['-serial', `file:${serial}`], cpu: 'max' });
  const { status, seconds } = await firstReport(api, token, mac, vm, started, failure);
  // The agent prints its first report on the console once keel has answered it: give it a moment.
  const reportLine = /keel-agent: reported to .*, ([\d.]+) s after the kernel started/;
  for (let waited = 0; waited < 15_000 && !reportLine.test(readFileSync(serial, 'utf8')); waited += 500) await new Promise((resolve) => setTimeout(resolve, 500));
  const consoleText = readFileSync(serial, 'utf8');
  // The phases as the console dates them (seconds since the kernel started).
  const rootReady = /keel: root \(\w+\) ready ([\d.]+) s/.exec(consoleText)?.[1];
  const agentReport = reportLine.exec(consoleText)?.[1];
  t.log(`${firmware} ${mode} ${root} ${fetch}: QEMU start → first agent report ${seconds.toFixed(1)} s; `
    + `kernel start → root ready ${String(rootReady)} s (image fetched in ${String(status.fetch_seconds)} s) → agent's report ${String(agentReport)} s`);

  t.like(status, { image, image_sha256: rootfsSha256, boot_config: bootConfig, root, fetch, state: 'up' }, 'the node runs the image keel holds, booted the way its boot config and attributes say');
  t.regex(String(status.boot_id), /^[0-9a-f-]{36}$/);
  t.true(typeof status.uptime === 'number' && typeof status.ram_free === 'number' && Array.isArray(status.load_avg), 'numbers as numbers');
  const node = (await api.call('GET', `/node/${mac}`, { token })).json.data as { hardware: Record<string, unknown> };
  t.like(node.hardware, { cpus: 1, macs: [mac] });
  const ramTotal = node.hardware.ram_total as number;
  t.true(ramTotal > (VM_RAM_MIB - 128) * 2 ** 20 && ramTotal <= VM_RAM_MIB * 2 ** 20, `ram_total ${ramTotal} bytes for a ${VM_RAM_MIB} MiB VM`);
  // The selector language reads the report: the node is among those with more than 512 MB.
  const selected = await api.call('GET', `/nodes?selector=${encodeURIComponent('h[ram_total] > 512MB')}`, { token });
  t.is(selected.status, 200, JSON.stringify(selected.json));
  t.true(JSON.stringify(selected.json.data).includes(mac), JSON.stringify(selected.json.data));
  // What the console showed: keel's initramfs fetched the image the way asked, and switched root.
  t.regex(consoleText, fetch === 'chunks' ? /keel-fetch: \d+ chunks of 1048576 bytes \(\d+ bytes\), 4 in flight/ : /fetched \(whole\) in/);
  t.regex(consoleText, new RegExp(`keel: root \\(${root}\\) ready`));
  if (!t.passed) t.log(failure('an assertion failed').message);
}

test.serial('proxy beside the site\'s DHCP server, BIOS e1000 (iPXE ROM): rwram, chunk by chunk, until the agent reports', async (t) => {
  await bootToFirstReport(t, { mode: 'proxy', firmware: 'bios-e1000', root: 'rwram', fetch: 'chunks', mac: '52:54:00:e2:00:01' });
});

test.serial('authoritative alone, UEFI (OVMF) virtio: EDK2 PXE → TFTP ipxe.efi → iPXE → HTTP; roram, whole, until the agent reports', async (t) => {
  await bootToFirstReport(t, { mode: 'authoritative', firmware: 'uefi-virtio', root: 'roram', fetch: 'whole', mac: '52:54:00:e2:00:02' });
});
