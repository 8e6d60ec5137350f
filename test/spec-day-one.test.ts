// Issue 24's day-one items 8 and 9 and the image `parent` shape, against a real head: a second
// network must not stop address allocation, a node that cannot get an address is refused saying
// why, a naming-pool push keeps valid addresses and says why it changes any; groups and
// attributes are assigned to many nodes in one call; an image's parent is shown by name.
import test from 'ava';
import { startTestHead, type TestHead } from './helpers/head.js';

type Answer = Awaited<ReturnType<TestHead['call']>>;

async function head(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const call = (method: string, path: string, body?: unknown): Promise<Answer> => h.call(method, path, { token, body });
  const ok = async <T = unknown>(method: string, path: string, body?: unknown): Promise<T> => {
    const { status, json } = await call(method, path, body);
    if (status !== 200 || !json.success) throw new Error(`${method} ${path} → ${status} ${JSON.stringify(json)}`);
    return json.data as T;
  };
  return { h, token, call, ok };
}

type Node = { uid: string; name: string; ip?: string; groups: string[]; attributes: Record<string, string> };

test('a second network does not stop allocation: nodes get addresses from the network created first, or default_network', async (t) => {
  const { ok } = await head(t);
  // The first network has the higher addresses: the rule is creation order, not address order.
  await ok('POST', '/nets', { name: 'first', first_ip: '10.2.0.10', ip_count: 20, mask_bits: 24 });
  await ok('POST', '/namingpools', { name: 'gpu', pattern: 'gpu{}' });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:00' });
  await ok('POST', '/nets', { name: 'second', first_ip: '10.1.0.10', ip_count: 20, mask_bits: 24 });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:01' });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:02', naming_pool: 'gpu' });
  t.like(await ok('GET', '/node/n0'), { ip: '10.2.0.10' });
  t.like(await ok('GET', '/node/n1'), { ip: '10.2.0.11' }, 'a node created after the second network still gets an address of the first');
  t.like(await ok('GET', '/node/gpu0'), { ip: '10.2.0.12' }, 'so does one of a pool without a network');

  // Replacing the first network (PUT) keeps its place in the creation order.
  await ok('PUT', '/net/first', { name: 'first', first_ip: '10.2.0.10', ip_count: 30, mask_bits: 24 });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:03' });
  t.like(await ok('GET', '/node/n2'), { ip: '10.2.0.13' });

  // default_network, when set, wins; unset, the first network again.
  await ok('PATCH', '/cluster', { default_network: 'second' });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:04' });
  t.like(await ok('GET', '/node/n3'), { ip: '10.1.0.10' });
  await ok('PATCH', '/cluster', { default_network: null });
  await ok('POST', '/nodes', { mac: '52:54:00:08:00:05' });
  t.like(await ok('GET', '/node/n4'), { ip: '10.2.0.14' });
  // The creation order is keel's own: not shown, not writable.
  t.false('created_order' in await ok<Record<string, unknown>>('GET', '/net/first'));
});

test('creating a node that cannot get an address is a 400 saying why; nothing is created', async (t) => {
  const { ok, call } = await head(t);
  const count = async () => Object.keys(await ok<object>('GET', '/nodes')).length;

  // No network at all: keel hands out no addresses, and a node is made without one ...
  const bare = await ok<string>('POST', '/nodes', { mac: '52:54:00:08:01:00' });
  t.false('ip' in await ok<Node>('GET', `/node/${bare}`));
  // ... unless its pool asks for an address keel cannot compute.
  await ok('POST', '/namingpools', { name: 'offset', pattern: 'o{}', ip_offset: 5 });
  const noNet = await call('POST', '/nodes', { mac: '52:54:00:08:01:01', naming_pool: 'offset' });
  t.deepEqual([noNet.status, noNet.json.reason], [400,
    'Naming pool offset sets ip_offset but has no network to offset from: set its network (or a parent\'s), or create one (POST /nets)']);

  await ok('POST', '/nets', { name: 'tiny', first_ip: '10.3.0.10', ip_count: 2, mask_bits: 24 });
  await ok('POST', '/nodes', { mac: '52:54:00:08:01:02' });
  t.like(await ok('GET', '/node/n1'), { ip: '10.3.0.10' });
  const before = await count();
  const full = await call('POST', '/nodes', [{ mac: '52:54:00:08:01:03' }, { mac: '52:54:00:08:01:04' }]);
  t.deepEqual([full.status, full.json.reason], [400,
    'Item 1: Network tiny has no free IP address left (ip_count 2): raise its ip_count, or give the pool another network']);
  t.is(await count(), before, 'the list is refused as a whole');
  t.is((await call('GET', '/node/52:54:00:08:01:03')).status, 404);

  // A pool's fixed address outside its network names the pool, index, address and range.
  await ok('POST', '/namingpools', { name: 'far', pattern: 'far{}', network: 'tiny', ip_base: '10.3.0.200' });
  const outside = await call('POST', '/nodes', { mac: '52:54:00:08:01:05', naming_pool: 'far' });
  t.deepEqual([outside.status, outside.json.reason], [400, 'Naming pool far gives index 0 the address 10.3.0.200, outside network tiny (10.3.0.10-10.3.0.11)']);
  t.is(await count(), before);
});

