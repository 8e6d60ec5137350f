// The spec's node, attribute-group and naming-pool examples, walked step by step against a real
// head, plus the node sub-resources and every bad-input path of nodes.
import test from 'ava';
import { startTestHead, type TestHead } from './helpers/head.js';

type Call = (method: string, path: string, body?: unknown) => ReturnType<TestHead['call']>;

async function head(t: Parameters<typeof startTestHead>[0]): Promise<{ h: TestHead; call: Call; ok: (method: string, path: string, body?: unknown) => Promise<unknown> }> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const call: Call = (method, path, body) => h.call(method, path, { token, body });
  const ok = async (method: string, path: string, body?: unknown) => {
    const { status, json } = await call(method, path, body);
    if (status !== 200 || !json.success) throw new Error(`${method} ${path} → ${status} ${JSON.stringify(json)}`);
    return json.data;
  };
  return { h, call, ok };
}

const UID = /^[0-9a-f]{32}$/;

test('spec node example: create, get by uid, MAC and name; attributes; power_uri', async (t) => {
  const { ok, call } = await head(t);
  // The spec's cluster: nodes on 192.168.122.0/24 from .100, a default group setting _boot_config.
  await ok('POST', '/nets', { name: 'cluster', first_ip: '192.168.122.100', ip_count: 100, mask_bits: 24, domain: 'cluster.local' });
  await ok('POST', '/attribs', { name: 'DefaultAttribs', attributes: { _boot_config: 'DefaultBoot' } });
  await ok('PATCH', '/cluster', { default_group: 'DefaultAttribs' });
  for (const mac of ['52:54:00:00:00:00', '52:54:00:00:00:01', '52:54:00:00:00:02']) await ok('POST', '/nodes', { mac });

  const uid = await ok('POST', '/nodes', { mac: '11:22:33:44:55:66' });
  t.regex(uid as string, UID);
  const node = (await ok('GET', `/node/${uid as string}`)) as Record<string, unknown>;
  t.like(node, {
    mac: '11:22:33:44:55:66', index: 3, ip: '192.168.122.103', type: 'compute', uid, groups: [], hardware: {},
    power_uri: null, name: 'n3', hostname: 'n3', domain: 'cluster.local', last_modified_by: 'admin', last_modified_on: 'head-test',
  });
  t.deepEqual(node.attributes, {});
  t.is(typeof node.last_modified, 'number');
  t.deepEqual(Object.keys(node).sort(), ['attributes', 'domain', 'groups', 'hardware', 'hostname', 'index', 'ip', 'last_modified', 'last_modified_by', 'last_modified_on', 'mac', 'name', 'power_uri', 'type', 'uid']);

  // Same record by MAC (any notation) and by name and IP.
  for (const id of ['11:22:33:44:55:66', '11-22-33-44-55-66', '112233445566', '1122.3344.5566', '11:22:33:44:55:66'.toUpperCase(), 'n3', '192.168.122.103'])
    t.deepEqual(await ok('GET', `/node/${id}`), node, id);
  t.deepEqual(await call('GET', '/node/n123'), { status: 404, json: { success: false, reason: 'No node found for ID=n123' } });

  t.deepEqual(await call('POST', '/nodes', { mac: '11-22-33-44-55-66' }), { status: 400, json: { success: false, reason: 'Node with MAC=11:22:33:44:55:66 already exists.' } });

  await ok('PATCH', '/node/n3/attributes', { ipmi_user: 'service', ipmi_pass: 'servicepass' });
  t.deepEqual(await ok('GET', '/node/n3/attributes'), { _boot_config: 'DefaultBoot', ipmi_user: 'service', ipmi_pass: 'servicepass' });

  await ok('PATCH', '/node/n3', { power_uri: 'ipmi://<ipmi_user>:<ipmi_pass>@10.10.1.3/ipmi' });
  t.deepEqual(await ok('GET', '/node/n3/power_uri'), {
    field: 'power_uri',
    unparsed: 'ipmi://service:servicepass@10.10.1.3/ipmi',
    parsed: { scheme: 'ipmi', schemes: '', server: '10.10.1.3', path: 'ipmi', server_username: 'service:servicepass', username: null, password: null, host: 'ipmi' },
  });
  t.is((await ok('GET', '/node/n3') as Record<string, unknown>).power_uri, 'ipmi://<ipmi_user>:<ipmi_pass>@10.10.1.3/ipmi', 'GET /node shows the template');

  // A PATCH of another field keeps name, index and IP.
  await ok('PATCH', '/node/n3', { description: 'rack 1' });
  t.like(await ok('GET', `/node/${uid as string}`), { name: 'n3', index: 3, ip: '192.168.122.103', description: 'rack 1' });
  await ok('DELETE', '/node/n3');
  t.is((await call('GET', `/node/${uid as string}`)).status, 404);
});

