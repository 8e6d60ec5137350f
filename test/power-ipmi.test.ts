// Power control through the API against OpenIPMI's ipmi_sim (a real IPMI 2.0 BMC on loopback):
// status, on/off/cycle/reset/soft, steps, graceful-then-forced off, boot device, wrong password,
// unreachable BMC, and credentials kept out of argv and API output.
import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestHead, type TestHead } from './helpers/head.js';
import { freeUdpPort, SIM_PASSWORD, SIM_USER, startIpmiSim, type IpmiSim } from './power/ipmi-sim.js';

interface Setup {
  h: TestHead;
  token: string;
  sim: IpmiSim;
}

/** A head whose cluster default group carries the ipmi_sim workaround and short timeouts. */
async function setup(t: ExecutionContext, power = false): Promise<Setup> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const sim = await startIpmiSim({ power });
  t.teardown(() => sim.stop());
  // ipmi_sim reports max privilege 0 in Open Session: FreeIPMI needs -W opensesspriv.
  await h.call('POST', '/attribs', { token, body: { name: 'cluster-defaults', attributes: { ipmi_workarounds: 'opensesspriv', ipmi_session_timeout_ms: '2000' } } });
  await h.call('PATCH', '/cluster', { token, body: { default_group: 'cluster-defaults' } });
  return { h, token, sim };
}

async function addNode(s: Setup, mac: string, attributes: Record<string, string>, powerUri = 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc>'): Promise<string> {
  const res = await s.h.call('POST', '/nodes', { token: s.token, body: { mac, power_uri: powerUri, attributes } });
  if (res.status !== 200) throw new Error(JSON.stringify(res.json));
  return res.json.data as string;
}

const simAttrs = (sim: IpmiSim, pass = SIM_PASSWORD) => ({ ipmi_user: SIM_USER, ipmi_pass: pass, bmc: `${sim.host}:${sim.port}` });
const simLog = (sim: IpmiSim) => readFileSync(join(sim.dir, 'log'), 'utf8').trim().split('\n');

test('status, on, off, cycle, reset, soft through the API act on the BMC', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, '52:54:00:00:10:01', simAttrs(s.sim));
  const state = async () => (await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data;
  const put = (body: unknown) => s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body });

  t.is(await state(), 'off');
  let res = await put({ state: 'power on' });
  t.is(res.status, 200, JSON.stringify(res.json));
  t.deepEqual(res.json.data, { state: 'on', outcome: 'done' });
  t.is(s.sim.power(), '1');
  t.is(await state(), 'on');

  res = await put({ state: 'power reset' });
  t.is(res.status, 200);
  t.is(simLog(s.sim).at(-1), 'reset 1');

  res = await put({ state: 'power cycle' });
  t.deepEqual(res.json.data, { state: 'on', outcome: 'done' }, 'answered once the machine is on again');
  t.deepEqual(simLog(s.sim).slice(-2), ['power 0', 'power 1'], 'a cycle turns the machine off; ipmi_sim powers it on again after 1 s');

  s.sim.setPower(true);
  res = await put({ state: 'power soft' });
  t.is(res.status, 200);
  t.is(simLog(s.sim).at(-1), 'shutdown 1');
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });

  s.sim.setPower(true);
  const before = simLog(s.sim).length;
  res = await put({ state: 'power off', force: true });
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });
  t.deepEqual(simLog(s.sim).slice(before), ['power 0'], 'force: no graceful attempt first');

  t.is((await put({ state: 'power sideways' })).status, 400);
  t.is((await put({ steps: ['wait 3'] })).status, 400);
  t.is((await put({ steps: ['soft', 'nap 3'] })).status, 400);
  t.is((await put({})).status, 400);
});

test('power off without force: graceful shutdown, then hard off when the OS ignores it; steps do the same explicitly', async (t) => {
  const s = await setup(t, true);
  const node = await addNode(s, '52:54:00:00:10:02', { ...simAttrs(s.sim), power_soft_wait_s: '2' });
  s.sim.ignoreSoft();
  const started = Date.now();
  let res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power off' } });
  t.is(res.status, 200, JSON.stringify(res.json));
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });
  t.deepEqual(simLog(s.sim).slice(-2), ['shutdown 1', 'power 0']);
  t.true(Date.now() - started >= 2000, 'waited power_soft_wait_s for the graceful shutdown');

  s.sim.setPower(true);
  res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { steps: ['soft', 'wait 1', 'off'] } });
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });
  t.deepEqual(simLog(s.sim).slice(-2), ['shutdown 1', 'power 0']);

  // An OS that honours the soft request: the forced off is skipped.
  await s.h.call('PUT', '/node/' + node + '/attributes', { token: s.token, body: { ...simAttrs(s.sim), power_soft_wait_s: '5' } });
  s.sim.setPower(true);
  const { rmSync } = await import('node:fs');
  rmSync(join(s.sim.dir, 'ignore-soft'));
  res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power off' } });
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });
  t.is(simLog(s.sim).at(-1), 'shutdown 1');

  // Steps that end in a wait the node does not satisfy: reported as a failure with the reason.
  s.sim.setPower(true);
  s.sim.ignoreSoft();
  res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { steps: ['soft', 'wait 1'] } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /still not off/);
});

