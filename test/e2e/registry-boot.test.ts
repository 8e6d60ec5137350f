// The user's whole loop with spec 004's registries, in a real boot: a QEMU VM (TCG, UEFI virtio,
// authoritative DHCP) whose `_boot_config` is `mainscript:<name>` boots through keel's mainscript
// (an iPXE menu whose default, after its timeout, chains a subscript, as spec 004's example does) →
// the subscript (another menu) → the default image's kernel, initramfs and root
// (images/build.sh). Its node agent reports and puts keel's keys in root's authorized_keys; then
// PUT /node/<UID>/exec through keel answers from the booted kernel, and the key registered via
// /sshkeys logs in as root (PUT /localnodes/<id>/script with its private key). Runs in network
// namespaces the test creates (test/dhcp/boot-lab.ts); a failure prints the VM's serial console
// and keel's log tail. QEMU, radvd and keel are killed by pid at teardown.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { bootLab, SERVER_ADDRESS, startVm } from '../dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace } from '../dhcp/keel-in-netns.js';
import { defaultAssets } from './assets.js';
import { BOOT_TIMEOUT_MS, BUILD_TIMEOUT_MS, HTTP_PORT, NODE_IP, TFTP_PORT, VM_RAM_MIB, bootFailure, firstReport, ok, uploadDefaults } from './boot-node.js';
import { namespaceApi, type NamespaceApi, type RawReply } from './netns-api.js';

const MAC = '52:54:00:e2:00:03';
/** sshd starts beside the agent: the first exec may find it not listening yet. */
const SSH_READY_TIMEOUT_MS = 90_000;
/** The separator docs/registries.md gives between a remote command's output and its status line. */
const STATUS_MARKER = '\nkeel-exec-status: ';

/** The release (`uname -r`) of a bzImage: the version string its setup header points at (Linux boot protocol, `kernel_version` at 0x20E). */
function kernelRelease(vmlinuz: string): string {
  const image = readFileSync(vmlinuz);
  const offset = image.readUInt16LE(0x20e) + 0x200;
  return image.subarray(offset, image.indexOf(0, offset)).toString('latin1').split(' ')[0]!;
}

/** An exec answer split as docs/registries.md says: the output, and the status after the last marker. */
function execResult(reply: RawReply): { output: string; status: { exit: number | null; signal: string | null; stderr: string; stderr_truncated: boolean } } {
  const body = reply.body.toString('utf8');
  const at = body.lastIndexOf(STATUS_MARKER);
  if (reply.status !== 200 || at < 0) throw new Error(`exec: ${reply.status} ${body.slice(0, 1000)}`);
  return { output: body.slice(0, at), status: JSON.parse(body.slice(at + STATUS_MARKER.length)) as never };
}