test('a naming-pool push keeps valid addresses and reports every address it changes or keeps without a rule, with why', async (t) => {
  const { ok } = await head(t);
  type Change = { uid: string; name: string; ip: string | null; was: { name: string; ip: string | null }; reason: { name?: string; ip?: string } };

  // A pool whose addresses come from ip_base while keel has no network.
  await ok('POST', '/namingpools', { name: 'gpu', pattern: 'gpu{}', ip_base: '10.9.0.1' });
  await ok('POST', '/nodes', { mac: '52:54:00:08:02:00', naming_pool: 'gpu' });
  t.like(await ok('GET', '/node/gpu0'), { ip: '10.9.0.1' });
  // ip_base removed: nothing gives gpu0 an address any more; the push keeps it and says so.
  await ok('PATCH', '/namingpool/gpu', { ip_base: null });
  t.deepEqual(await ok<Change[]>('PUT', '/namingpool/gpu/push'), [{
    uid: (await ok<Node>('GET', '/node/gpu0')).uid, name: 'gpu0', ip: '10.9.0.1', was: { name: 'gpu0', ip: '10.9.0.1' },
    reason: { ip: 'kept: naming pool gpu gives no address now (no ip_base, and keel has no network)' },
  }]);
  t.like(await ok('GET', '/node/gpu0'), { ip: '10.9.0.1' });
  await ok('DELETE', '/node/gpu0');

  // The case: a pool without a network, nodes on the only network, then a second one.
  await ok('POST', '/nets', { name: 'a', first_ip: '10.1.0.10', ip_count: 50, mask_bits: 24 });
  const first = await ok<string>('POST', '/nodes', { mac: '52:54:00:08:02:01', naming_pool: 'gpu' });
  await ok('POST', '/nets', { name: 'b', first_ip: '10.2.0.10', ip_count: 50, mask_bits: 24 });
  const second = await ok<string>('POST', '/nodes', { mac: '52:54:00:08:02:02', naming_pool: 'gpu' });
  t.like(await ok('GET', `/node/${first}`), { name: 'gpu0', ip: '10.1.0.10' });
  t.like(await ok('GET', `/node/${second}`), { name: 'gpu1', ip: '10.1.0.11' });
  t.deepEqual(await ok('PUT', '/namingpool/gpu/push'), [], 'nothing to change: no address is dropped');
  t.like(await ok('GET', `/node/${first}`), { ip: '10.1.0.10' });

  // The pool moves to network b and renames: every change is listed with its reason.
  await ok('PATCH', '/namingpool/gpu', { network: 'b', pattern: 'g{:02d}' });
  t.deepEqual(await ok<Change[]>('PUT', '/namingpool/gpu/push'), [
    { uid: first, name: 'g00', ip: '10.2.0.10', was: { name: 'gpu0', ip: '10.1.0.10' }, reason: {
      name: 'the pool\'s pattern is now g{:02d}', ip: '10.1.0.10 is outside network b (10.2.0.10-10.2.0.59), the pool\'s network now: the lowest free address there' } },
    { uid: second, name: 'g01', ip: '10.2.0.11', was: { name: 'gpu1', ip: '10.1.0.11' }, reason: {
      name: 'the pool\'s pattern is now g{:02d}', ip: '10.1.0.11 is outside network b (10.2.0.10-10.2.0.59), the pool\'s network now: the lowest free address there' } },
  ]);
  // A first_index above a member's index: a new index; the address, still inside b, stays.
  await ok('PATCH', '/namingpool/gpu', { first_index: 1 });
  t.deepEqual(await ok<Change[]>('PUT', '/namingpool/gpu/push'), [
    { uid: first, name: 'g02', ip: '10.2.0.10', was: { name: 'g00', ip: '10.2.0.10' }, reason: { name: 'index 0 is below the pool\'s first_index 1: the lowest free index' } },
  ]);
  // ip_offset: addresses by index, saying how each was computed.
  await ok('PATCH', '/namingpool/gpu', { ip_offset: 20 });
  t.deepEqual((await ok<Change[]>('PUT', '/namingpool/gpu/push')).map((c) => [c.name, c.ip, c.reason.ip]), [
    ['g01', '10.2.0.30', 'naming pool gpu: network b first_ip 10.2.0.10 + ip_offset 20 + 0 (index 1 - first_index 1)'],
    ['g02', '10.2.0.31', 'naming pool gpu: network b first_ip 10.2.0.10 + ip_offset 20 + 1 (index 2 - first_index 1)'],
  ]);
});

