// RPM → TAR conversion with real RPMs: rpmbuild (Debian's `rpm` package) builds them in the test
// with gzip, xz, zstd and bzip2 payloads; the TAR keel serves must hold exactly the files and bytes that
// `rpm2cpio | cpio -idm` extracts, in spec 002's layout, with the header's scripts. Hostile RPMs
// are refused with a reason and leave nothing in tar/.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { ClientPackages } from '../src/clientpkgs/directory.js';
import { startTestHead } from './helpers/head.js';

const LONG_DIR = 'share/' + 'a-rather-long-directory-name-for-ustar/'.repeat(3);
const LONG_FILE = `${LONG_DIR}and-a-long-file-name-as-well.txt`;

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Builds demo-<version>-1.x86_64.rpm with `payload` (rpm's %_binary_payload) in `dir`; returns its path. */
function buildRpm(dir: string, payload: string, options: { name?: string; version?: string; extra?: string } = {}): string {
  const name = options.name ?? 'demo';
  const version = options.version ?? '1.2';
  const spec = `Name: ${name}
Version: ${version}
Release: 1
Summary: keel test package
License: MIT
BuildArch: x86_64
%description
A package keel converts in its tests.
%install
mkdir -p %{buildroot}/opt/keel/${name}/bin %{buildroot}/opt/keel/${name}/${LONG_DIR} %{buildroot}/usr/bin %{buildroot}/etc/${name}
printf '#!/bin/sh\\necho hello\\n' > %{buildroot}/opt/keel/${name}/bin/hello
chmod 755 %{buildroot}/opt/keel/${name}/bin/hello
ln %{buildroot}/opt/keel/${name}/bin/hello %{buildroot}/opt/keel/${name}/bin/hello-again
head -c 200000 /dev/urandom > %{buildroot}/opt/keel/${name}/${LONG_FILE}
printf 'setting = 1\\n' > %{buildroot}/etc/${name}/${name}.conf
ln -s /opt/keel/${name}/bin/hello %{buildroot}/usr/bin/${name}-hello
${options.extra ?? ''}
%pre
echo pre-install of %{name}
%post
echo post-install of %{name}
%preun
echo pre-uninstall
%triggerin -- bash
echo bash was installed
%files
/opt/keel/${name}
/etc/${name}
/usr/bin/${name}-hello
`;
  const top = join(dir, 'rpmbuild');
  writeFileSync(join(dir, `${name}.spec`), spec);
  execFileSync('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--define', `_binary_payload ${payload}`, '--define', '__os_install_post %{nil}', '--define', 'debug_package %{nil}', join(dir, `${name}.spec`)], { stdio: 'pipe' });
  return join(top, 'RPMS', 'x86_64', `${name}-${version}-1.x86_64.rpm`);
}

/**
 * Every file and symlink under `root`, sorted: relative path → mode and sha256 of the bytes, or the
 * link's target. Directories are left out: both extractions make the parents they need.
 */
