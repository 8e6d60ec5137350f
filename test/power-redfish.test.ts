// Power control through the API against a Redfish BMC serving DMTF's rackmount1 mockup: discovery
// of the system, reset types from AllowableValues, sessions reused and deleted, Basic fallback,
// boot override read back (and a BMC that silently reverts it), 5xx and slow answers, wrong
// password, and the per-node TLS policy for a self-signed certificate.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHead, type TestHead } from './helpers/head.js';
import { BMC_PASSWORD, BMC_USER, startRedfishBmc, type RedfishBmc } from './power/redfish-bmc.js';

interface Setup {
  h: TestHead;
  token: string;
  bmc: RedfishBmc;
}

async function setup(t: ExecutionContext, tls?: { key: string; cert: string }): Promise<Setup> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const bmc = await startRedfishBmc({ tls });
  t.teardown(() => bmc.close());
  return { h, token, bmc };
}

let macs = 0;
async function addNode(s: Setup, uri: string, attributes: Record<string, string> = {}): Promise<string> {
  const mac = `52:54:00:02:00:${(macs++).toString(16).padStart(2, '0')}`;
  const res = await s.h.call('POST', '/nodes', { token: s.token, body: { mac, power_uri: uri, attributes: { rf_user: BMC_USER, rf_pass: BMC_PASSWORD, ...attributes } } });
  if (res.status !== 200) throw new Error(JSON.stringify(res.json));
  return res.json.data as string;
}

const httpUri = (bmc: RedfishBmc, path = '') => `redfish+http://<rf_user>:<rf_pass>@127.0.0.1:${bmc.port}${path}`;

test('on, off, cycle, soft and steps via ComputerSystem.Reset with the allowed reset types; one session, deleted on close', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, httpUri(s.bmc));
  const put = (body: unknown) => s.h.call('PUT', `/node/${node}/power_state`, { token: s.token, body });
  const state = async () => (await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data;

  t.is(await state(), 'on', 'the mockup system is on');
  t.deepEqual((await put({ state: 'power off', force: true })).json.data, { state: 'off' });
  t.is(s.bmc.system().PowerState, 'Off');
  t.deepEqual((await put({ state: 'power on' })).json.data, { state: 'on' });
  // The mockup allows no PowerCycle: the next candidate, ForceRestart, is used.
  t.is((await put({ state: 'power cycle' })).status, 200);
  t.is((await put({ state: 'power reset' })).status, 200);
  t.deepEqual((await put({ state: 'power soft' })).json.data, { state: 'off' });
  t.deepEqual(s.bmc.resets, ['ForceOff', 'On', 'ForceRestart', 'ForceRestart', 'GracefulShutdown']);

  s.bmc.system().PowerState = 'On';
  s.bmc.faults.ignoreGraceful = true;
  const res = await put({ steps: ['soft', 'wait 1', 'off'] });
  t.deepEqual(res.json.data, { state: 'off' });
  t.deepEqual(s.bmc.resets.slice(-2), ['GracefulShutdown', 'ForceOff']);

  t.is(s.bmc.sessionsCreated, 1, 'the session is reused');
  t.is(s.bmc.basicRequests, 0);
  await s.h.head.power.close();
  t.is(s.bmc.sessionsDeleted, 1, 'the session is deleted on shutdown');
});

test('Basic auth when the BMC has no session service; system id from the URI; wrong password', async (t) => {
  const s = await setup(t);
  s.bmc.faults.noSessions = true;
  const node = await addNode(s, httpUri(s.bmc, '/437XR1138R2'));
  t.is((await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data, 'on');
  t.true(s.bmc.basicRequests > 0);

  const missing = await addNode(s, httpUri(s.bmc, '/1'));
  const res = await s.h.call('GET', `/node/${missing}/power_state?detail=1`, { token: s.token });
  t.is((res.json.data as { state: string }).state, 'unknown');
  t.regex((res.json.data as { reason: string }).reason, /no system '1'.*437XR1138R2/);

  s.bmc.faults.noSessions = false;
  const wrong = await addNode(s, httpUri(s.bmc), { rf_pass: 'wrong' });
  const bad = await s.h.call('GET', `/node/${wrong}/power_state?detail=1`, { token: s.token });
  t.deepEqual(bad.json.data, { state: 'unknown', reason: 'login refused (HTTP 401): wrong user or password' });
  t.false(JSON.stringify(bad.json).includes(BMC_PASSWORD));
});

test('boot override set to PXE and disk is read back; a BMC that silently reverts it is reported', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, httpUri(s.bmc));
  (s.bmc.system().Boot as Record<string, unknown>).BootSourceOverrideTarget = 'None';
  let res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'pxe' } });
  t.is(res.json.data, 'pxe');
  t.is((s.bmc.system().Boot as Record<string, unknown>).BootSourceOverrideTarget, 'Pxe');
  res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'disk' } });
  t.is(res.json.data, 'disk');
  t.is((s.bmc.system().Boot as Record<string, unknown>).BootSourceOverrideTarget, 'Hdd');
  t.is((await s.h.call('GET', `/node/${node}/bootdev`, { token: s.token })).json.data, 'disk');

  s.bmc.faults.revertBoot = true;
  res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'pxe' } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /did not keep BootSourceOverrideTarget=Pxe/);
});

test('5xx and slow answers give unknown with the reason within redfish_timeout_ms', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, httpUri(s.bmc), { redfish_timeout_ms: '800' });
  t.is((await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data, 'on');
  s.bmc.faults.errors5xx = 1;
  let res = await s.h.call('GET', `/node/${node}/power_state?detail=1`, { token: s.token });
  t.is((res.json.data as { state: string }).state, 'unknown');
  t.regex((res.json.data as { reason: string }).reason, /HTTP 503/);

  s.bmc.faults.delayMs = 3000;
  const started = Date.now();
  res = await s.h.call('GET', `/node/${node}/power_state?detail=1`, { token: s.token });
  t.true(Date.now() - started < 2500, 'bounded by the node\'s timeout');
  t.deepEqual(res.json.data, { state: 'unknown', reason: 'BMC did not answer within 800 ms' });
});

test('TLS: a self-signed BMC certificate is refused by default and accepted with redfish_tls=insecure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-rf-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=bmc.test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const s = await setup(t, { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') });
  const uri = `redfish://<rf_user>:<rf_pass>@127.0.0.1:${s.bmc.port}`;
  const strict = await addNode(s, uri);
  const res = await s.h.call('GET', `/node/${strict}/power_state?detail=1`, { token: s.token });
  t.is((res.json.data as { state: string }).state, 'unknown');
  t.regex((res.json.data as { reason: string }).reason, /SELF_SIGNED|certificate/i);
  const lax = await addNode(s, uri, { redfish_tls: 'insecure' });
  t.is((await s.h.call('GET', `/node/${lax}/power_state`, { token: s.token })).json.data, 'on');
});
