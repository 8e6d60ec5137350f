// `keel install --root DIR` (issue 15, item 7) in a throwaway root, never the real one: the layout,
// a keel.toml whose commented defaults are keel's defaults as root, an operator's keel.toml kept,
// and systemd's own tools accepting what was installed — `systemd-analyze verify --root` (which
// also finds the binary where the unit runs it), `systemd-sysusers --root`, `systemd-tmpfiles --root`.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configDefaults, loadConfig } from '../src/config.js';
import { KEEL_UNIT } from '../src/cli/unit.js';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', 'src', 'main.ts');
const keel = (args: string[]) => run(process.execPath, ['--import', 'tsx', main, ...args]);

function throwawayRoot(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-root-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'root');
}

const mode = (path: string) => statSync(path).mode & 0o777;

test('keel install lays out binary, unit, keel.toml, data directory and sysusers/tmpfiles snippets, and says how to enable it', async (t) => {
  const root = throwawayRoot(t);
  const binary = join(root, '..', 'keel-binary');
  writeFileSync(binary, '#!/bin/sh\nexit 0\n');
  const { stdout } = await keel(['install', '--root', root, '--binary', binary]);
  t.regex(stdout, /^installed \/etc\/keel\/keel\.toml$/m);
  t.regex(stdout, /^ {2}systemctl daemon-reload && systemctl enable --now keel$/m);
  t.regex(stdout, /systemd-sysusers \/etc\/sysusers\.d\/keel\.conf && systemd-tmpfiles --create \/etc\/tmpfiles\.d\/keel\.conf/);

  t.is(readFileSync(join(root, 'etc/systemd/system/keel.service'), 'utf8'), readFileSync(new URL('../systemd/keel.service', import.meta.url), 'utf8'),
    'the installed unit is systemd/keel.service');
  t.is(KEEL_UNIT, readFileSync(new URL('../systemd/keel.service', import.meta.url), 'utf8'), 'src/cli/unit.ts carries systemd/keel.service as it is: change both');
  t.is(readFileSync(join(root, 'usr/local/bin/keel'), 'utf8'), '#!/bin/sh\nexit 0\n');
  t.is(mode(join(root, 'usr/local/bin/keel')), 0o755);
  t.is(mode(join(root, 'var/lib/keel')), 0o700);
  t.is(mode(join(root, 'etc/keel')), 0o750);
  t.is(mode(join(root, 'etc/keel/keel.toml')), 0o640);
  for (const parent of ['etc', 'var', 'var/lib', 'usr/local/bin']) t.is(mode(join(root, parent)), 0o755, `${parent} is not narrowed`);

  // systemd's parser, resolving units and the ExecStart binary inside the root (the host's unit
  // directory is linked in read-only for the targets the unit names).
  mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
  symlinkSync('/lib/systemd/system', join(root, 'usr/lib/systemd/system'));
  const verify = await run('systemd-analyze', ['verify', `--root=${root}`, '/etc/systemd/system/keel.service']);
  t.is(`${verify.stdout}${verify.stderr}`, '', 'no warning either');
  unlinkSync(join(root, 'usr/local/bin/keel'));
  const noBinary = await run('systemd-analyze', ['verify', `--root=${root}`, '/etc/systemd/system/keel.service']).catch((err: { stderr: string }) => err);
  t.regex((noBinary as { stderr: string }).stderr, /Command \/usr\/local\/bin\/keel is not executable/, 'verify does check the binary path');

  // The snippets, applied to the root by systemd itself.
  await run('systemd-sysusers', [`--root=${root}`]);
  t.regex(readFileSync(join(root, 'etc/group'), 'utf8'), /^keel:x:\d+:$/m);
  await run('systemd-tmpfiles', [`--root=${root}`, '--create']);
  const gid = Number(/^keel:x:(\d+):$/m.exec(readFileSync(join(root, 'etc/group'), 'utf8'))![1]);
  t.is(statSync(join(root, 'etc/keel/keel.toml')).gid, gid, 'keel.toml belongs to group keel');
  t.is(mode(join(root, 'var/lib/keel')), 0o700);
});

test('the installed keel.toml loads as keel\'s root defaults, commented or not', async (t) => {
  const root = throwawayRoot(t);
  await keel(['install', '--root', root]);
  const file = join(root, 'etc/keel/keel.toml');
  const asRoot = { env: {}, isRoot: true };
  const defaults = loadConfig({ ...asRoot, file: '/dev/null' });
  t.deepEqual(loadConfig({ ...asRoot, file }), defaults);
  const text = readFileSync(file, 'utf8');
  const uncommented = text.replace(/^# ([a-z_]+ = .*)$/gm, '$1');
  const withValue = configDefaults({ isRoot: true, hostname: 'any' }).filter(({ value }) => value !== null).map(({ key }) => key);
  t.deepEqual(uncommented.split('\n').filter((line) => /^[a-z_]+ = /.test(line)).map((line) => line.split(' ')[0]), withValue, 'every key with a default is there');
  writeFileSync(file, uncommented);
  t.deepEqual(loadConfig({ ...asRoot, file }), defaults);
});

test('a second install keeps the operator\'s keel.toml and reports a missing binary', async (t) => {
  const root = throwawayRoot(t);
  const first = await keel(['install', '--root', root]);
  t.regex(first.stdout, /^no binary: .*--binary dist\/keel/m);
  const file = join(root, 'etc/keel/keel.toml');
  writeFileSync(file, '[http]\nport = 8081\n');
  const second = await keel(['install', '--root', root]);
  t.regex(second.stdout, /^kept \/etc\/keel\/keel\.toml \(exists\)$/m);
  t.is(readFileSync(file, 'utf8'), '[http]\nport = 8081\n');
});