test('spec attribute-group example (MyAttribs) and merged attributes of member nodes', async (t) => {
  const { ok, call } = await head(t);
  const uid = await ok('POST', '/attribs', { name: 'MyAttribs' });
  t.regex(uid as string, UID);
  t.like(await ok('GET', '/attrib/MyAttribs'), { name: 'MyAttribs', uid, attributes: {}, last_modified_by: 'admin' });
  await ok('PATCH', '/attrib/MyAttribs', { attributes: { foo: 'bar' } });
  t.like(await ok('GET', '/attrib/MyAttribs'), { attributes: { foo: 'bar' } });
  t.deepEqual(await ok('GET', '/attrib/MyAttribs/attributes'), { foo: 'bar' });
  await ok('PATCH', '/attrib/MyAttribs/attributes', { abc: 'def' });
  t.deepEqual(await ok('GET', '/attrib/MyAttribs/attributes'), { foo: 'bar', abc: 'def' });

  // Members see group changes at once; groups apply in order, the node's own attributes last.
  await ok('POST', '/attribs', { name: 'Second', attributes: { foo: 'second', only2: 'x' } });
  await ok('POST', '/nodes', { mac: '52:54:00:aa:00:01', groups: ['MyAttribs'], attributes: { own: 'yes', abc: 'mine' } });
  t.deepEqual(await ok('GET', '/node/n0/attributes'), { foo: 'bar', abc: 'mine', own: 'yes' });
  await ok('POST', '/node/n0/groups', JSON.stringify('Second'));
  const groups = (await ok('GET', '/node/n0/groups')) as string[];
  t.deepEqual(groups, [uid, await ok('GET', '/attrib/Second').then((g) => (g as { uid: string }).uid)]);
  t.deepEqual(await ok('GET', '/node/n0/attributes'), { foo: 'second', abc: 'mine', only2: 'x', own: 'yes' });
  await ok('PATCH', '/attrib/MyAttribs/attributes', { late: 'added' });
  t.is((await ok('GET', '/node/n0/attributes') as Record<string, string>).late, 'added');
  await ok('DELETE', '/node/n0/groups', ['Second']);
  await ok('DELETE', '/node/n0/attributes', JSON.stringify('abc'));
  t.deepEqual(await ok('GET', '/node/n0/attributes'), { foo: 'bar', abc: 'def', late: 'added', own: 'yes' }, 'own abc removed: the group\'s shows');
  await ok('PUT', '/node/n0/attributes', { only: '1' });
  t.deepEqual((await ok('GET', '/node/n0') as { attributes: unknown }).attributes, { only: '1' });

  // A group in use cannot be deleted; the delete of an unused one works.
  const refused = await call('DELETE', '/attrib/MyAttribs');
  t.is(refused.status, 400);
  t.regex(refused.json.reason!, /still used by 1 node/);
  await ok('DELETE', '/attrib/MyAttribs/attributes', ['abc']);
  t.deepEqual(await ok('GET', '/attrib/MyAttribs/attributes'), { foo: 'bar', late: 'added' });
  await ok('DELETE', '/attrib/Second');
  t.is((await call('GET', '/attrib/Second')).status, 404);
});

