// Power status of N nodes (default 1,000; target < 10 s), in one run:
//   keel   GET /api/v1/nodes/power_state?selector=… through a real head: batched ipmipower
//          invocations (host lists), at most 8 processes at once;
//   peer   one `ipmipower --stat` process per node, the way a per-node script does it, at most
//          --concurrency at once, same options and credential file.
//   peer/BMC one `ipmipower --stat` per distinct BMC address (a per-node script that deduplicates).
// BMCs: --bmcs ipmi_sim instances (default nodes/4), each on its own loopback address (127.1.x.y,
// same UDP port: ipmi_sim 2.0.33 listens on one address per LAN channel); node i uses BMC i % bmcs.
//   node --import tsx bench/power/status.ts [--nodes 1000] [--bmcs 250] [--concurrency 64] [--port 16230]
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { RecentLog } from '../../src/log.js';
import { startHead } from '../../src/serve.js';
import { SIM_PASSWORD, SIM_USER, startIpmiSim, type IpmiSim } from '../../test/power/ipmi-sim.js';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, bmcs: { type: 'string' }, concurrency: { type: 'string', default: '64' }, port: { type: 'string', default: '16230' } } });
const nodeCount = Number(values.nodes);
const bmcCount = Number(values.bmcs ?? Math.ceil(nodeCount / 4));
const concurrency = Number(values.concurrency);
const address = (i: number) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;

const sims: IpmiSim[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'keel-bench-power-'));
const stopAll = async () => {
  for (const sim of sims) await sim.stop();
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

try {
  // Below the ephemeral range: an ephemeral port picked on one address may be taken on another.
  const port = Number(values.port);
  const started = Date.now();
  for (let i = 0; i < bmcCount; i++) sims.push(await startIpmiSim({ host: address(i), port, power: i % 2 === 0 }));
  console.log(`${nodeCount} nodes on ${bmcCount} ipmi_sim BMCs (port ${port}), started in ${((Date.now() - started) / 1000).toFixed(1)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  // The head's warnings, read for the status retries (service.ts) and otherwise dropped.
  let retriedHosts = 0;
  const retryCounter = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const entry = JSON.parse(chunk.toString()) as { msg?: string; hosts?: number };
      if (entry.msg?.startsWith('ipmi status: asking timed-out hosts again')) retriedHosts += entry.hosts ?? 0;
      done();
    },
  });
  const config = loadConfig({ env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1', KEEL_SERVER_NAME: 'bench-power' }, file: '/dev/null' });
  const head = await startHead({ config: { ...config, http: { ...config.http, port: 0 }, tftp: { ...config.tftp, port: 0 } }, log: pino({ level: 'warn' }, retryCounter), recentLog: new RecentLog(), adminPassword: 'bench-password' });
  const base = `http://127.0.0.1:${head.httpPort}/api/v1`;
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    return (await res.json()) as { success: boolean; data: unknown; reason?: string };
  };
  try {
    const login = await call('POST', '/login', { user: 'admin', pass: 'bench-password' });
    const token = (login.data as { token: { access_token: string } }).token.access_token;
    await call('POST', '/attribs', { name: 'bmc', attributes: { ipmi_user: SIM_USER, ipmi_pass: SIM_PASSWORD, ipmi_workarounds: 'opensesspriv' } }, token);
    await call('PATCH', '/cluster', { default_group: 'bmc' }, token);
    const nodes = Array.from({ length: nodeCount }, (_, i) => ({
      mac: `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      power_uri: `ipmi://<ipmi_user>:<ipmi_pass>@${address(i % bmcCount)}:${port}`,
      attributes: { bench: 'power' },
    }));
    const created = await call('POST', '/nodes', nodes, token);
    if (!created.success) throw new Error(created.reason);

    // keel: one API request for all nodes.
    const t0 = Date.now();
    const res = await call('GET', `/nodes/power_state?selector=${encodeURIComponent('a[bench] == "power"')}`, undefined, token);
    const keelMs = Date.now() - t0;
    const states = res.data as { uid: string; state: string; reason?: string }[];
    const count = (s: string) => states.filter((x) => x.state === s).length;
    // BMC i is on when i is even (see startIpmiSim above); node i uses BMC i % bmcCount.
    const indexOf = new Map((created.data as string[]).map((uid, i) => [uid, i]));
    const correct = states.filter((x) => x.state === ((indexOf.get(x.uid)! % bmcCount) % 2 === 0 ? 'on' : 'off')).length;
    const reasons = [...new Set(states.filter((x) => x.reason).map((x) => x.reason))].join('; ');
    console.log(`keel batched:          ${nodeCount} nodes in ${(keelMs / 1000).toFixed(2)} s  (on ${count('on')}, off ${count('off')}, unknown ${count('unknown')}${reasons ? `: ${reasons}` : ''}; correct ${correct}/${nodeCount}; hosts asked twice ${retriedHosts})`);

    const conf = join(dataDir, 'peer.conf');
    writeFileSync(conf, `username ${SIM_USER}\npassword ${SIM_PASSWORD}\n`, { mode: 0o600 });
    /** One ipmipower --stat per item, at most `concurrency` at once. */
    const perProcess = async (label: string, count: number, host: (i: number) => string) => {
      let next = 0;
      const answers: string[] = [];
      const t = Date.now();
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const r = await execa('ipmipower', [`--config-file=${conf}`, `--hostname=${host(i)}:${port}`, '--driver-type=LAN_2_0', '--workaround-flags=opensesspriv', '--session-timeout=5000', '--retransmission-timeout=500', '--stat'], { reject: false });
          answers.push(r.stdout.split(': ')[1] ?? 'error');
        }
      }));
      const ms = Date.now() - t;
      const n = (s: string) => answers.filter((x) => x === s).length;
      console.log(`${label} ${count} processes in ${(ms / 1000).toFixed(2)} s  (on ${n('on')}, off ${n('off')}, other ${count - n('on') - n('off')}; concurrency ${concurrency})`);
      return ms;
    };
    const peerNodeMs = await perProcess('peer process-per-node:', nodeCount, (i) => address(i % bmcCount));
    const peerBmcMs = await perProcess('peer process-per-BMC: ', bmcCount, (i) => address(i));
    console.log(`ratio per-node / keel: ${(peerNodeMs / keelMs).toFixed(2)}x; per-BMC / keel: ${(peerBmcMs / keelMs).toFixed(2)}x; target keel < 10 s: ${keelMs < 10_000 ? 'met' : 'NOT met'}`);
  } finally {
    await head.close();
  }
} finally {
  await stopAll();
}
