// Spec 001's power examples (issue 24, item 2) against a Redfish BMC (test/power/redfish-bmc.ts):
// GET /node/n3/power_state → {"success": true, "data": "on"}; PUT with {"state":"power off"} →
// {"success": true}, nothing more unless ?detail=1 asks; every field optional as the spec says,
// and a body that names no action a 400 saying what to send.
import test from 'ava';
import { startTestHead } from './helpers/head.js';
import { BMC_PASSWORD, BMC_USER, startRedfishBmc } from './power/redfish-bmc.js';

async function setup(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const bmc = await startRedfishBmc({});
  t.teardown(() => bmc.close());
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const node = await call('POST', '/nodes', {
    mac: '11:22:33:44:55:66',
    power_uri: `redfish+http://<rf_user>:<rf_pass>@127.0.0.1:${bmc.port}`,
    attributes: { rf_user: BMC_USER, rf_pass: BMC_PASSWORD },
  });
  if (node.status !== 200) throw new Error(JSON.stringify(node.json));
  const name = ((await call('GET', `/node/${node.json.data as string}`)).json.data as { name: string }).name;
  return { call, bmc, name };
}

test('the spec\'s power_state examples word for word; short states; ?detail=1; no action is a 400 with a reason', async (t) => {
  const { call, bmc, name } = await setup(t);
  t.deepEqual((await call('GET', `/node/${name}/power_state`)).json, { success: true, data: 'on' });
  t.deepEqual((await call('PUT', `/node/${name}/power_state`, { state: 'power off' })).json, { success: true });
  t.is(bmc.system().PowerState, 'Off');
  t.deepEqual((await call('GET', `/node/${name}/power_state`)).json, { success: true, data: 'off' });

  // The short forms scripts send, and the outcome on request.
  t.deepEqual((await call('PUT', `/node/${name}/power_state?detail=1`, { state: 'on' })).json, { success: true, data: { state: 'on', outcome: 'done' } });
  t.is(bmc.system().PowerState, 'On');
  t.deepEqual((await call('PUT', `/node/${name}/power_state`, { state: 'off', force: true })).json, { success: true });
  t.is(bmc.system().PowerState, 'Off');
  t.deepEqual(bmc.resets, ['GracefulShutdown', 'On', 'ForceOff']);

  // "Accepts an object with state and force fields (all optional)": none names an action.
  const resetsBefore = bmc.resets.length;
  const empty = await call('PUT', `/node/${name}/power_state`, {});
  t.is(empty.status, 400);
  t.is(empty.json.reason, "Nothing to do: send 'state' (power on, power off, power cycle, power reset, power soft) or 'steps'");
  const forceOnly = await call('PUT', `/node/${name}/power_state`, { force: true });
  t.is(forceOnly.status, 400);
  t.is(forceOnly.json.reason, "Nothing to do: send 'state' (power on, power off, power cycle, power reset, power soft) or 'steps'; 'force' only modifies 'state': \"power off\"");
  const unknown = await call('PUT', `/node/${name}/power_state`, { state: 'power sideways' });
  t.is(unknown.status, 400);
  t.regex(unknown.json.reason!, /^Field 'state' must be one of power on, power off, power cycle, power reset, power soft, on, off, cycle, reset, soft$/);
  t.is(bmc.resets.length, resetsBefore, 'nothing reached the BMC');
});
