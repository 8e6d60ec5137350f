// Power control through the API against a Redfish BMC serving DMTF's rackmount1 mockup, and made to
// behave like awkward real BMCs (test/power/redfish-bmc.ts): discovery of the system, reset types
// from AllowableValues or an ActionInfo, sessions reused and deleted, Basic auth without a session
// service, wrong credentials told apart, actions applied late (confirmed or pending), boot override
// read back with its one-time flag, refused graceful shutdown, errors with ExtendedInfo, 5xx, slow
// and hung BMCs, certificates refused with the reason, settings checked on write, redfish_uri.
import test, { type ExecutionContext } from 'ava';
import { request as httpsRequest } from 'node:https';
import { startTestHead, type TestHead } from './helpers/head.js';
import { transportFailure } from '../src/power/redfish.js';
import { BMC_PASSWORD, BMC_USER, selfSignedCertificate, startRedfishBmc, type BmcFaults, type RedfishBmc } from './power/redfish-bmc.js';

interface Setup {
  h: TestHead;
  token: string;
  bmc: RedfishBmc;
}

async function setup(t: ExecutionContext, tls?: { key: string; cert: string }, faults: Partial<BmcFaults> = {}): Promise<Setup> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const bmc = await startRedfishBmc({ tls, faults });
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
  const put = (body: unknown) => s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body });
  const state = async () => (await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data;

  t.is(await state(), 'on', 'the mockup system is on');
  t.deepEqual((await put({ state: 'power off', force: true })).json.data, { state: 'off', outcome: 'done' });
  t.is(s.bmc.system().PowerState, 'Off');
  t.deepEqual((await put({ state: 'power on' })).json.data, { state: 'on', outcome: 'done' });
  // The mockup allows no PowerCycle: the next candidate, ForceRestart, is used.
  t.is((await put({ state: 'power cycle' })).status, 200);
  t.is((await put({ state: 'power reset' })).status, 200);
  t.deepEqual((await put({ state: 'power soft' })).json.data, { state: 'off', outcome: 'done' });
  t.deepEqual(s.bmc.resets, ['ForceOff', 'On', 'ForceRestart', 'ForceRestart', 'GracefulShutdown']);

  s.bmc.system().PowerState = 'On';
  s.bmc.faults.ignoreGraceful = true;
  const res = await put({ steps: ['soft', 'wait 1', 'off'] });
  t.deepEqual(res.json.data, { state: 'off', outcome: 'done' });
  t.deepEqual(s.bmc.resets.slice(-2), ['GracefulShutdown', 'ForceOff']);

  t.is(s.bmc.sessionsCreated, 1, 'the session is reused');
  t.is(s.bmc.basicRequests, 0);
  await s.h.head.power.close();
  t.is(s.bmc.sessionsDeleted, 1, 'the session is deleted on shutdown');
});

