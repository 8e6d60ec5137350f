// A node's reported status and what keel derives from when reports arrive (issue 15, item 3):
// `status_period` on /cluster, `last_report` and `state` (up / down after three missed periods /
// unknown) in GET /node/<id>/status and in the selector language, and reports that can neither
// fake the derived fields nor grow the store's change log.
import test from 'ava';
import { startTestHead, type TestHead } from './helpers/head.js';

/** A head with one node at 127.0.0.1 (the address this test's requests come from) and one that never reports. */
async function headWithNodes(t: Parameters<typeof startTestHead>[0]): Promise<{ h: TestHead; token: string; uid: string; silent: string }> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const [uid, silent] = (await h.call('POST', '/nodes', { token, body: [{ mac: '52:54:00:aa:bb:01' }, { mac: '52:54:00:aa:bb:02' }] })).json.data as string[];
  t.is(((await h.call('GET', `/node/${uid}`, { token })).json.data as { ip: string }).ip, '127.0.0.1');
  return { h, token, uid: uid!, silent: silent! };
}

test('status_period is set through PATCH /cluster within 5..86400 seconds, default 60', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const period = async () => ((await h.call('GET', '/cluster', { token })).json.data as { status_period: number }).status_period;
  t.is(await period(), 60);
  t.is((await h.call('PATCH', '/cluster', { token, body: { status_period: 30 } })).status, 200);
  t.is(await period(), 30);
  for (const bad of [4, 86401, 1.5, -60, 0]) {
    const res = await h.call('PATCH', '/cluster', { token, body: { status_period: bad } });
    t.is(res.status, 400, String(bad));
    t.is(res.json.reason, `Field 'status_period' must be an integer 5..86400 (seconds; got ${bad})`);
  }
  const text = await h.call('PATCH', '/cluster', { token, body: { status_period: '60' } });
  t.is(text.status, 400);
  t.regex(text.json.reason!, /status_period/);
  t.is(await period(), 30, 'a refused value changes nothing');
  t.is((await h.call('PATCH', '/cluster', { token, body: { status_period: 86400 } })).status, 200);
  t.is(await period(), 86400);
  t.is((await h.call('PATCH', '/cluster', { token, body: { status_period: null } })).status, 200);
  t.is(await period(), 60, 'null goes back to the default');
});

test('state is unknown before the first report, up while reports come, down after three missed periods', async (t) => {
  const { h, token, uid, silent } = await headWithNodes(t);
  const status = async (id: string) => (await h.call('GET', `/node/${id}/status`, { token })).json.data as Record<string, unknown>;
  t.deepEqual(await status(uid), { last_report: null, state: 'unknown' });

  let offset = 0;
  const advance = (seconds: number) => {
    h.advance(seconds);
    offset += seconds;
  };
  const before = Date.now() + offset * 1000;
  const report = await h.call('PUT', '/node/putstatus', { body: { status: { load_avg: '0.10', boot_id: 'b1' }, hardware: { ram_total: 2_000_000_000 } } });
  t.is(report.status, 200);
  const after = Date.now() + offset * 1000;
  const reported = await status(uid);
  t.is(reported.state, 'up');
  t.is(reported.load_avg, '0.10');
  const at = Date.parse(reported.last_report as string);
  t.true(at >= before - 1 && at <= after + 1, `last_report ${String(reported.last_report)} is the server's time of the report`);

  advance(179); // almost three periods of 60 s: not yet missed
  t.is((await status(uid)).state, 'up');
  advance(2);
  t.is((await status(uid)).state, 'down');
  t.is((await status(uid)).last_report, reported.last_report, 'last_report stays the time of the last report');
  t.is((await status(silent)).state, 'unknown');

  // A shorter period takes effect at once.
  t.is((await h.call('PUT', '/node/putstatus', { body: { status: { load_avg: '0.20' } } })).status, 200);
  t.is((await status(uid)).state, 'up');
  t.is((await h.call('PATCH', '/cluster', { token, body: { status_period: 10 } })).status, 200);
  advance(31);
  t.is((await status(uid)).state, 'down');
  // A report with only hardware is a report too.
  t.is((await h.call('PUT', '/node/putstatus', { body: { hardware: { ram_total: 2_000_000_000 } } })).status, 200);
  t.is((await status(uid)).state, 'up');
});

