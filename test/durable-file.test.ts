// writeFileDurably: the file that keys, certificates, the CLI's tokens and keel install's files go
// through. A temporary file a crash left behind (same pid after a reboot) must not lend its mode.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileDurably } from '../src/durable-file.js';

test('the file has the mode asked for and the whole text, also over a leftover world-readable temporary file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-durable-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'token.json');
  writeFileSync(`${path}.${process.pid}.tmp`, 'old, longer leftover content', { mode: 0o644 });
  writeFileDurably(path, 'secret\n', 0o600);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.is(readFileSync(path, 'utf8'), 'secret\n');
});
