// DHCP lease writes (src/store/leases.ts) share commits: the ACKs of one receive batch wait for one
// fsync, not one each (bench/RESULTS.md, "DHCP authoritative after the full-disk fix"), and an
// acknowledged lease survives kill -9 of the writer.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseStore, type Lease } from '../src/store/leases.js';
import { Store } from '../src/store/store.js';
import { acknowledgedUntilKilled } from './helpers/kill-writer.js';

function openStore(t: { teardown(fn: () => unknown): void }): { store: Store; dataDir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-leases-'));
  const store = new Store({ dataDir, headName: 't' });
  t.teardown(async () => {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { store, dataDir };
}

const lease = (i: number): Lease => ({
  mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
  ip: `10.0.${i >> 8}.${i & 0xff}`, nodeUid: `node${i}`, granted: 1_000, expires: 4_600,
});

/** Busy for `ms` without yielding, like the DHCP server handling the next packet of a receive batch. */
function handlePacket(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('the lease writes of one event turn share one commit, even with work between them', async (t) => {
  const { store } = openStore(t);
  const leases = new LeaseStore(store);
  // LMDB's transaction id counts commits of the environment.
  const probe = store.openDatabase<number, string>('_test_probe', { encoding: 'msgpack' });
  const commitsSoFar = () => (probe.getStats() as { lastTxnId: number }).lastTxnId;
  await leases.put(lease(0));
  const before = commitsSoFar();

  // 100 ACKs of one receive batch, 0.2 ms of handling each: 20 ms in which LMDB's writer thread
  // could commit many times over if each write started or joined whatever commit was under way.
  const written = [];
  for (let i = 1; i <= 100; i++) {
    handlePacket(0.2);
    written.push(leases.put(lease(i)));
  }
  await Promise.all(written);

  t.is(commitsSoFar() - before, 1, 'commits for 100 lease writes of one turn');
  t.is(leases.count(), 101);
  t.deepEqual(leases.get(lease(77).mac), lease(77));
});

test('every acknowledged lease survives kill -9 of the writer mid-stream', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-leases-kill-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  // The writer: bursts of 20 lease writes per event turn, printing a MAC only once its put resolved.
  const writer = `
    import { Store } from ${JSON.stringify(join(import.meta.dirname, '../src/store/store.ts'))};
    import { LeaseStore } from ${JSON.stringify(join(import.meta.dirname, '../src/store/leases.ts'))};
    const leases = new LeaseStore(new Store({ dataDir: ${JSON.stringify(dataDir)}, headName: 'writer' }));
    let n = 0;
    const burst = () => {
      for (let j = 0; j < 20; j++) {
        const i = n++;
        const mac = 'mac-' + i;
        leases.put({ mac, ip: '10.0.0.' + (i % 250), nodeUid: 'node' + i, granted: i, expires: i + 3600 })
          .then(() => process.stdout.write(mac + ' ' + i + '\\n'));
      }
      setImmediate(burst);
    };
    burst();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));

  // Killed at a pseudo-random point while bursts are in flight.
  const acknowledged = await acknowledgedUntilKilled(child, 3000, 2000);

  const store = new Store({ dataDir, headName: 'checker' });
  t.teardown(() => store.close());
  const leases = new LeaseStore(store);
  const missing = [...acknowledged].filter(([mac, i]) => leases.get(mac)?.granted !== Number(i));
  t.deepEqual(missing, [], 'acknowledged leases missing after kill -9');
});