test('groups and attributes of 25 nodes in one call each: by list, selector or dynamic group; all or nothing', async (t) => {
  const { h, ok, call } = await head(t);
  const macs = Array.from({ length: 25 }, (_, i) => `52:54:00:09:00:${i.toString(16).padStart(2, '0')}`);
  const uids = await ok<string[]>('POST', '/nodes', macs.map((mac, i) => ({ mac, attributes: { rack: String(1 + (i % 2)) } })));
  const names = uids.map((_, i) => `n${i}`);
  const rack1 = await ok<string>('POST', '/attribs', { name: 'Rack1', attributes: { site: 'north' } });
  const gpus = await ok<string>('POST', '/attribs', { name: 'Gpus' });
  const node = (id: string) => ok<Node>('GET', `/node/${id}`);
  type Bulk = { selected: number; changed: ({ uid: string; name: string } & Record<string, unknown>)[]; unchanged: { uid: string; name: string }[] };

  // A list of nodes (any id form), one group by name: every node changed, in list order.
  const listed = [...names.slice(0, 24), macs[24]!];
  const joined = await ok<Bulk>('POST', '/nodes/groups', { nodes: listed, groups: 'Rack1' });
  t.is(joined.selected, 25);
  t.deepEqual(joined.changed, uids.map((uid, i) => ({ uid, name: `n${i}`, added: [rack1], removed: [] })));
  t.deepEqual(joined.unchanged, []);
  for (const name of names) t.deepEqual((await node(name)).groups, [rack1], name);
  t.is((await ok<Record<string, string>>('GET', '/node/n7/attributes')).site, 'north');
  // Again: already members, nothing changes, and the answer says so.
  const again = await ok<Bulk>('POST', '/nodes/groups', { nodes: ['n0', 'n1'], groups: ['Rack1'] });
  t.deepEqual(again, { selected: 2, changed: [], unchanged: [{ uid: uids[0], name: 'n0' }, { uid: uids[1], name: 'n1' }] });

  // A selector: the odd nodes (rack 2) get an attribute of their own and a second group.
  const patched = await ok<Bulk>('PATCH', '/nodes/attributes', { selector: 'a[rack] == "2"', attributes: { gpu: 'a100', rack: '2' } });
  t.is(patched.selected, 12);
  const entry = (answer: Bulk, uid: string) => answer.changed.find((change) => change.uid === uid);
  t.deepEqual(entry(patched, uids[1]!), { uid: uids[1], name: 'n1', set: ['gpu'], removed: [] }, 'rack was already 2: only gpu is reported');
  t.like(await node('n1'), { attributes: { rack: '2', gpu: 'a100' } });
  t.deepEqual((await node('n2')).attributes, { rack: '1' });
  await ok('POST', '/nodes/groups', { selector: 'a[gpu]', groups: [gpus] });
  t.deepEqual((await node('n3')).groups, [rack1, gpus]);

  // A dynamic group: remove Rack1 from its members, then their gpu attribute.
  await ok('POST', '/dyngroups', { name: 'GpuNodes', selector: 'a[gpu] == "a100"' });
  const left = await ok<Bulk>('DELETE', '/nodes/groups', { dyngroup: 'GpuNodes', groups: ['Rack1'] });
  t.is(left.changed.length, 12);
  t.deepEqual(entry(left, uids[1]!), { uid: uids[1], name: 'n1', added: [], removed: [rack1] });
  t.deepEqual((await node('n3')).groups, [gpus]);
  t.deepEqual((await node('n4')).groups, [rack1]);
  const dropped = await ok<Bulk>('DELETE', '/nodes/attributes', { dyngroup: 'GpuNodes', attributes: 'gpu' });
  t.deepEqual(entry(dropped, uids[1]!), { uid: uids[1], name: 'n1', set: [], removed: ['gpu'] });
  t.deepEqual((await node('n1')).attributes, { rack: '2' });
  const replaced = await ok<Bulk>('PUT', '/nodes/attributes', { nodes: ['n0'], attributes: { only: 'this' } });
  t.deepEqual(replaced.changed, [{ uid: uids[0], name: 'n0', set: ['only'], removed: ['rack'] }]);

  // Refusals change nothing: an unknown node anywhere in the list, an unknown group, a bad body.
  const snapshot = JSON.stringify(await ok('GET', '/nodes'));
  const unknown = await call('POST', '/nodes/groups', { nodes: ['n5', 'n6', 'nope'], groups: 'Gpus' });
  t.deepEqual([unknown.status, unknown.json.reason], [404, 'No node found for ID=nope']);
  const badGroup = await call('POST', '/nodes/groups', { nodes: ['n5'], groups: ['Gpus', 'Nope'] });
  t.deepEqual([badGroup.status, badGroup.json.reason], [400, `Field 'groups': no attribute group found for ID=Nope`]);
  const both = await call('PATCH', '/nodes/attributes', { nodes: ['n5'], selector: 'a[x]', attributes: { a: '1' } });
  t.deepEqual([both.status, both.json.reason], [400, `Name the nodes with exactly one of 'nodes', 'selector' or 'dyngroup'`]);
  const noGroups = await call('POST', '/nodes/groups', { nodes: ['n5'] });
  t.deepEqual([noGroups.status, noGroups.json.reason], [400, `Missing required field 'groups'`]);
  const badPairs = await call('PATCH', '/nodes/attributes', { nodes: ['n5'], attributes: ['x'] });
  t.deepEqual([badPairs.status, badPairs.json.reason], [400, `Field 'attributes' must be a JSON object of key-value pairs`]);
  const badSelector = await call('DELETE', '/nodes/attributes', { selector: 'a[x] = 1', attributes: ['x'] });
  t.is(badSelector.status, 400);
  t.regex(badSelector.json.reason!, /^Selector at column 6: "=" is not an operator/);
  // Role as for the single-node writes: a power admin may not.
  await ok('POST', '/admins', { name: 'power', roles: ['role.poweradmin'], password: 'power-password' });
  const power = await h.login('power', 'power-password');
  const refused = await h.call('POST', '/nodes/groups', { token: power.access_token, body: { nodes: ['n5'], groups: 'Gpus' } });
  t.is(refused.status, 403);
  t.is(JSON.stringify(await ok('GET', '/nodes')), snapshot, 'no refused call changed a node');
});

test('an image\'s parent: accepted by name or uid, stored as the uid, shown by name (null when unset), renames included', async (t) => {
  const { h, ok } = await head(t);
  const base = await ok<string>('POST', '/images', { name: 'base' });
  const byName = await ok<string>('POST', '/images', { name: 'child', parent: 'base' });
  const byUid = await ok<string>('POST', '/images', { name: 'child2', parent: base });
  t.is((await ok<Record<string, unknown>>('GET', `/image/${byName}`)).parent, 'base');
  t.is((await ok<Record<string, unknown>>('GET', '/image/child2')).parent, 'base');
  t.is(h.head.model.objectsNamed('image').collection.get(byUid)!.parent, base, 'stored as the uid');
  t.is((await ok<Record<string, unknown>>('GET', '/image/base')).parent, null);
  // The child's view (cached) follows a rename of its parent; the link holds.
  await ok('PATCH', '/image/base', { name: 'base-v2' });
  t.is((await ok<Record<string, unknown>>('GET', '/image/child')).parent, 'base-v2');
  t.is((await ok<Record<string, Record<string, unknown>>>('GET', '/images'))[byUid]!.parent, 'base-v2');
});
