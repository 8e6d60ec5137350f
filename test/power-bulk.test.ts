// Bulk power over a dynamic group of 100 nodes spread over four ipmi_sim BMCs: one result per node,
// every BMC acted on once per step (nodes behind the same BMC share one host entry of a batch).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestHead } from './helpers/head.js';
import { freeUdpPort, SIM_PASSWORD, SIM_USER, startIpmiSim, type IpmiSim } from './power/ipmi-sim.js';

test('power on and status over a dynamic group of 100 nodes on four BMCs, with an unreachable BMC among them', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const sims: IpmiSim[] = [];
  for (let i = 0; i < 4; i++) {
    const sim = await startIpmiSim();
    t.teardown(() => sim.stop());
    sims.push(sim);
  }
  const deadPort = await freeUdpPort();
  await h.call('POST', '/attribs', { token, body: { name: 'bmc-defaults', attributes: { ipmi_workarounds: 'opensesspriv', ipmi_user: SIM_USER, ipmi_pass: SIM_PASSWORD, ipmi_session_timeout_ms: '1500' } } });
  await h.call('PATCH', '/cluster', { token, body: { default_group: 'bmc-defaults' } });
  const body = Array.from({ length: 100 }, (_, i) => ({
    mac: `52:54:00:01:00:${i.toString(16).padStart(2, '0')}`,
    power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc>',
    attributes: { rack: 'bulk', bmc: `127.0.0.1:${sims[i % 4]!.port}` },
  }));
  // Two more members whose BMC does not answer.
  body.push({ mac: '52:54:00:01:01:00', power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc>', attributes: { rack: 'bulk', bmc: `127.0.0.1:${deadPort}` } });
  const created = await h.call('POST', '/nodes', { token, body });
  t.is(created.status, 200, JSON.stringify(created.json));
  const uids = created.json.data as string[];
  const dead = uids.at(-1)!;
  t.is((await h.call('POST', '/dyngroups', { token, body: { name: 'bulk', selector: 'a[rack] == "bulk"' } })).status, 200);

  const res = await h.call('PUT', '/nodes/power_state', { token, body: { dyngroup: 'bulk', state: 'power on' } });
  t.is(res.status, 200, JSON.stringify(res.json));
  const data = res.json.data as { ok: number; failed: number; results: { uid: string; state: string; ok: boolean; reason?: string }[] };
  t.is(data.results.length, 101);
  t.is(data.ok, 100);
  t.is(data.failed, 1);
  const deadResult = data.results.find((r) => r.uid === dead)!;
  t.is(deadResult.state, 'unknown');
  t.regex(deadResult.reason!, /timeout/);
  for (const r of data.results.filter((x) => x.uid !== dead)) t.is(r.state, 'on');
  for (const sim of sims) {
    t.is(sim.power(), '1');
    // One "power on" per BMC: the 25 nodes behind it were one host of one batch.
    t.deepEqual(readFileSync(join(sim.dir, 'log'), 'utf8').trim().split('\n'), ['power 1']);
  }

  const status = await h.call('GET', `/nodes/power_state?selector=${encodeURIComponent('a[rack] == "bulk" and a[bmc] != "x"')}`, { token });
  const states = status.json.data as { uid: string; state: string }[];
  t.is(states.length, 101);
  t.is(states.filter((s) => s.state === 'on').length, 100);

  sims[2]!.setPower(false);
  const list = await h.call('GET', `/nodes/power_state?nodes=${uids[2]},${uids[3]}`, { token });
  t.deepEqual((list.json.data as { state: string }[]).map((s) => s.state), ['off', 'on']);

  t.is((await h.call('PUT', '/nodes/power_state', { token, body: { state: 'power on' } })).status, 400, 'no selection');
  t.is((await h.call('PUT', '/nodes/power_state', { token, body: { selector: 'a[rack] ==', state: 'power on' } })).status, 400);
  t.is((await h.call('GET', '/nodes/power_state?nodes=nope', { token })).status, 404);
});
