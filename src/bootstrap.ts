// First-start and every-start setup of a head's store: the token signing secret and the first
// admin account. Shared by `keel serve` and the tests, so both start from the same state.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Model } from './model/model.js';
import { hashPassword } from './model/passwords.js';
import type { Store } from './store/store.js';

const SECRET_KEY = 'jwt_secret';
export const INITIAL_ADMIN = 'admin';
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/** This head's token signing secret, generated and stored on first start. */
export async function signingSecret(store: Store): Promise<Uint8Array> {
  let secret = store.getSetting<Uint8Array>(SECRET_KEY);
  if (!secret) {
    await store.putSetting(SECRET_KEY, randomBytes(32));
    secret = store.getSetting<Uint8Array>(SECRET_KEY)!;
  }
  return new Uint8Array(secret);
}

/**
 * On an empty admin table, create `admin` with role.fulladmin. Its password comes from
 * KEEL_ADMIN_PASSWORD, else it is random and written once to <data-dir>/initial-admin-password
 * (mode 0600). Returns where the password is, for the start-up message.
 */
export async function ensureInitialAdmin(model: Model, dataDir: string, log: Logger, envPassword?: string): Promise<string | undefined> {
  const admins = model.admins.collection;
  if (admins.count() > 0) return undefined;
  const password = envPassword || randomBytes(12).toString('base64url');
  const passwordFile = join(dataDir, INITIAL_PASSWORD_FILE);
  // The file is written (and synced) before the account exists, so a crash in between can never
  // leave an admin whose password nobody knows; a fresh file, so the mode applies.
  if (!envPassword) {
    rmSync(passwordFile, { force: true });
    writeFileSync(passwordFile, password + '\n', { mode: 0o600, flush: true });
  }
  const password_hash = await hashPassword(password);
  await model.store.write('keel', (tx) =>
    tx.put(admins, { name: INITIAL_ADMIN, roles: ['role.fulladmin'], description: 'Created at first start', password_hash }),
  );
  log.info({ user: INITIAL_ADMIN, password: envPassword ? 'from KEEL_ADMIN_PASSWORD' : passwordFile }, 'created the initial admin');
  return envPassword ? 'KEEL_ADMIN_PASSWORD' : passwordFile;
}
