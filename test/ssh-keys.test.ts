// keel's SSH key generator (GET /sshkey, the head's own key) against the parsers that will read its
// output: ssh2's and OpenSSH's. ssh2 1.17.0 alone turns out one ed25519 pair in 256 with a
// truncated public key (mscdex/ssh2#1390); 1,500 pairs hit that with probability 99.7 %, so this
// test fails when keel hands ssh2's output through unchecked.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { generateKeyPair } from '../src/ssh/keys.js';

const PAIRS = 1_500;

test(`${PAIRS} ed25519 pairs: every public and private key parses, the public key is 32 bytes and matches the private`, (t) => {
  for (let i = 0; i < PAIRS; i++) {
    const pair = generateKeyPair('ed25519', 'test');
    const pub = ssh2.utils.parseKey(pair.public);
    const priv = ssh2.utils.parseKey(pair.private);
    if (pub instanceof Error || priv instanceof Error) return t.fail(`pair ${i} does not parse: ${String(pub instanceof Error ? pub : priv)}\n${pair.public}`);
    const blob = (Array.isArray(pub) ? pub[0]! : pub).getPublicSSH();
    if (blob.length !== 51) return t.fail(`pair ${i}: public blob of ${blob.length} bytes\n${pair.public}`);
    if (!(Array.isArray(priv) ? priv[0]! : priv).getPublicSSH().equals(blob)) return t.fail(`pair ${i}: private and public halves differ`);
  }
  t.pass();
});

test('OpenSSH reads what keel generates: ssh-keygen -y derives the same public key, for every algorithm', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const algorithm of ['ed25519', 'ed25519', 'ed25519', 'ecdsa', 'rsa'] as const) {
    const pair = generateKeyPair(algorithm, 'test');
    t.true(pair.private.endsWith('\n'));
    const file = join(dir, `key-${algorithm}`);
    writeFileSync(file, pair.private, { mode: 0o600 });
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
    t.is(derived, pair.public.split(' ').slice(0, 2).join(' '), algorithm);
  }
});