function tree(root: string): Map<string, string> {
  const out: [string, string][] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const info = lstatSync(path);
      const rel = relative(root, path);
      if (info.isSymbolicLink()) out.push([rel, `symlink -> ${readlinkSync(path)}`]);
      else if (info.isDirectory()) walk(path);
      else out.push([rel, `file ${(info.mode & 0o7777).toString(8)} ${info.size} bytes sha256 ${createHash('sha256').update(readFileSync(path)).digest('hex')}`]);
    }
  };
  walk(root);
  return new Map(out.sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What rpm2cpio | cpio -idm extracts, laid out as spec 002 says keel's TAR must be. */
function expectedLayout(rpm: string, work: string, name: string): Map<string, string> {
  const extracted = join(work, 'cpio');
  mkdirSync(extracted);
  execFileSync('sh', ['-c', `rpm2cpio "$1" | cpio -idm --quiet`, 'sh', rpm], { cwd: extracted });
  const expected = new Map<string, string>();
  const packageDir = `opt/keel/${name}`;
  for (const [path, what] of tree(extracted)) {
    if (path === packageDir || packageDir.startsWith(`${path}/`)) continue;
    expected.set(path.startsWith(`${packageDir}/`) ? path.slice(packageDir.length + 1) : `pkg/${path}`, what);
  }
  return expected;
}

function untar(bytes: Buffer, work: string): Map<string, string> {
  const dir = join(work, 'tar');
  mkdirSync(dir);
  writeFileSync(join(work, 'got.tar.gz'), bytes);
  execFileSync('tar', ['-xzf', join(work, 'got.tar.gz'), '-C', dir, '--no-same-owner']);
  return tree(dir);
}

for (const [payload, label] of [['w9.gzdio', 'gzip'], ['w6.xzdio', 'xz'], ['w19.zstdio', 'zstd'], ['w9.bzdio', 'bzip2']] as const) {
  test(`an RPM with a ${label} payload becomes a TAR with exactly what rpm2cpio | cpio extracts, in spec 002's layout, with its scripts`, async (t) => {
    const work = tempDir(t, `keel-rpm-${label}-`);
    const rpm = buildRpm(work, payload);
    t.is(execFileSync('rpm', ['-qp', '--qf', '%{PAYLOADCOMPRESSOR}', rpm]).toString(), label);
    const h = await startTestHead(t);
    copyFileSync(rpm, join(h.dataDir, 'clientpkgs', 'rpm', 'demo-1.2-1.x86_64.rpm'));

    const res = await fetch(`${h.base}/install/client/download/tar/demo`);
    t.is(res.status, 200);
    t.is(res.headers.get('content-disposition'), 'attachment; filename="demo-1.2-1.x86_64.tar.gz"');
    const got = untar(Buffer.from(await res.arrayBuffer()), work);

    const scripts = ['pkg/scripts/preinstall', 'pkg/scripts/postinstall', 'pkg/scripts/preuninstall', 'pkg/scripts/triggerin-0'];
    const files = new Map([...got].filter(([path]) => !scripts.includes(path)));
    const sorted = (map: Map<string, string>) => Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : 1)));
    t.deepEqual(sorted(files), sorted(expectedLayout(rpm, work, 'demo')));
    t.true(files.has(LONG_FILE) && LONG_FILE.length > 100, 'the long name survives');
    t.is(lstatSync(join(work, 'tar', 'bin/hello-again')).ino, lstatSync(join(work, 'tar', 'bin/hello')).ino, 'a hard link stays one');
    t.true(files.has('bin/hello') && files.has('pkg/etc/demo/demo.conf') && files.get('pkg/usr/bin/demo-hello') === 'symlink -> /opt/keel/demo/bin/hello');
    const script = (path: string) => readFileSync(join(work, 'tar', path), 'utf8');
    t.is(script('pkg/scripts/preinstall'), '#!/bin/sh\necho pre-install of demo\n');
    t.is(script('pkg/scripts/postinstall'), '#!/bin/sh\necho post-install of demo\n');
    t.is(script('pkg/scripts/triggerin-0'), '#!/bin/sh\n# rpm triggerin on: bash\necho bash was installed\n');
    t.is(lstatSync(join(work, 'tar', 'pkg/scripts/postinstall')).mode & 0o777, 0o755);

    // Cached in tar/: listed as a TAR now, served again without converting.
    const listing = await h.call('GET', '/install/client/download');
    const data = listing.json.data as { tar: { name: string; note?: string }[]; rpm: { name: string }[] };
    t.deepEqual(data.tar.map((entry) => entry.name), ['demo-1.2-1.x86_64.tar.gz']);
    t.is(data.tar[0]!.note, undefined);
    t.deepEqual(data.rpm.map((entry) => entry.name), ['demo-1.2-1.x86_64.rpm']);
  });
}

/** The payload of `rpm` (gzip) decompressed, changed by `edit`, compressed again in its place. */
function editPayload(rpm: string, edit: (cpio: Buffer) => Buffer): Buffer {
  const bytes = readFileSync(rpm);
  const at = bytes.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
  return Buffer.concat([bytes.subarray(0, at), gzipSync(edit(gunzipSync(bytes.subarray(at))))]);
}

function replaceAll(buffer: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('same length only: cpio sizes stay');
  const text = buffer.toString('latin1');
  if (!text.includes(from)) throw new Error(`${from} is not in the payload`);
  return Buffer.from(text.replaceAll(from, to), 'latin1');
}

test('hostile or broken RPMs are refused with a reason and leave nothing in tar/', async (t) => {
  const work = tempDir(t, 'keel-rpm-hostile-');
  const evilExtra = 'mkdir -p %{buildroot}/opt/keel/evil/xx && echo x > %{buildroot}/opt/keel/evil/xx/f';
  const evil = buildRpm(join(work), 'w9.gzdio', { name: 'evil', extra: evilExtra });
  const bomb = buildRpm(join(work), 'w9.gzdio', { name: 'bomb', extra: 'head -c 4000000 /dev/zero > %{buildroot}/opt/keel/bomb/zeros' });
  const good = readFileSync(evil);
  const payloadAt = good.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
  const cases: [file: string, bytes: Buffer, reason: RegExp][] = [
    ['wrongmagic-1-1.x86_64.rpm', Buffer.from('this is not an rpm at all, just text that is long enough to be read as a lead '.repeat(3)), /Not an RPM/],
    ['truncated-1-1.x86_64.rpm', good.subarray(0, 300), /Truncated RPM/],
    ['cut-1-1.x86_64.rpm', good.subarray(0, payloadAt + 200), /Corrupt RPM payload|Truncated RPM payload/],
    ['garbled-1-1.x86_64.rpm', Buffer.concat([good.subarray(0, payloadAt + 20), Buffer.alloc(good.length - payloadAt - 20, 0x55)]), /Corrupt RPM payload/],
    ['dotdot-1-1.x86_64.rpm', editPayload(evil, (cpio) => replaceAll(cpio, './opt/keel/evil/xx/f', './opt/keel/evil/../f')), /'\.\.' segment/],
    ['absolute-1-1.x86_64.rpm', editPayload(evil, (cpio) => replaceAll(cpio, './opt/keel/evil/xx/f', '//opt/keel/evil/xx/f')), /absolute path/],
    ['bomb-1.2-1.x86_64.rpm', readFileSync(bomb), /more than 1048576 bytes.*decompression bomb/],
  ];
  const h = await startTestHead(t, { KEEL_INSTALL_MAX_EXPANDED_BYTES: '1048576' });
  const rpmDir = join(h.dataDir, 'clientpkgs', 'rpm');
  for (const [file, bytes] of cases) writeFileSync(join(rpmDir, file), bytes);
  for (const [file, , reason] of cases) {
    const stem = file.slice(0, -'.rpm'.length);
    const { status, json } = await h.call('GET', `/install/client/download/tar/${stem}`);
    t.is(status, 422, file);
    t.false(json.success);
    t.regex(json.reason!, reason, file);
    t.deepEqual(readdirSync(join(h.dataDir, 'clientpkgs', 'tar')), [], `nothing left in tar/ by ${file}`);
  }
  // The head still serves: the same package as an RPM is sent as it is.
  const raw = await fetch(`${h.base}/install/client/download/rpm/wrongmagic`);
  t.is(raw.status, 200);
  t.deepEqual(Buffer.from(await raw.arrayBuffer()), cases[0]![1]);
});

