// SSH key pairs: GET /sshkey's generator (nothing stored, nothing logged) and the head's own pair,
// generated at first start, the private key a 0600 file in the data directory, the public key shown
// as `ssh_public` on the head object (spec 003). keel runs remote commands with it (exec.ts).
// ssh2's generator writes both halves in OpenSSH's formats. docs/security.md, "SSH keys".
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { writeFileDurably } from '../durable-file.js';

export const KEY_ALGORITHMS = ['ed25519', 'ecdsa', 'rsa'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface KeyPair {
  /** One OpenSSH public key line (`<type> <base64> <comment>`). */
  public: string;
  /** The OpenSSH private key, unencrypted, ending in a newline. */
  private: string;
}

/** The ed25519 public key blob OpenSSH expects: string "ssh-ed25519" (4 + 11) and a 32-byte key (4 + 32). */
const ED25519_BLOB_BYTES = 51;
/** Far more tries than a 1-in-256 event ever needs; a bound so that a broken generator cannot loop. */
const ED25519_TRIES = 16;

/**
 * A new pair: ed25519, ecdsa on nistp256, or rsa of 3072 bits (ssh-keygen's defaults).
 *
 * ssh2 1.17.0 strips every leading zero byte of an ed25519 public key (mscdex/ssh2#1390, #1513,
 * open): one pair in 256 comes out with a 31-byte key that OpenSSH refuses ("error in libcrypto")
 * and ssh2 itself cannot parse. Such a pair is thrown away and another generated.
 */
export function generateKeyPair(algorithm: KeyAlgorithm, comment: string): KeyPair {
  for (let attempt = 0; attempt < ED25519_TRIES; attempt++) {
    const pair = algorithm === 'ed25519' ? ssh2.utils.generateKeyPairSync('ed25519', { comment })
      : algorithm === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256, comment })
      : ssh2.utils.generateKeyPairSync('rsa', { bits: 3072, comment });
    const publicLine = pair.public.trimEnd();
    if (algorithm === 'ed25519' && Buffer.from(publicLine.split(' ')[1] ?? '', 'base64').length !== ED25519_BLOB_BYTES) continue;
    return { public: publicLine, private: pair.private.endsWith('\n') ? pair.private : `${pair.private}\n` };
  }
  throw new Error(`ssh2 generated ${ED25519_TRIES} malformed ed25519 keys in a row`);
}

/** Where the head's key pair lives under the data directory. */
export const HEAD_KEY_DIR = 'ssh';
const HEAD_KEY_FILE = 'head_ed25519';

/** The head's key pair: its public line and the private key (kept in memory, never logged). */
export interface HeadKey {
  public: string;
  /** The private key file, mode 0600. */
  path: string;
  privateKey(): Buffer;
}

/**
 * The head's key pair, generated on first start. The private key is written with mode 0600 (and
 * the directory 0700) before anything else can read it; the public line beside it (`.pub`).
 */
export function ensureHeadKey(dataDir: string, headName: string): HeadKey {
  const dir = join(dataDir, HEAD_KEY_DIR);
  const path = join(dir, HEAD_KEY_FILE);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let publicLine: string;
  try {
    publicLine = readFileSync(`${path}.pub`, 'utf8').trim();
    readFileSync(path);
  } catch {
    const pair = generateKeyPair('ed25519', `keel@${headName}`);
    // The public half last: its presence says the pair is whole.
    writeFileDurably(path, pair.private, 0o600);
    writeFileDurably(`${path}.pub`, `${pair.public}\n`, 0o644);
    publicLine = pair.public;
  }
  return { public: publicLine, path, privateKey: () => readFileSync(path) };
}
