// An iPXE that keel built boots a VM: a QEMU VM (TCG, OVMF, virtio-net, authoritative DHCP) PXE
// boots the `ipxe.efi` that POST /ipxes compiled with an embedded script and PUT
// /ipxes/<id>/tftpfile made the TFTP file keel hands UEFI clients; the embedded script runs
// (`dhcp`, `chain` to a mainscript on keel, as spec 004's examples do), the mainscript runs and
// chains keel's own script for the node. What a user checks: the three steps on the serial
// console, in order. Runs in network namespaces the test creates (test/dhcp/boot-lab.ts); keel
// builds in the shared work directory (test/helpers/ipxe-build.ts). QEMU, radvd and keel are
// killed by pid at teardown. BIOS: SeaBIOS boots the built `ipxe.lkrn` as a kernel (QEMU -kernel).
// `undionly.kpxe` through PXE is not booted here: QEMU's BIOS NICs carry an iPXE ROM of their own,
// which keel's DHCP sends to its script directly, never to the TFTP file (docs/builders.md).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { bootLab, SERVER_ADDRESS, startInNamespace, startVm } from '../dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace } from '../dhcp/keel-in-netns.js';
import { COLD_BUILD_TIMEOUT_MS, IPXE_BUILD_ENV, waitForBuild, type BuildView } from '../helpers/ipxe-build.js';
import { BOOT_TIMEOUT_MS, HTTP_PORT, NODE_IP, TFTP_PORT, bootFailure, ok } from './boot-node.js';
import { namespaceApi } from './netns-api.js';

const MAC = '52:54:00:e2:00:21';
const BIOS_MAC = '52:54:00:e2:00:22';

