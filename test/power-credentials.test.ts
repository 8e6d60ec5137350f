// BMC credentials (issue 19, items 5 and 6): every GET route of the API, called as role.authuser,
// answers without a BMC password — power URIs and the attributes that fill their user or password
// are masked, also in rendered kickstarts — while role.poweradmin sees them. And a node cannot
// point its own power_uri at a host of its choosing: placeholders are filled only from attributes
// a node cannot write, never from the status or hardware it reports.
import test from 'ava';
import { allRoutes } from '../src/api/routes/index.js';
import { startTestHead } from './helpers/head.js';

const GROUP_PASSWORD = 'grp-bmc-secret-71';
const NODE_PASSWORD = 'node-bmc-secret-72';
const REDFISH_PASSWORD = 'rf-bmc-secret-73';
const SECRETS = [GROUP_PASSWORD, NODE_PASSWORD, REDFISH_PASSWORD];

test('every GET route answers role.authuser without BMC passwords; role.poweradmin sees them', async (t) => {
  const h = await startTestHead(t);
  const { access_token: admin } = await h.login();
  const call = async (method: string, path: string, body?: unknown, token = admin) => {
    const res = await h.call(method, path, { token, body });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${JSON.stringify(res.json)}`);
    return res.json.data;
  };
  await call('POST', '/admins', { name: 'reader', password: 'reader-password', roles: ['role.authuser'] });
  await call('POST', '/admins', { name: 'operator', password: 'operator-password', roles: ['role.poweradmin'] });
  const reader = (await h.login('reader', 'reader-password')).access_token;
  const operator = (await h.login('operator', 'operator-password')).access_token;

  // Short timeouts: the BMCs below do not exist (power_state routes answer unknown quickly).
  await call('POST', '/attribs', { name: 'bmc-creds', attributes: { ipmi_user: 'keeladmin', ipmi_pass: GROUP_PASSWORD, ipmi_session_timeout_ms: '200', redfish_timeout_ms: '200' } });
  await call('PATCH', '/cluster', { default_group: 'bmc-creds' });
  const [templated, literal, redfish] = await call('POST', '/nodes', [
    { mac: '52:54:00:03:00:01', power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc>', attributes: { bmc: '127.0.0.1:9' } },
    { mac: '52:54:00:03:00:02', power_uri: `redfish+http://root:${NODE_PASSWORD}@127.0.0.1:9` },
    { mac: '52:54:00:03:00:03', redfish_uri: `http://admin:${REDFISH_PASSWORD}@127.0.0.1:9/redfish/v1/Systems/1` },
  ]) as string[];
  await call('POST', '/dyngroups', { name: 'all', selector: 'a[bmc] == "127.0.0.1:9" or a[bmc] != "x"' });
  const put = await fetch(`${h.base}/kickstart/ks.cfg`, { method: 'PUT', headers: { authorization: `Bearer ${admin}` }, body: 'pw=<ipmi_pass> uri=<power_uri>\n' });
  t.is(put.status, 200);
  await call('POST', '/bootconfigs', { name: 'install', kickstart: 'ks.cfg' });

  const idFor = (path: string) => {
    if (path.startsWith('/node/')) return templated!;
    if (path.startsWith('/attrib/')) return 'bmc-creds';
    if (path.startsWith('/bootconfig/')) return 'install';
    if (path.startsWith('/admin/')) return 'reader';
    if (path.startsWith('/dyngroup/')) return 'all';
    if (path.startsWith('/cluster/head/')) return ((h.head as unknown as { headUid?: string }).headUid ?? 'x');
    return 'x';
  };
  const gets = allRoutes.filter((r) => r.method === 'GET' && r.access !== 'refresh-token').map((r) => r.path);
  t.true(gets.length > 50);
  const checked: string[] = [];
  for (const template of gets) {
    for (const node of template.startsWith('/node/') ? [templated!, literal!, redfish!] : [undefined]) {
      const path = template.replace(/:(id|uid)/, node ?? idFor(template)).replace(':name', 'ks.cfg').replace(/:part|\*path|:node/, 'x');
      const query = path.endsWith('/kickstart') ? `?node=${templated}` : path === '/nodes/power_state' ? `?dyngroup=all` : '';
      const res = await fetch(`${h.base}${path}${query}`, { headers: { authorization: `Bearer ${reader}` } });
      const text = await res.text();
      for (const secret of SECRETS) t.false(text.includes(secret), `GET ${path}${query} (${res.status}) shows a BMC password: ${text.slice(0, 300)}`);
      checked.push(`${res.status} ${path}`);
    }
  }
  t.log(`${checked.length} GETs checked, ${checked.filter((c) => c.startsWith('200')).length} answered 200`);

  // What role.authuser sees instead: the masks.
  t.like(await call('GET', `/node/${literal}`, undefined, reader), { power_uri: 'redfish+http://****:****@127.0.0.1:9' });
  t.like(await call('GET', `/node/${templated}/power_uri`, undefined, reader), { field: 'power_uri', unparsed: 'ipmi://****:****@127.0.0.1:9' });
  t.like(await call('GET', `/node/${redfish}/power_uri`, undefined, reader), { field: 'redfish_uri', unparsed: 'http://****:****@127.0.0.1:9/redfish/v1/Systems/1' });
  t.like(await call('GET', `/node/${templated}/attributes`, undefined, reader), { ipmi_user: '****', ipmi_pass: '****', bmc: '127.0.0.1:9' });
  t.like(await call('GET', '/attrib/bmc-creds', undefined, reader), { attributes: { ipmi_user: '****', ipmi_pass: '****', ipmi_session_timeout_ms: '200', redfish_timeout_ms: '200' } });
  const kickstart = await fetch(`${h.base}/bootconfig/install/kickstart?node=${templated}`, { headers: { authorization: `Bearer ${admin}` } });
  // (Values are shell-quoted in a kickstart.)
  t.regex(await kickstart.text(), /^pw='?\*{4}'? uri='?ipmi:\/\/\*{4}:\*{4}@<bmc>'?\n$/);

  // The role that manages power sees them.
  t.like(await call('GET', `/node/${literal}/power_uri`, undefined, operator), { unparsed: `redfish+http://root:${NODE_PASSWORD}@127.0.0.1:9` });
  t.like(await call('GET', '/attrib/bmc-creds/attributes', undefined, operator), { ipmi_pass: GROUP_PASSWORD });
  t.like((await call('GET', '/nodes', undefined, operator) as Record<string, { power_uri: string }>)[redfish!], { redfish_uri: `http://admin:${REDFISH_PASSWORD}@127.0.0.1:9/redfish/v1/Systems/1` });

  // Which attributes are credentials follows the nodes' URIs as they change (the names are cached).
  await call('PATCH', `/node/${literal}`, { power_uri: 'ipmi://<new_user>:<new_pass>@127.0.0.1:9', attributes: { new_user: 'u', new_pass: 'rotated-secret' } });
  t.like(await call('GET', `/node/${literal}/attributes`, undefined, reader), { new_user: '****', new_pass: '****' });
});