test('a BMC without a session service gets Basic auth; "wrong user or password" only when a read with the credentials is refused', async (t) => {
  const s = await setup(t);
  s.bmc.faults.noSessionService = true;
  const node = await addNode(s, httpUri(s.bmc, '/437XR1138R2'));
  t.deepEqual((await s.h.call('GET', `/node/${node}/power_state?detail=1`, { token: s.token })).json.data, { state: 'on' });
  t.true(s.bmc.basicRequests > 0);
  t.is(s.bmc.sessionsCreated, 0);

  const missing = await addNode(s, httpUri(s.bmc, '/1'));
  let res = await s.h.call('GET', `/node/${missing}/power_state?detail=1`, { token: s.token });
  t.is((res.json.data as { state: string }).state, 'unknown');
  t.regex((res.json.data as { reason: string }).reason, /no system '1'.*437XR1138R2/);

  const wrongHere = await addNode(s, httpUri(s.bmc), { rf_pass: 'wrong' });
  res = await s.h.call('GET', `/node/${wrongHere}/power_state?detail=1`, { token: s.token });
  t.deepEqual(res.json.data, { state: 'unknown', reason: 'BMC refused the credentials (HTTP 401: authentication required): wrong user or password' });

  // A BMC with a session service: the same verdict for a wrong password, and a session for the right one.
  const other = await startRedfishBmc();
  t.teardown(() => other.close());
  const wrong = await addNode(s, httpUri(other), { rf_pass: 'wrong' });
  const bad = await s.h.call('GET', `/node/${wrong}/power_state?detail=1`, { token: s.token });
  t.deepEqual(bad.json.data, { state: 'unknown', reason: 'BMC refused the credentials (HTTP 401: authentication required): wrong user or password' });
  t.false(JSON.stringify(bad.json).includes(BMC_PASSWORD));
  const right = await addNode(s, httpUri(other));
  t.is((await s.h.call('GET', `/node/${right}/power_state`, { token: s.token })).json.data, 'on');
  t.is(other.sessionsCreated, 1);

  // A session service that refuses to make sessions (405): Basic.
  const refusing = await startRedfishBmc({ faults: { refuseSessions: true } });
  t.teardown(() => refusing.close());
  t.is((await s.h.call('GET', `/node/${await addNode(s, httpUri(refusing))}/power_state`, { token: s.token })).json.data, 'on');
  t.true(refusing.basicRequests > 0);
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

test('TLS: a refused certificate says why and which setting accepts it; redfish_tls=insecure accepts a self-signed one', async (t) => {
  const certificate = selfSignedCertificate('bmc.wrong.example');
  const s = await setup(t, certificate);
  const uri = `redfish://<rf_user>:<rf_pass>@127.0.0.1:${s.bmc.port}`;
  const strict = await addNode(s, uri);
  const res = await s.h.call('GET', `/node/${strict}/power_state?detail=1`, { token: s.token });
  t.deepEqual(res.json.data, {
    state: 'unknown',
    reason: 'BMC certificate refused: self-signed (DEPTH_ZERO_SELF_SIGNED_CERT); to accept it, add its CA to NODE_EXTRA_CA_CERTS, or set redfish_tls=insecure on the node or a group',
  });
  const lax = await addNode(s, uri, { redfish_tls: 'insecure' });
  t.is((await s.h.call('GET', `/node/${lax}/power_state`, { token: s.token })).json.data, 'on');

  // The same BMC with its certificate trusted (as NODE_EXTRA_CA_CERTS would), reached under
  // another name than the one it holds: the handshake's own error, as keel words it.
  const handshake = await new Promise<{ code?: string; message: string }>((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port: s.bmc.port, path: '/redfish/v1/', ca: certificate.cert }, () => resolve({ message: 'accepted' }));
    req.on('error', resolve).end();
  });
  t.is(transportFailure(handshake, 5000),
    'BMC certificate refused: host name mismatch (ERR_TLS_CERT_ALTNAME_INVALID); to accept it, use a host name the certificate names in the node\'s power_uri, or set redfish_tls=insecure on the node or a group');
});

test('power actions a BMC applies late: the answer waits for the state, or says the action is only accepted', async (t) => {
  const s = await setup(t);
  s.bmc.faults.actionDelayMs = 1500;
  const node = await addNode(s, httpUri(s.bmc));
  const put = (id: string, body: unknown) => s.h.call('PUT', `/node/${id}/power_state?detail=1`, { token: s.token, body });
  let started = Date.now();
  t.deepEqual((await put(node, { state: 'power off', force: true })).json.data, { state: 'off', outcome: 'done' });
  t.true(Date.now() - started >= 1400, 'waited for the BMC to apply the action');
  t.deepEqual((await put(node, { state: 'power on' })).json.data, { state: 'on', outcome: 'done' });

  s.bmc.faults.actionDelayMs = 4000;
  const impatient = await addNode(s, httpUri(s.bmc), { power_confirm_wait_s: '1' });
  started = Date.now();
  t.deepEqual((await put(impatient, { state: 'power off', force: true })).json.data,
    { state: 'on', outcome: 'pending', reason: 'accepted by the BMC, not yet off after 1 s' });
  t.true(Date.now() - started < 3000);

  // Bulk: each node's own outcome.
  const bmcs = [s.bmc];
  for (let i = 0; i < 2; i++) {
    const bmc = await startRedfishBmc({ faults: { actionDelayMs: 1500 } });
    t.teardown(() => bmc.close());
    bmcs.push(bmc);
  }
  s.bmc.faults.actionDelayMs = 1500;
  await new Promise((resolve) => setTimeout(resolve, 4000));
  for (const bmc of bmcs) bmc.system().PowerState = 'Off';
  const uids = [node, ...await Promise.all(bmcs.slice(1).map((bmc) => addNode(s, httpUri(bmc))))];
  const res = await s.h.call('PUT', '/nodes/power_state', { token: s.token, body: { nodes: uids, state: 'power on' } });
  const data = res.json.data as { ok: number; pending: number; failed: number; results: { uid: string; state: string; outcome: string }[] };
  t.like(data, { ok: 3, pending: 0, failed: 0 });
  t.deepEqual(data.results.map((r) => [r.uid, r.state, r.outcome]), uids.map((uid) => [uid, 'on', 'done']));
});