test('two concurrent downloads of an unconverted RPM convert it once and get the same TAR', async (t) => {
  const work = tempDir(t, 'keel-rpm-twice-');
  const rpm = buildRpm(work, 'w19.zstdio');
  const dir = tempDir(t, 'keel-clientpkgs-');
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
  const packages = new ClientPackages(dir, 1 << 30, log);
  packages.prepare();
  copyFileSync(rpm, join(dir, 'rpm', 'demo-1.2-1.x86_64.rpm'));
  const request = { name: 'demo', type: 'tar', arch: 'x86_64' } as const;
  const [a, b] = await Promise.all([packages.find(request), packages.find(request)]);
  t.deepEqual(a, b);
  t.is(lines.filter((line) => line.includes('converted an RPM to a TAR')).length, 1);
  t.deepEqual(readdirSync(join(dir, 'tar')), ['demo-1.2-1.x86_64.tar.gz']);

  // Through the API as well: both answers are the same bytes.
  const h = await startTestHead(t);
  copyFileSync(rpm, join(h.dataDir, 'clientpkgs', 'rpm', 'demo-1.2-1.x86_64.rpm'));
  const [first, second] = await Promise.all([1, 2].map(async () => Buffer.from(await (await fetch(`${h.base}/install/client/download/demo?pkg=tgz&arch=amd64`)).arrayBuffer())));
  t.true(first!.length > 1000);
  t.deepEqual(first, second);
  t.deepEqual(readdirSync(join(h.dataDir, 'clientpkgs', 'tar')), ['demo-1.2-1.x86_64.tar.gz']);
});

test('a conversion killed with SIGKILL leaves no TAR, only a hidden temporary file that the next start removes', async (t) => {
  const work = tempDir(t, 'keel-rpm-kill-');
  // 40 MB that gzip cannot shrink: the conversion takes long enough to be killed in the middle.
  const rpm = buildRpm(work, 'w1.gzdio', { name: 'big', extra: 'head -c 40000000 /dev/urandom > %{buildroot}/opt/keel/big/blob' });
  const dir = tempDir(t, 'keel-clientpkgs-');
  const packages = new ClientPackages(dir, 1 << 30, pino({ level: 'silent' }));
  packages.prepare();
  copyFileSync(rpm, join(dir, 'rpm', 'big-1.2-1.x86_64.rpm'));
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('helpers/clientpkgs-convert.ts', import.meta.url)), dir, 'big'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(() => child.kill('SIGKILL'));
  // Killed once its temporary archive has passed 1 MB (polled for at most 60 s).
  const partial = () => readdirSync(join(dir, 'tar')).find((name) => name.endsWith('.partial'));
  const deadline = Date.now() + 60_000;
  while (!(partial() && statSync(join(dir, 'tar', partial()!)).size > 1_000_000) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.truthy(partial(), 'the conversion was under way');
  child.kill('SIGKILL');
  await exited;
  t.deepEqual(readdirSync(join(dir, 'tar')), [partial()!], 'no archive under its final name');
  t.deepEqual(packages.list().tar.map((entry) => entry.note), ['automated rpm-to-tar conversion'], 'the listing ignores the leftover');
  new ClientPackages(dir, 1 << 30, pino({ level: 'silent' })).prepare();
  t.deepEqual(readdirSync(join(dir, 'tar')), []);
  // The next request converts it whole.
  await packages.find({ name: 'big', type: 'tar', arch: 'x86_64' });
  t.true(execFileSync('tar', ['-tzf', join(dir, 'tar', 'big-1.2-1.x86_64.tar.gz')]).toString().split('\n').includes('blob'));
});