test('spec naming-pool example (gpu) and the pattern forms', async (t) => {
  const { ok, call } = await head(t);
  t.regex(await ok('POST', '/namingpools', { name: 'gpu', pattern: 'gpu{}' }) as string, UID);
  await ok('POST', '/nodes', { mac: '52:54:00:00:01:00', naming_pool: 'gpu' });
  t.deepEqual(await ok('GET', '/namingpools/info/gpu0'), { index: 0, pattern: 'gpu{}' });
  await ok('POST', '/nodes', { mac: '52:54:00:00:01:01' });
  t.deepEqual(await ok('GET', '/namingpools/info/n0'), { index: 0, pattern: 'n{}' });

  await ok('POST', '/namingpools', { name: 'padded', pattern: 'gpu{:03d}x', first_index: 7 });
  await ok('POST', '/namingpools', { name: 'hex', pattern: 'h{:02x}' });
  const padded = await ok('POST', '/nodes', [{ mac: '52:54:00:00:02:00', naming_pool: 'padded' }, { mac: '52:54:00:00:02:01', naming_pool: 'padded' }]) as string[];
  t.deepEqual(await Promise.all(padded.map(async (u) => (await ok('GET', `/node/${u}`) as { name: string }).name)), ['gpu007x', 'gpu008x']);
  for (let i = 0; i < 11; i++) await ok('POST', '/nodes', { mac: `52:54:00:00:03:${i.toString(16).padStart(2, '0')}`, naming_pool: 'hex' });
  t.like(await ok('GET', '/node/h0a'), { index: 10, name: 'h0a' });

  for (const pattern of ['{}', 'n', 'n{:3d}', 'n{:03}', '9n{}', 'n{}{}', 'n_{}', 'n{:010d}'])
    t.regex((await call('POST', '/namingpools', { name: `bad${Math.random()}`.replace('.', ''), pattern })).json.reason!, /^Field 'pattern' must/, pattern);
  t.is((await call('POST', '/namingpools', { name: 'x', pattern: 'x{}', ip_base: '10.0.0.1', ip_offset: 3 })).json.reason, `Fields 'ip_base' and 'ip_offset' exclude each other; give one`);
  t.is((await call('POST', '/namingpools', { name: 'x', pattern: 'x{}', network: 'nowhere' })).json.reason, `Field 'network': no network found for ID=nowhere`);
  t.is((await call('POST', '/namingpools', { name: 'x', pattern: 'x{}', first_index: -1 })).json.reason, `Field 'first_index' must be 0 or more`);
  // Parent cycles are refused.
  await ok('POST', '/namingpools', { name: 'child', pattern: 'c{}', parent: 'gpu' });
  t.regex((await call('PATCH', '/namingpool/gpu', { parent: 'child' })).json.reason!, /^Field 'parent': naming pool gpu would be its own ancestor/);
  t.regex((await call('DELETE', '/namingpool/gpu')).json.reason!, /still used by naming pool child, 1 node/);
});

test('naming-pool push renames and readdresses members in one transaction', async (t) => {
  const { ok, call } = await head(t);
  await ok('POST', '/nets', { name: 'a', first_ip: '10.1.0.10', ip_count: 50, mask_bits: 16 });
  await ok('POST', '/nets', { name: 'b', first_ip: '10.2.0.1', ip_count: 50, mask_bits: 16, domain: 'b.example' });
  await ok('PATCH', '/cluster', { default_network: 'a' });
  await ok('POST', '/namingpools', { name: 'p', pattern: 'p{}', network: 'a', ip_offset: 20 });
  await ok('POST', '/nodes', [0, 1, 2].map((i) => ({ mac: `52:54:00:00:05:0${i}`, naming_pool: 'p' })));
  t.like(await ok('GET', '/node/p2'), { ip: '10.1.0.32', domain: 'cluster.local' });
  await ok('PATCH', '/namingpool/p', { pattern: 'q{:02d}', network: 'b', ip_offset: 5 });
  t.like(await ok('GET', '/node/p2'), { ip: '10.1.0.32' }, 'members keep name and address until pushed');
  const changes = await ok('PUT', '/namingpool/p/push') as { name: string; ip: string; was: { name: string } }[];
  t.deepEqual(changes.map((c) => [c.was.name, c.name, c.ip]), [['p0', 'q00', '10.2.0.6'], ['p1', 'q01', '10.2.0.7'], ['p2', 'q02', '10.2.0.8']]);
  t.like(await ok('GET', '/node/q02'), { index: 2, ip: '10.2.0.8', domain: 'b.example' });
  // A push that cannot place every member changes none of them.
  await ok('POST', '/nodes', { mac: '52:54:00:00:06:00' });
  t.like(await ok('GET', '/node/n0'), { ip: '10.1.0.10' });
  await ok('PATCH', '/namingpool/p', { network: 'a', ip_offset: 0 });
  const refused = await call('PUT', '/namingpool/p/push');
  t.is(refused.status, 400);
  t.is(refused.json.reason, 'Node with IP=10.1.0.10 already exists.');
  t.like(await ok('GET', '/node/q00'), { ip: '10.2.0.6' });
});