test('a wait step reports the last error it saw, not "still not on"', async (t) => {
  const s = await setup(t);
  s.bmc.system().PowerState = 'Off';
  s.bmc.faults.actionDelayMs = 60_000;
  const node = await addNode(s, httpUri(s.bmc), { redfish_timeout_ms: '500' });
  const pending = s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { steps: ['on', 'wait 4'] } });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await s.bmc.close();
  const res = await pending;
  t.regex(res.json.reason!, /wait 4: BMC unreachable: ECONNREFUSED$/);
  t.is(res.status, 502);
  t.is(res.json.reason, `BMC http://127.0.0.1:${s.bmc.port}: wait 4: BMC unreachable: ECONNREFUSED`);
});

test('one rule for errors: a node without a BMC is 400 on every route; a failing BMC is 502 naming the BMC, the step and the cause', async (t) => {
  const s = await setup(t);
  const bare = (await s.h.call('POST', '/nodes', { token: s.token, body: { mac: '52:54:00:02:01:00' } })).json.data as string;
  const name = ((await s.h.call('GET', `/node/${bare}`, { token: s.token })).json.data as { name: string }).name;
  const reason = `Node ${name}: node has no power_uri (nor redfish_uri)`;
  for (const [method, path, body] of [['PUT', 'power_state', { state: 'power on' }], ['PUT', 'bootdev', { device: 'pxe' }], ['GET', 'bootdev', undefined]] as const) {
    const res = await s.h.call(method, `/node/${bare}/${path}`, { token: s.token, body });
    t.deepEqual([res.status, res.json.reason], [400, reason], `${method} ${path}`);
  }

  s.bmc.faults.extendedInfo = true;
  const node = await addNode(s, httpUri(s.bmc));
  s.bmc.faults.errors5xx = 2;
  let res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power off', force: true } });
  t.is(res.status, 502);
  t.is(res.json.reason, `BMC ${s.bmc.url}: off: GET /redfish/v1/Systems: HTTP 503: A general error has occurred. See ExtendedInfo for more information. (service temporarily unavailable See the BMC documentation.)`);
  s.bmc.faults.errors5xx = 0;
  s.bmc.faults.refuseGraceful = true;
  res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power soft' } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /^BMC http:\/\/127\.0\.0\.1:\d+: soft: Reset GracefulShutdown: HTTP 400: .*The operating system did not accept the graceful shutdown request\./);
  s.bmc.faults.errors5xx = 1;
  res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'pxe' } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /^BMC http:\/\/127\.0\.0\.1:\d+: bootdev pxe: .*HTTP 503/);
});