test('the selector language sees the derived state', async (t) => {
  const { h, token, uid, silent } = await headWithNodes(t);
  const members = async (selector: string) => {
    const name = `g${Math.random().toString(36).slice(2, 10)}`;
    t.is((await h.call('POST', '/dyngroups', { token, body: { name, selector } })).status, 200, selector);
    return (await h.call('GET', `/dyngroup/${name}/nodes`, { token })).json.data as string[];
  };
  t.deepEqual((await members('s[state] == "unknown"')).sort(), [uid, silent].sort());
  t.is((await h.call('PUT', '/node/putstatus', { body: { status: { load_avg: '0.1' } } })).status, 200);
  t.deepEqual(await members('s[state] == "up"'), [uid]);
  t.deepEqual(await members('s[state] == "unknown"'), [silent]);
  t.deepEqual(await members('s[last_report]'), [uid]);
  h.advance(181);
  t.deepEqual(await members('s[state] == "down"'), [uid]);
  t.deepEqual(await members('s[state] == "up"'), []);
  // Power selections resolve selectors the same way.
  const selected = await h.call('GET', `/nodes/power_state?selector=${encodeURIComponent('s[state] == "down"')}`, { token });
  t.is(selected.status, 200);
  t.deepEqual((selected.json.data as { uid: string }[]).map((node) => node.uid), [uid]);
});

test('a report cannot fake the derived fields, and nobody writes the report time', async (t) => {
  const { h, token, uid } = await headWithNodes(t);
  for (const key of ['state', 'last_report']) {
    const res = await h.call('PUT', '/node/putstatus', { body: { status: { [key]: 'up', load_avg: '0.1' } } });
    t.is(res.status, 400, key);
    t.is(res.json.reason, `Field 'status': ${key} is derived by keel from when reports arrive, not reported`);
  }
  const both = await h.call('POST', '/node/putstatus', { token, body: { uid, status: { state: 'up', last_report: '2030-01-01T00:00:00Z' } } });
  t.is(both.status, 400, 'not with a token either');
  t.is(both.json.reason, `Field 'status': state, last_report are derived by keel from when reports arrive, not reported`);
  t.deepEqual((await h.call('GET', `/node/${uid}/status`, { token })).json.data, { last_report: null, state: 'unknown' }, 'refused reports record nothing');
  const patch = await h.call('PATCH', `/node/${uid}`, { token, body: { reported_at: 2e9 } });
  t.is(patch.status, 400);
  t.is(patch.json.reason, 'Unhandled parameter(s): reported_at');
  t.false('reported_at' in ((await h.call('GET', `/node/${uid}`, { token })).json.data as object), 'the report time is internal');
  // An admin's POST /node/putstatus is a report.
  t.is((await h.call('POST', '/node/putstatus', { token, body: { uid, status: { load_avg: '0.3' } } })).status, 200);
  t.is(((await h.call('GET', `/node/${uid}/status`, { token })).json.data as { state: string }).state, 'up');
});

test('reports do not grow the change log: one entry per node however often it reports', async (t) => {
  const { h, uid } = await headWithNodes(t);
  t.is((await h.call('PUT', '/node/putstatus', { body: { status: { n: 0 } } })).status, 200);
  const entries = h.head.store.changesSince(0).length;
  const seqBefore = h.head.store.lastSeq;
  for (let n = 1; n <= 100; n++) t.is((await h.call('PUT', '/node/putstatus', { body: { status: { n } } })).status, 200);
  t.is(h.head.store.lastSeq, seqBefore + 100, 'each report is a committed change');
  t.is(h.head.store.changesSince(0).length, entries, 'but the log keeps only the latest per object');
  t.is(h.head.store.changesSince(0).filter((change) => change.uid === uid).length, 1);
  t.deepEqual(h.head.store.check(), []);
});