test('node sub-resources: status and attributes by uid and by source address; whereami', async (t) => {
  const { ok, call, h } = await head(t);
  await ok('POST', '/nets', { first_ip: '127.0.0.1', ip_count: 10, mask_bits: 8 });
  const uid = await ok('POST', '/nodes', { mac: 'aa:bb:cc:00:00:01' }) as string;
  t.like(await ok('GET', `/node/${uid}`), { ip: '127.0.0.1', name: 'n0' });
  t.like(await ok('GET', '/whereami'), { uid, name: 'n0', ip: '127.0.0.1' });

  // From the node itself: no token, identified by 127.0.0.1.
  const put = (path: string, body: unknown) => h.call('PUT', path, { body });
  t.is((await put('/node/putstatus', { status: { load_avg: 0.5 }, hardware: { ram_total: 68719476736 } })).status, 200);
  t.like(await ok('GET', `/node/${uid}/status`), { load_avg: 0.5, state: 'up' }); // with what keel derives: test/node-status.test.ts
  t.like(await ok('GET', `/node/${uid}`), { hardware: { ram_total: 68719476736 } });
  // A node writes only node_<name> attributes (test/node-self-report.test.ts).
  t.is((await put('/node/putattribs', { node_rack: 'r1', node_slot: 4 })).status, 200);
  t.deepEqual(await ok('GET', `/node/${uid}/attributes`), { node_rack: 'r1', node_slot: '4' });
  t.is((await put('/node/putstatus', {})).json.reason, `Request body must have 'status' and/or 'hardware'`);
  t.is((await put('/node/putstatus', { status: 3 })).json.reason, `Field 'status' must be a JSON object`);
  t.is((await put('/node/putattribs', { node_x: { nested: 1 } })).json.reason, `Field 'attributes': attribute 'node_x' must be a string, number or boolean`);
  t.like(await ok('GET', `/node/${uid}`), { last_modified_by: 'node:n0' });

  // With a token and a uid.
  await ok('POST', '/node/putstatus', { uid, status: { load_avg: 2 } });
  t.like(await ok('GET', '/node/n0/status'), { load_avg: 2, state: 'up' });
  await ok('POST', '/node/putattribs', { uid: 'n0', rack: 'r2' });
  t.like(await ok('GET', '/node/n0/attributes'), { rack: 'r2', node_slot: '4' });
  t.is((await call('POST', '/node/putstatus', { status: {} })).json.reason, `Missing required field 'uid'`);
  t.is((await call('POST', '/node/putattribs', { rack: 'r2' })).json.reason, `Missing required field 'uid'`);
  t.is((await call('POST', '/node/putattribs', { uid: 'nope', rack: 'r2' })).status, 404);

  // An address that is no node's gets a clear 404, not an authentication error.
  await ok('DELETE', `/node/${uid}`);
  const unknown = await put('/node/putstatus', { status: {} });
  t.is(unknown.status, 404);
  t.regex(unknown.json.reason!, /^No node has IP=127\.0\.0\.1/);
  t.is((await put('/node/putattribs', { a: 'b' })).status, 404);
  t.is((await call('GET', '/whereami')).status, 404);
});