test('a one-time boot override the BMC keeps as continuous is reported', async (t) => {
  const s = await setup(t, undefined, { bootOnceBecomesContinuous: true });
  const node = await addNode(s, httpUri(s.bmc));
  const res = await s.h.call('PUT', `/node/${node}/bootdev`, { token: s.token, body: { device: 'pxe' } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /reads back BootSourceOverrideTarget=Pxe, BootSourceOverrideEnabled=Continuous \(the BMC keeps a one-time override as continuous/);

  // Asked for knowingly, a continuous override is what the node wants.
  const knowing = await addNode(s, httpUri(s.bmc), { redfish_quirks: 'boot-continuous' });
  t.is((await s.h.call('PUT', `/node/${knowing}/bootdev`, { token: s.token, body: { device: 'pxe' } })).json.data, 'pxe');
});

test('quirks combine: a comma list applies each set in order', async (t) => {
  const s = await setup(t);
  const knowing = await addNode(s, httpUri(s.bmc), { redfish_quirks: 'boot-continuous,basic-auth' });
  const ok = await s.h.call('PUT', `/node/${knowing}/bootdev`, { token: s.token, body: { device: 'disk' } });
  t.is(ok.status, 200, JSON.stringify(ok.json));
  t.is(ok.json.data, 'disk');
  t.like(s.bmc.system().Boot, { BootSourceOverrideTarget: 'Hdd', BootSourceOverrideEnabled: 'Continuous' });
  t.true(s.bmc.basicRequests > 0, 'basic-auth applies too');
});

test('power settings are checked when written: 400 naming the allowed values', async (t) => {
  const s = await setup(t);
  const node = await addNode(s, httpUri(s.bmc));
  const patch = (attributes: Record<string, string>) => s.h.call('PATCH', `/node/${node}/attributes`, { token: s.token, body: attributes });
  let res = await patch({ redfish_tls: 'off' });
  t.deepEqual([res.status, res.json.reason], [400, `Field 'attributes': attribute redfish_tls must be one of verify, insecure, got 'off'`]);
  res = await patch({ redfish_quirks: 'basic' });
  t.deepEqual([res.status, res.json.reason], [400, `Field 'attributes': attribute redfish_quirks must be a comma list of hpe, basic-auth, boot-continuous (unknown: basic), got 'basic'`]);
  res = await s.h.call('POST', '/attribs', { token: s.token, body: { name: 'slow', attributes: { ipmi_session_timeout_ms: 'soon' } } });
  t.deepEqual([res.status, res.json.reason], [400, `Field 'attributes': attribute ipmi_session_timeout_ms must be an integer 100..600000, got 'soon'`]);
  res = await s.h.call('PATCH', `/node/${node}`, { token: s.token, body: { attributes: { power_confirm_wait_s: '-1' } } });
  t.is(res.status, 400);
  t.is((await patch({ redfish_tls: 'insecure', redfish_quirks: 'hpe, boot-continuous', power_confirm_wait_s: '5' })).status, 200);
});

test('redfish_uri: every documented form works, the effective URI is shown, errors name the field', async (t) => {
  const s = await setup(t);
  const create = async (fields: Record<string, unknown>) => {
    const res = await s.h.call('POST', '/nodes', { token: s.token, body: { mac: `52:54:00:02:02:${(macs++).toString(16).padStart(2, '0')}`, attributes: { rf_user: BMC_USER, rf_pass: BMC_PASSWORD }, ...fields } });
    return res.json.data as string;
  };
  const plain = await create({ redfish_uri: `http://<rf_user>:<rf_pass>@127.0.0.1:${s.bmc.port}/redfish/v1/Systems/437XR1138R2` });
  t.is((await s.h.call('GET', `/node/${plain}/power_state`, { token: s.token })).json.data, 'on');
  const shown = await s.h.call('GET', `/node/${plain}/power_uri`, { token: s.token });
  t.like(shown.json.data, { field: 'redfish_uri', unparsed: `http://${BMC_USER}:${BMC_PASSWORD}@127.0.0.1:${s.bmc.port}/redfish/v1/Systems/437XR1138R2` });
  const root = await create({ redfish_uri: `http://<rf_user>:<rf_pass>@127.0.0.1:${s.bmc.port}/redfish/v1` });
  t.is((await s.h.call('GET', `/node/${root}/power_state`, { token: s.token })).json.data, 'on');
  const wrongPath = await create({ redfish_uri: `http://<rf_user>:<rf_pass>@127.0.0.1:${s.bmc.port}/status` });
  t.deepEqual((await s.h.call('GET', `/node/${wrongPath}/power_state?detail=1`, { token: s.token })).json.data,
    { state: 'unknown', reason: `redfish_uri: path must be /redfish/v1/Systems/<id> (or none), got '/status'` });
  const unfilled = await create({ redfish_uri: 'redfish+https://<rf_user>:<nope>@<bmc>' });
  t.deepEqual((await s.h.call('GET', `/node/${unfilled}/power_state?detail=1`, { token: s.token })).json.data,
    { state: 'unknown', reason: 'redfish_uri has placeholders without a value' });
  // power_uri wins over redfish_uri.
  const both = await create({ power_uri: httpUri(s.bmc), redfish_uri: 'https://192.0.2.1' });
  t.like((await s.h.call('GET', `/node/${both}/power_uri`, { token: s.token })).json.data, { field: 'power_uri' });
  t.is((await s.h.call('GET', `/node/${both}/power_state`, { token: s.token })).json.data, 'on');
});

test('a hung BMC costs one timeout: PUT and GET answer within redfish_timeout_ms', async (t) => {
  const s = await setup(t, undefined, { hang: true });
  const node = await addNode(s, httpUri(s.bmc), { redfish_timeout_ms: '1000' });
  let started = Date.now();
  const res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power on' } });
  const putMs = Date.now() - started;
  t.true(putMs < 1800, `PUT took ${putMs} ms`);
  t.is(res.status, 502);
  t.is(res.json.reason, `BMC ${s.bmc.url}: on: BMC did not answer within 1000 ms`);
  started = Date.now();
  t.deepEqual((await s.h.call('GET', `/node/${node}/power_state?detail=1`, { token: s.token })).json.data, { state: 'unknown', reason: 'BMC did not answer within 1000 ms' });
  t.true(Date.now() - started < 1800);
});

test('a refused graceful shutdown falls back to the forced off at once', async (t) => {
  const s = await setup(t, undefined, { refuseGraceful: true, extendedInfo: true });
  const node = await addNode(s, httpUri(s.bmc), { power_soft_wait_s: '20' });
  const started = Date.now();
  const res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power off' } });
  t.is(res.status, 200, JSON.stringify(res.json));
  t.like(res.json.data, { state: 'off', outcome: 'done' });
  t.regex((res.json.data as { reason: string }).reason, /^soft refused \(Reset GracefulShutdown: HTTP 400: .*\(The operating system did not accept the graceful shutdown request\. See the BMC documentation\.\)\), fell back to the next steps$/);
  t.deepEqual(s.bmc.resets, ['ForceOff']);
  t.true(Date.now() - started < 5000, 'did not wait power_soft_wait_s for a shutdown that was refused');
});

test('reset types listed only in an ActionInfo are honoured', async (t) => {
  const s = await setup(t, undefined, { resetActionInfo: ['On', 'ForceOff', 'PowerCycle'] });
  const node = await addNode(s, httpUri(s.bmc));
  let res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power reset' } });
  t.is(res.status, 200, JSON.stringify(res.json));
  t.deepEqual(s.bmc.resets, ['PowerCycle'], 'ForceRestart, the first choice, is not allowed');
  res = await s.h.call('PUT', `/node/${node}/power_state?detail=1`, { token: s.token, body: { state: 'power soft' } });
  t.is(res.status, 502);
  t.regex(res.json.reason!, /system allows no reset type for 'soft' \(wanted one of GracefulShutdown, PushPowerButton; allows On, ForceOff, PowerCycle\)/);
});

test('a refusal shows the BMC\'s @Message.ExtendedInfo, where it says why', async (t) => {
  const s = await setup(t, undefined, { extendedInfo: true });
  const node = await addNode(s, httpUri(s.bmc));
  t.is((await s.h.call('GET', `/node/${node}/power_state`, { token: s.token })).json.data, 'on');
  s.bmc.faults.errors5xx = 1;
  t.deepEqual((await s.h.call('GET', `/node/${node}/power_state?detail=1`, { token: s.token })).json.data, {
    state: 'unknown',
    reason: 'GET /redfish/v1/Systems/437XR1138R2: HTTP 503: A general error has occurred. See ExtendedInfo for more information. (service temporarily unavailable See the BMC documentation.)',
  });
});
