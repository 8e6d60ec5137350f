// TFTP and firmware files through the API (issue 24, item 11): upload, list, download, replace and
// delete `tftp/<name>` files, fetched by a real TFTP client (curl) and over /boot/firmware/<name>
// from the running head without a restart; names, checksums and roles refused with reasons; an
// answered upload survives kill -9 of a real `keel serve`.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveKeel } from './helpers/keel-serve.js';
import { rawRequest } from './helpers/http-raw.js';
import { startTestHead } from './helpers/head.js';
import { seededBuffer } from './helpers/seeded-bytes.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function setup(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const put = (name: string, body: Buffer, query = '', as = token) =>
    rawRequest(`${h.base}/tftpfile/${name}${query}`, { method: 'PUT', headers: { authorization: `Bearer ${as}` }, body });
  const firmware = (name: string) => rawRequest(`http://127.0.0.1:${h.head.httpPort}/boot/firmware/${name}`);
  /** The file as a TFTP client gets it from the head's TFTP server, or curl's exit code when it cannot. */
  const tftp = async (name: string): Promise<Buffer | number> => {
    const run = await execa('curl', ['-sS', '--max-time', '20', '-o', '-', `tftp://127.0.0.1:${h.head.tftpPort}/${name}`], { encoding: 'buffer', reject: false, stdin: 'ignore' });
    return run.exitCode === 0 ? Buffer.from(run.stdout) : run.exitCode ?? -1;
  };
  return { h, token, call, put, firmware, tftp };
}

test('upload, list, serve by TFTP and /boot/firmware at once, replace, delete', async (t) => {
  const { call, put, firmware, tftp, h, token } = await setup(t);
  // An ARM64 iPXE build stands in: 300 kB, several TFTP windows and two chunks' worth of pieces.
  const arm64 = Buffer.concat([Buffer.from('MZ'), await seededBuffer(11, 300_000)]);
  const uploaded = await put('ipxe-arm64.efi', arm64, `?sha256=${sha256(arm64)}`);
  t.is(uploaded.status, 200, uploaded.body.toString());
  const answer = JSON.parse(uploaded.body.toString()) as { data: Record<string, unknown> };
  t.like(answer.data, { name: 'ipxe-arm64.efi', size: arm64.length, fmt: 'efi' });
  t.regex(answer.data.chksum as string, /^sha1:[0-9a-f]{40}$/);

  const listed = (await call('GET', '/tftpfiles')).json.data as { name: string; size: number; fmt: string }[];
  t.deepEqual(listed.map((f) => [f.name, f.size, f.fmt]), [['ipxe-arm64.efi', arm64.length, 'efi']]);
  t.like((await call('GET', '/tftpfile/ipxe-arm64.efi/stat')).json.data, { size: arm64.length });

  // Served at once by both boot servers (no restart), byte for byte.
  const got = await tftp('ipxe-arm64.efi');
  t.true(Buffer.isBuffer(got) && got.equals(arm64), `TFTP: ${Buffer.isBuffer(got) ? got.length : `curl exit ${got}`}`);
  const http = await firmware('ipxe-arm64.efi');
  t.is(http.status, 200);
  t.true(http.body.equals(arm64));
  t.is(http.headers.etag, `"${sha256(arm64)}"`);
  const api = await rawRequest(`${h.base}/tftpfile/ipxe-arm64.efi`, { headers: { authorization: `Bearer ${token}` } });
  t.true(api.body.equals(arm64));
  // The policy's ARM64 binary is no longer reported missing.
  t.false(((await call('GET', '/cluster')).json.data as { ipxe_binaries_missing: string[] }).ipxe_binaries_missing.includes('ipxe-arm64.efi'));

  // Replace: the next transfer gets the new bytes.
  const rebuilt = await seededBuffer(12, 70_001);
  t.is((await put('ipxe-arm64.efi', rebuilt)).status, 200);
  const again = await tftp('ipxe-arm64.efi');
  t.true(Buffer.isBuffer(again) && again.equals(rebuilt));
  t.true((await firmware('ipxe-arm64.efi')).body.equals(rebuilt));

  // Delete: gone from both servers and the list.
  t.deepEqual((await call('DELETE', '/tftpfile/ipxe-arm64.efi')).json, { success: true });
  t.deepEqual((await call('GET', '/tftpfiles')).json.data, []);
  t.is((await firmware('ipxe-arm64.efi')).status, 404);
  t.not(await tftp('ipxe-arm64.efi'), 0);
  t.false(Buffer.isBuffer(await tftp('ipxe-arm64.efi')), 'TFTP answers file not found');
  const missing = await call('DELETE', '/tftpfile/ipxe-arm64.efi');
  t.is(missing.status, 404);
  t.is(missing.json.reason, 'No TFTP file named ipxe-arm64.efi');
});

