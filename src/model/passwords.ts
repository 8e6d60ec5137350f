// Password hashes: scrypt from node:crypto, self-describing so parameters can change later.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

/**
 * scrypt runs on libuv's threadpool (4 threads unless UV_THREADPOOL_SIZE says otherwise), which
 * file reads share: a flood of logins that took every thread held up kickstart downloads for
 * seconds. At most this many derivations run at once, the rest queue. The limit is per process
 * because the threadpool is.
 */
const MAX_CONCURRENT_DERIVATIONS = 2;
let derivations = 0;
const queued: (() => void)[] = [];

async function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  if (derivations < MAX_CONCURRENT_DERIVATIONS) derivations++;
  else await new Promise<void>((resolve) => queued.push(resolve));
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(password, salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } finally {
    // Hand the slot to the next in line, or free it.
    const next = queued.shift();
    if (next) next();
    else derivations--;
  }
}

/** Salt of the derivation made for an unknown user (or an unusable hash), so it costs what a real check costs. */
const DUMMY_SALT = randomBytes(16);

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `password` matches the `stored` hash; false (after the same work) when there is none. */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parts = stored?.split('$');
  if (!parts || parts.length !== 6 || parts[0] !== 'scrypt') {
    await derive(password, DUMMY_SALT, PARAMS);
    return false;
  }
  const [, N, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash!, 'base64url');
  const key = await derive(password, Buffer.from(salt!, 'base64url'), { N: Number(N), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}