test('power_uri placeholders are never filled from what a node reports or may write itself', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await h.call('POST', '/attribs', { token, body: { name: 'bmc-creds', attributes: { ipmi_user: 'keeladmin', ipmi_pass: GROUP_PASSWORD } } });
  await h.call('PATCH', '/cluster', { token, body: { default_group: 'bmc-creds' } });
  const created = await h.call('POST', '/nodes', { token, body: [
    { mac: '52:54:00:03:01:01', power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc_addr>' },
    { mac: '52:54:00:03:01:02', power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@<node_bmc>', attributes: { node_bmc: '192.0.2.66' } },
  ] });
  const [fromStatus, fromNodeAttribute] = created.json.data as string[];
  // What a node stores about itself through PUT /node/putstatus (this is the admin form of it).
  t.is((await h.call('POST', '/node/putstatus', { token, body: { uid: fromStatus, status: { bmc_addr: '192.0.2.66' }, hardware: { bmc_addr: '192.0.2.66' } } })).status, 200);
  for (const uid of [fromStatus, fromNodeAttribute]) {
    const state = await h.call('GET', `/node/${uid}/power_state?detail=1`, { token });
    t.deepEqual(state.json.data, { state: 'unknown', reason: 'power_uri has placeholders without a value' });
    const shown = await h.call('GET', `/node/${uid}/power_uri`, { token });
    t.false(JSON.stringify(shown.json).includes('192.0.2.66'));
    const put = await h.call('PUT', `/node/${uid}/power_state`, { token, body: { state: 'power on' } });
    t.is(put.status, 400);
  }
});