/** PUT /node/<mac>/exec, tried again while the node's sshd does not listen yet (a 502 at the connect step). */
async function execOnNode(api: NamespaceApi, token: string, cmd: string): Promise<RawReply> {
  const deadline = Date.now() + SSH_READY_TIMEOUT_MS;
  for (;;) {
    const reply = await api.raw('PUT', `/node/${MAC}/exec`, { token, body: { cmd } });
    const notYet = reply.status === 502 && /connect failed/.test(reply.body.toString());
    if (!notYet || Date.now() > deadline) return reply;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

test('mainscript menu → subscript menu → the default image; the agent reports, exec through keel answers from the booted kernel', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS + BOOT_TIMEOUT_MS + SSH_READY_TIMEOUT_MS + 60_000);
  const assets = await defaultAssets();
  t.timeout(BOOT_TIMEOUT_MS + SSH_READY_TIMEOUT_MS + 120_000);
  const lab = bootLab(t, { siteDhcp: false });
  await prepareCluster(lab.dataDir, {
    network: { name: 'lab', first_ip: NODE_IP, ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: 'authoritative' },
    macs: [MAC],
  });
  const keel = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', HTTP_PORT, TFTP_PORT);
  const api = await namespaceApi(t, lab, HTTP_PORT);
  const token = await api.login('admin', 'dhcp-test-password');
  const { image, bootConfig } = await uploadDefaults(api, token, assets, 'roram');
  const node = ok('GET /node', await api.call('GET', `/node/${MAC}`, { token })).json.data as { name: string; ip: string };
  t.is(node.ip, NODE_IP);

  // A key pair from keel's generator, its public half registered for the nodes (spec 004).
  const pair = ok('GET /sshkey', await api.call('GET', '/sshkey?algorithm=ed25519', { token })).json.data as { public: string; private: string };
  ok('POST /sshkeys', await api.call('POST', '/sshkeys', { token, body: { text: pair.public, artifactId: 'lab' } }));

  // The subscript boots the default image as keel's own script for DefaultBoot would, written out
  // by hand; `<name>` and `<ip>` are keel's placeholders, filled for the node fetching it.
  const base = `http://${SERVER_ADDRESS}:${HTTP_PORT}`;
  const files = `${base}/boot/bootconfig/${bootConfig}`;
  const bootArgs = ['console=ttyS0,115200n8', `keel.image=${base}/boot/image/${image}`, 'keel.root=roram', 'keel.fetch=whole',
    `keel.api=${base}/api/v1`, 'keel.status_period=10', `keel.boot_config=${bootConfig}`];
  const subscript = [
    '#!ipxe',
    'echo registry-boot: subscript for <name> at <ip>',
    'menu Choose the image',
    'item keeldefault keel\'s default image (roram)',
    'item ipxeshell iPXE shell',
    'choose --default keeldefault --timeout 3000 target && goto ${target}',
    ':keeldefault',
    `kernel ${files}/kernel initrd=initrd.img ${bootArgs.join(' ')} BOOTIF=01-\${net0/mac:hexhyp}`,
    `initrd --name initrd.img ${files}/initramfs`,
    'boot',
    ':ipxeshell',
    'shell',
  ].join('\n');
  const subscriptId = (ok('POST /subscripts', await api.call('POST', '/subscripts', { token, body: { text: subscript, name: 'default-image' } })).json.data as { id: number }).id;
  // The mainscript: spec 004's example, its chain at keel's base URL.
  const mainscript = [
    '#!ipxe',
    'menu Choose Script',
    'item keelsubscript keel\'s default image (subscript)',
    'choose --default keelsubscript --timeout 3000 server && goto ${server}',
    ':keelsubscript',
    `chain ${base}/api/v1/subscripts/${subscriptId}`,
  ].join('\n');
  ok('POST /mainscripts', await api.call('POST', '/mainscripts', { token, body: { text: mainscript, name: 'lab-menu' } }));
  ok('PATCH attributes', await api.call('PATCH', `/node/${MAC}/attributes`, { token, body: { _boot_config: 'mainscript:lab-menu' } }));

  const serial = join(lab.dir, 'serial.log');
  const failure = bootFailure(serial, keel);
  const started = Date.now();
  const vm = startVm(t, lab, 'uefi-virtio', MAC, { memoryMiB: VM_RAM_MIB, serial: ['-serial', `file:${serial}`], cpu: 'max' });
  const { status, seconds } = await firstReport(api, token, MAC, vm, started, failure);
  const consoleText = readFileSync(serial, 'utf8');
  t.regex(consoleText, /keel: booting mainscript lab-menu/, 'keel\'s script for the node chained the mainscript');
  t.true(consoleText.includes(`registry-boot: subscript for ${node.name} at ${NODE_IP}`), 'the mainscript\'s default chained the subscript, filled for the node');
  t.like(status, { image, boot_config: bootConfig, root: 'roram', fetch: 'whole', state: 'up', agent: 'keel-agent 2' }, 'the node runs the default image, booted the way the subscript says');

  // The user's loop: a command through keel, answered by the booted kernel.
  const execStarted = Date.now();
  const reply = await execOnNode(api, token, 'uname -r; cat /proc/cmdline');
  const execSeconds = (Date.now() - execStarted) / 1000;
  if (reply.status !== 200) throw failure(`PUT /node/${MAC}/exec: ${reply.status} ${reply.body.toString()}`);
  t.is(reply.headers['content-type'], 'application/octet-stream');
  const { output, status: exit } = execResult(reply);
  t.deepEqual(exit, { exit: 0, signal: null, stderr: '', stderr_truncated: false });
  const [release, cmdline] = output.split('\n');
  t.is(release, kernelRelease(assets.vmlinuz), 'the default image\'s kernel runs');
  t.is(release, String(status.kernel), 'the agent reports the same kernel');
  for (const arg of [...bootArgs, `BOOTIF=01-${MAC.replaceAll(':', '-')}`]) t.true(cmdline!.split(' ').includes(arg), `${arg} on the booted command line: ${cmdline}`);

  // The agent installed the registered key and the head's: the registered key's private half logs
  // in as root (spec 004's localnode script, run by keel with the key sent).
  const keys = execResult(await execOnNode(api, token, 'cat /root/.ssh/authorized_keys; stat -c %a /root/.ssh /root/.ssh/authorized_keys'));
  const headKey = (ok('GET /cluster', await api.call('GET', '/cluster', { token })).json.data as { heads: { ssh_public: string }[] }).heads[0]!.ssh_public;
  const lines = keys.output.split('\n');
  t.true(lines.includes(pair.public), keys.output);
  t.true(lines.includes(headKey), keys.output);
  t.deepEqual(lines.slice(-3), ['700', '600', '']);
  const localnode = (ok('POST /localnodes', await api.call('POST', `/localnodes?ip=${NODE_IP}&artifactId=lab`, { token })).json.data as { id: number }).id;
  const script = execResult(await api.raw('PUT', `/localnodes/${localnode}/script`, { token, body: { script: 'id -un', privateKey: pair.private } }));
  t.is(script.output, 'root\n');
  t.is(script.status.exit, 0);
  t.log(`QEMU start → first agent report ${seconds.toFixed(1)} s; first exec answered ${execSeconds.toFixed(1)} s later; whole test ${((Date.now() - started) / 1000).toFixed(1)} s after QEMU started`);
  if (!t.passed) t.log(failure('an assertion failed').message);
});