test('boot device set to PXE and disk is read back from the BMC', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, '52:54:00:00:10:03', simAttrs(s.sim));
  let res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'pxe' } });
  t.is(res.status, 200, JSON.stringify(res.json));
  t.is(res.json.data, 'pxe');
  t.is(s.sim.boot(), 'pxe');
  t.is((await s.h.call('GET', `/node/${node}/bootdev`, { token: s.token })).json.data, 'pxe');
  res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'disk' } });
  t.is(res.json.data, 'disk');
  t.is(s.sim.boot(), 'default', 'ipmi_sim names "force boot from default hard drive" default');
  t.is((await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'floppy' } })).status, 400);
});

test('wrong password and unreachable BMC: unknown with the reason, within the timeout, other nodes unaffected', async (t) => {
  const s = await setup(t, true);
  const good = await addNode(s, '52:54:00:00:10:04', simAttrs(s.sim));
  const wrong = await addNode(s, '52:54:00:00:10:05', simAttrs(s.sim, 'not-the-password'));
  const deadPort = await freeUdpPort();
  const dead = await addNode(s, '52:54:00:00:10:06', { ...simAttrs(s.sim), bmc: `127.0.0.1:${deadPort}` });
  const none = (await s.h.call('POST', '/nodes', { token: s.token, body: { mac: '52:54:00:00:10:07' } })).json.data as string;

  let res = await s.h.call('GET', `/node/${wrong}/power_state?detail=1`, { token: s.token });
  t.is(res.json.data && (res.json.data as { state: string }).state, 'unknown');
  t.regex((res.json.data as { reason: string }).reason, /password/);
  t.is((await s.h.call('GET', `/node/${wrong}/power_state`, { token: s.token })).json.data, 'unknown');

  const started = Date.now();
  res = await s.h.call('GET', `/nodes/power_state?nodes=${good},${wrong},${dead},${none}`, { token: s.token });
  const elapsed = Date.now() - started;
  t.is(res.status, 200);
  const byUid = Object.fromEntries((res.json.data as { uid: string; name: string; state: string; reason?: string }[]).map((r) => [r.uid, r]));
  t.is(byUid[good]!.state, 'on');
  t.is(byUid[wrong]!.state, 'unknown');
  t.is(byUid[dead]!.state, 'unknown');
  t.regex(byUid[dead]!.reason!, /timeout/);
  t.deepEqual(byUid[none], { uid: none, name: byUid[none]!.name, state: 'unknown', reason: 'node has no power_uri (nor redfish_uri)' });
  t.true(elapsed < 2000 * 2 + 3000, `answered within the configured session timeout (took ${elapsed} ms)`);

  const off = await s.h.call('PUT', `/node/${dead}/power_state`, { token: s.token, body: { state: 'power off', force: true } });
  t.is(off.status, 502);
  t.regex(off.json.reason!, /timeout/);
  t.false(JSON.stringify(res.json).includes('not-the-password'));
  t.false(JSON.stringify(off.json).includes(SIM_PASSWORD));
});

test('credentials are in a 0600 file of a 0700 runtime directory, never in argv', async (t) => {
  const s = await setup(t);
  const deadPort = await freeUdpPort();
  const node = await addNode(s, '52:54:00:00:10:08', { ...simAttrs(s.sim), bmc: `127.0.0.1:${deadPort}` });
  // The unreachable BMC keeps ipmipower running long enough to read its argv.
  const pending = s.h.call('GET', `/node/${node}/power_state`, { token: s.token });
  const argvs: string[] = [];
  for (let i = 0; i < 40 && argvs.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (argv[0]?.endsWith('ipmipower') && argv.some((a) => a.includes(String(deadPort)))) argvs.push(argv.join(' '));
      } catch {
        // the process ended meanwhile
      }
    }
  }
  await pending;
  t.true(argvs.length > 0, 'saw the ipmipower process');
  for (const argv of argvs) {
    t.false(argv.includes(SIM_PASSWORD), argv);
    t.false(argv.includes(SIM_USER), argv);
  }
  const runDir = join(s.h.dataDir, 'run', 'power');
  t.is(statSync(runDir).mode & 0o777, 0o700);
  const files = readdirSync(runDir);
  t.true(files.length > 0);
  for (const file of files) t.is(statSync(join(runDir, file)).mode & 0o777, 0o600);
});