test('names, checksums and roles are refused with reasons; nothing is stored', async (t) => {
  const { call, put, h, token } = await setup(t);
  const bytes = Buffer.from('#!ipxe\necho hello\n');
  const reason = (name: string) => `Bad TFTP file name '${name}': 1..128 letters, digits, '.', '_', '+' or '-', not starting with '.' (a file name, not a path)`;
  for (const [sent, name] of [['a%2Fb.efi', 'a/b.efi'], ['..efi', '..efi'], ['.hidden', '.hidden'], ['a%5Cb', 'a\\b'], ['x'.repeat(129), 'x'.repeat(129)], ['sp%20ace', 'sp ace']]) {
    const res = await put(sent!, bytes);
    t.is(res.status, 400, sent);
    t.is((JSON.parse(res.body.toString()) as { reason: string }).reason, reason(name!), sent);
  }
  t.is((await put('x'.repeat(128), bytes)).status, 200, '128 characters are fine');
  t.is((await call('DELETE', `/tftpfile/${'x'.repeat(128)}`)).status, 200);

  const mismatch = await put('boot.ipxe', bytes, `?sha256=${'0'.repeat(64)}`);
  t.is(mismatch.status, 400);
  t.regex((JSON.parse(mismatch.body.toString()) as { reason: string }).reason, /^Upload rejected, nothing stored: sha256 mismatch/);
  const multipart = await rawRequest(`${h.base}/tftpfile/boot.ipxe`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=x' }, body: Buffer.from('--x--') });
  t.is(multipart.status, 415);
  t.deepEqual((await call('GET', '/tftpfiles')).json.data, []);

  // Full admins upload and delete; any admin lists and reads; no token, nothing.
  t.is((await call('POST', '/admins', { name: 'viewer', roles: ['role.authuser'], password: 'viewer-password-1' })).status, 200);
  const viewer = (await h.login('viewer', 'viewer-password-1')).access_token;
  t.is((await put('boot.ipxe', bytes)).status, 200);
  t.is((await put('boot.ipxe', bytes, '', viewer)).status, 403);
  t.is((await h.call('DELETE', '/tftpfile/boot.ipxe', { token: viewer })).status, 403);
  t.is((await h.call('GET', '/tftpfiles', { token: viewer })).status, 200);
  t.is((await h.call('GET', '/tftpfiles')).status, 401);
});

test('an answered upload survives kill -9 and is served by TFTP and HTTP after the restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), `keel-tftpfiles-kill-${process.pid}-`));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const bytes = await seededBuffer(21, 2_500_000);
  let keel = await serveKeel(t, dataDir);
  const put = await rawRequest(`${keel.api}/tftpfile/grubaa64.efi`, { method: 'PUT', headers: { authorization: `Bearer ${keel.token}` }, body: bytes });
  t.is(put.status, 200, put.body.toString());
  await keel.kill(); // right after the 200

  keel = await serveKeel(t, dataDir);
  const http = await rawRequest(`http://127.0.0.1:${keel.port}/boot/firmware/grubaa64.efi`);
  t.is(http.status, 200);
  t.is(sha256(http.body), sha256(bytes));
  const tftp = await execa('curl', ['-sS', '--max-time', '30', '-o', '-', `tftp://127.0.0.1:${keel.port}/grubaa64.efi`], { encoding: 'buffer', reject: false, stdin: 'ignore' });
  t.is(tftp.exitCode, 0, Buffer.from(tftp.stderr).toString());
  t.is(sha256(Buffer.from(tftp.stdout)), sha256(bytes));
  await keel.kill();
});
