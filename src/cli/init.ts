// `keel init --assets DIR`: a store's default image and boot config (src/model/default-objects.ts),
// written offline like the `admin` commands, through the same model code as the API.
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import type { KeelConfig } from '../config.js';
import { ensureDefaultObjects, type DefaultObjectsResult } from '../model/default-objects.js';
import { Model } from '../model/model.js';
import { LOCAL_LOGIN_SOCKET } from '../api/local-login.js';
import { Store } from '../store/store.js';

/** Whether a keel serves this data directory now: its login socket accepts a connection. */
function keelRunsOn(dataDir: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(join(dataDir, LOCAL_LOGIN_SOCKET));
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

export async function initStore(config: KeelConfig, assetsDir: string, actor: string): Promise<DefaultObjectsResult> {
  const dataDir = resolve(config.server.data_dir);
  // Two processes writing one store would both number its change feed (src/store/store.ts keeps
  // the sequence in memory): a running keel gets its objects through its API instead.
  if (await keelRunsOn(dataDir)) {
    throw new Error(`keel is running on ${dataDir}: stop it first, or upload through its API (keel image import, keel bootconfig create)`);
  }
  // 0700 as `keel serve` makes it: the store and later the login socket are the owner's alone.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = new Store({ dataDir, headName: config.server.name, minFreeBytes: config.store.min_free_bytes, changeLogRetention: config.store.change_log_retention });
  try {
    return await ensureDefaultObjects(new Model(store, { dataDir }), resolve(assetsDir), actor);
  } finally {
    await store.close();
  }
}
