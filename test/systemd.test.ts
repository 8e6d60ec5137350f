// systemd/keel.service as an installer uses it. No systemd runs as PID 1 here, so the unit is
// checked statically: systemd's own parser (systemd-analyze verify) accepts every line, and the
// settings it passes to keel resolve to the directories systemd creates for it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.js';

const unitPath = fileURLToPath(new URL('../systemd/keel.service', import.meta.url));
const unit = readFileSync(unitPath, 'utf8');
const settings = (key: string) => unit.split('\n').filter((line) => line.startsWith(`${key}=`)).map((line) => line.slice(key.length + 1));

test('systemd-analyze verify accepts the unit without a warning', async (t) => {
  t.deepEqual(settings('ExecStart'), ['/usr/local/bin/keel serve']);
  // verify also checks that ExecStart's binary exists: point it at one that does.
  const dir = mkdtempSync(join(tmpdir(), `keel-unit-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'keel.service');
  writeFileSync(copy, unit.replace('ExecStart=/usr/local/bin/keel serve', 'ExecStart=/bin/true serve'));
  const { stdout, stderr } = await promisify(execFile)('systemd-analyze', ['verify', copy]);
  // Unknown keys and bad values are only warnings (exit 0): any output is a failure.
  t.is(`${stdout}${stderr}`, '');
});

test("the unit's environment gives keel the state and cache directories systemd creates", (t) => {
  const env = Object.fromEntries(settings('Environment').map((assignment) => assignment.split('=', 2) as [string, string]));
  // No User= or DynamicUser=: keel runs as root and takes the root defaults (docs/config.md).
  t.deepEqual([...settings('User'), ...settings('DynamicUser')], []);
  const config = loadConfig({ env, isRoot: true });
  t.deepEqual(settings('StateDirectory'), ['keel']);
  t.is(config.server.data_dir, '/var/lib/keel');
  t.deepEqual(settings('CacheDirectory'), ['keel']);
  t.is(env.XDG_CACHE_HOME, '/var/cache/keel', 'the addon cache (src/native.ts) goes under CacheDirectory');
  t.is(config.http.port, 80);
  t.is(config.tftp.port, 69);
});