test('every bad node input gets a 400 naming the field', async (t) => {
  const { ok, call } = await head(t);
  const reason = async (method: string, path: string, body: unknown) => {
    const { status, json } = await call(method, path, body);
    t.is(status, 400, `${method} ${path} ${JSON.stringify(body)}`);
    return json.reason;
  };
  t.is(await reason('POST', '/nodes', {}), `Missing required field 'mac'`);
  t.is(await reason('POST', '/nodes', { mac: 'not-a-mac' }), `Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
  t.is(await reason('POST', '/nodes', { mac: 7 }), `Field 'mac' must be a string`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', type: 'toaster' }), `Field 'type' must be one of unknown, compute, head, simulated`);
  // A computed field is refused saying where it comes from, not as an unknown parameter.
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', name: 'mine' }),
    `Read-only field(s), set by keel: name (Computed from the naming pool pattern and the node's index: to rename, set naming_pool or change the pool's pattern (then PUT /namingpool/<id>/push))`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', ip: '10.0.0.1' }), `Read-only field(s), set by keel: ip (IPv4 address, from the naming pool and its network)`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', groups: ['nope'] }), `Field 'groups': no attribute group found for ID=nope`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', groups: 'g' }), `Field 'groups' must be a list of strings`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', naming_pool: 'nope' }), `Field 'naming_pool': no naming pool found for ID=nope`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', attributes: { a: [1] } }), `Field 'attributes': attribute 'a' must be a string, number or boolean`);
  t.is(await reason('POST', '/nodes', { mac: '52:54:00:00:00:01', attributes: 'x' }), `Field 'attributes' must be a JSON object`);
  t.is(await reason('POST', '/nodes', JSON.stringify('x')), 'Request body must be a JSON object');
  await ok('POST', '/nodes', { mac: '52:54:00:00:00:01' });
  t.is(await reason('PATCH', '/node/n0', { mac: '52:54:00:00:00:0g' }), `Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
  t.is(await reason('PATCH', '/node/n0/attributes', ['a']), `Field 'attributes' must be a JSON object of key-value pairs`);
  t.is(await reason('DELETE', '/node/n0/attributes', [1]), 'Request body must be an attribute name or a non-empty list of them');
  t.is(await reason('POST', '/node/n0/groups', []), 'Request body must be an attribute group (uid or name) or a non-empty list of them');
  t.is(await reason('POST', '/node/n0/groups', ['ghost']), `Field 'groups': no attribute group found for ID=ghost`);
  t.is(await reason('POST', '/attribs', { name: 'g', attributes: { x: null } }), `Field 'attributes': attribute 'x' must be a string, number or boolean`);
  t.is(await reason('PATCH', '/cluster', { default_group: 'ghost' }), `Field 'default_group': no attribute group found for ID=ghost`);
  t.regex((await reason('PATCH', '/cluster', { naming: 'x{' }))!, /^Field 'naming' must/);
  t.is(await reason('PATCH', '/cluster', { accept_new_nodes: 'yes' }), `Field 'accept_new_nodes' must be true or false`);
  t.is(await reason('PATCH', '/cluster', { color: 'red' }), `Unhandled parameter(s): color`);
  // default_distro names a distro like default_group names a group: checked, stored as its uid, kept from deletion.
  t.is(await reason('PATCH', '/cluster', { default_distro: 'ghost' }), `Field 'default_distro': no distro found for ID=ghost`);
  const distro = (await call('POST', '/distros', { name: 'rocky9' })).json.data as string;
  await ok('PATCH', '/cluster', { default_distro: 'rocky9' });
  t.is(((await call('GET', '/cluster')).json.data as { default_distro: string }).default_distro, distro);
  t.is(await reason('DELETE', '/distro/rocky9', undefined), 'Cannot delete distro rocky9: still used by the cluster (default_distro)');
  await ok('PATCH', '/cluster', { default_distro: null });
  await ok('DELETE', '/distro/rocky9');
});

test('a bulk create is one transaction: one bad item creates nothing', async (t) => {
  const { ok, call } = await head(t);
  const before = (await ok('GET', '/cluster/database') as { last_change: number }).last_change;
  const refused = await call('POST', '/nodes', [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }, { mac: '52:54:00:00:00:01' }]);
  t.is(refused.status, 400);
  t.is(refused.json.reason, 'Item 2: Node with MAC=52:54:00:00:00:01 already exists.');
  t.is((await call('POST', '/nodes', [{ mac: '52:54:00:00:00:01' }, { mac: 'zz' }])).json.reason, `Item 1: Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
  t.deepEqual(await ok('GET', '/nodes'), {});
  t.is((await ok('GET', '/cluster/database') as { last_change: number }).last_change, before);
  const uids = await ok('POST', '/nodes', [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }]) as string[];
  t.is(uids.length, 2);
  t.deepEqual(await ok('POST', '/nodes', []), []);
});