test.serial('OVMF PXE-boots keel\'s built ipxe.efi: its embedded script chains a mainscript on keel, which chains keel\'s script for the node', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS + BOOT_TIMEOUT_MS);
  const lab = bootLab(t, { siteDhcp: false });
  await prepareCluster(lab.dataDir, {
    network: { name: 'lab', first_ip: NODE_IP, ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: 'authoritative' },
    macs: [MAC],
  });
  const keel = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', HTTP_PORT, TFTP_PORT, { env: IPXE_BUILD_ENV });
  const api = await namespaceApi(t, lab, HTTP_PORT);
  const token = await api.login('admin', 'dhcp-test-password');
  const base = `http://${SERVER_ADDRESS}:${HTTP_PORT}`;
  const nonce = Date.now().toString(36);
  const mainscript = ['#!ipxe', `echo built-ipxe-e2e: mainscript ${nonce} on \${net0/ip}`, `chain ${base}/boot/ipxe?mac=\${net0/mac}`].join('\n');
  const { id: mainscriptId } = ok('POST /mainscripts', await api.call('POST', '/mainscripts', { token, body: { text: mainscript } })).json.data as { id: number };
  // Spec 004's embedded script, plus a line that only this build prints.
  const embedded = ['#!ipxe', `echo built-ipxe-e2e: embedded ${nonce}`, 'dhcp', `chain ${base}/api/v1/mainscripts/${mainscriptId}`].join('\n');
  const posted = ok('POST /ipxes', await api.call('POST', '/ipxes', { token, body: { script: embedded, platform: 'bin-x86_64-efi', driver: 'ipxe', extension: 'efi' } })).json.data as BuildView;
  const built = await waitForBuild(async () => (await api.call('GET', `/ipxes/${posted.id}`, { token })).json.data as BuildView, (view) => ['done', 'failed'].includes(view.status), COLD_BUILD_TIMEOUT_MS);
  t.is(built.status, 'done', built.reason);
  t.timeout(BOOT_TIMEOUT_MS + 60_000);
  ok('PUT /ipxes/<id>/tftpfile', await api.call('PUT', `/ipxes/${posted.id}/tftpfile`, { token, body: { name: 'ipxe.efi' } }));

  const serial = join(lab.dir, 'serial.log');
  const failure = bootFailure(serial, keel);
  const started = Date.now();
  const vm = startVm(t, lab, 'uefi-virtio', MAC, { serial: ['-serial', `file:${serial}`] });
  const steps = [`built-ipxe-e2e: embedded ${nonce}`, `built-ipxe-e2e: mainscript ${nonce} on ${NODE_IP}`, 'keel: '];
  // Each step's line after the previous one's: the embedded script, then the mainscript it chained, then keel's script.
  const inOrder = (text: string) => steps.reduce((from, step) => (from < 0 ? -1 : text.indexOf(step, from)), 0) >= 0;
  for (const deadline = Date.now() + BOOT_TIMEOUT_MS; ;) {
    if (existsSync(serial) && inOrder(readFileSync(serial, 'utf8'))) break;
    if (Date.now() > deadline) throw failure(`the console did not show ${JSON.stringify(steps)} in order`);
    if (await Promise.race([vm.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 1000))])) throw failure('QEMU exited');
  }
  t.log(`QEMU start → keel's script reached through the built iPXE: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.true(inOrder(readFileSync(serial, 'utf8')));
});

test.serial('SeaBIOS boots keel\'s built ipxe.lkrn: its embedded script chains a mainscript on keel, which chains keel\'s script', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS + BOOT_TIMEOUT_MS);
  // A BIOS iPXE prints to the screen, not the serial port: keel's log is the witness. The
  // mainscript chains keel's script under a MAC that only it names (a second node's, not the
  // VM's), so "iPXE script served" for that MAC proves embedded script → mainscript → keel.
  const witness = '52:54:00:e2:00:23';
  const lab = bootLab(t, { siteDhcp: false });
  await prepareCluster(lab.dataDir, {
    network: { name: 'lab', first_ip: NODE_IP, ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: 'authoritative' },
    macs: [BIOS_MAC, witness],
  });
  const keel = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', HTTP_PORT, TFTP_PORT, { env: IPXE_BUILD_ENV });
  const api = await namespaceApi(t, lab, HTTP_PORT);
  const token = await api.login('admin', 'dhcp-test-password');
  const base = `http://${SERVER_ADDRESS}:${HTTP_PORT}`;
  const mainscript = ['#!ipxe', `chain ${base}/boot/ipxe?mac=${witness}`].join('\n');
  const { id: mainscriptId } = ok('POST /mainscripts', await api.call('POST', '/mainscripts', { token, body: { text: mainscript } })).json.data as { id: number };
  const embedded = ['#!ipxe', 'dhcp', `chain ${base}/api/v1/mainscripts/${mainscriptId}`].join('\n');
  const posted = ok('POST /ipxes', await api.call('POST', '/ipxes', { token, body: { script: embedded, platform: 'bin', driver: 'ipxe', extension: 'lkrn' } })).json.data as BuildView;
  const built = await waitForBuild(async () => (await api.call('GET', `/ipxes/${posted.id}`, { token })).json.data as BuildView, (view) => ['done', 'failed'].includes(view.status), COLD_BUILD_TIMEOUT_MS);
  t.is(built.status, 'done', built.reason);
  t.timeout(BOOT_TIMEOUT_MS + 60_000);
  const download = await api.raw('GET', new URL(built.url!).pathname.replace('/api/v1', ''));
  t.is(download.status, 200);
  const lkrn = join(lab.dir, 'ipxe.lkrn');
  writeFileSync(lkrn, download.body);
  const started = Date.now();
  const qemu = startInNamespace(t, lab.server, 'qemu-system-x86_64', ['-accel', 'tcg', '-nodefaults', '-display', 'none', '-serial', 'none', '-monitor', 'none',
    '-m', '128', '-kernel', lkrn, '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `e1000,netdev=n0,mac=${BIOS_MAC},romfile=`]);
  const served = await Promise.race([
    keel.waitForLog((line) => line.msg === 'iPXE script served' && line.mac === witness, BOOT_TIMEOUT_MS),
    qemu.exited.then(() => {
      throw new Error(`QEMU exited: ${qemu.output()}`);
    }),
  ]);
  t.log(`QEMU start → keel's script served through the built ipxe.lkrn: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.is(served.from, NODE_IP, 'asked by the VM, at the address keel\'s DHCP gave it');
});
