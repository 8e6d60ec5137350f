// Networks, hostnames, dynamic groups and the cluster-wide endpoints against a real head; name and
// IP allocation under concurrent creates.
import test from 'ava';
import { startTestHead } from './helpers/head.js';

async function head(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const ok = async (method: string, path: string, body?: unknown): Promise<any> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const { status, json } = await call(method, path, body);
    if (status !== 200 || !json.success) throw new Error(`${method} ${path} → ${status} ${JSON.stringify(json)}`);
    return json.data;
  };
  const reason = async (method: string, path: string, body?: unknown) => {
    const { status, json } = await call(method, path, body);
    if (status !== 400) throw new Error(`${method} ${path} ${JSON.stringify(body)} → ${status}, expected 400`);
    return json.reason ?? '';
  };
  return { h, call, ok, reason };
}

const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test('networks: validation names the field; by-name/ip/key/iface searches', async (t) => {
  const { ok, reason, call } = await head(t);
  const base = { first_ip: '10.0.0.10', ip_count: 100, mask_bits: 24 };
  t.is(await reason('POST', '/nets', { ...base, first_ip: '10.0.0' }), `Field 'first_ip' must be an IPv4 address`);
  t.is(await reason('POST', '/nets', { ...base, first_ip: '10.0.0.0' }), `Field 'first_ip' 10.0.0.0 is not a host address of its subnet 10.0.0.0/24`);
  t.is(await reason('POST', '/nets', { ...base, first_ip: '10.0.0.255' }), `Field 'first_ip' 10.0.0.255 is not a host address of its subnet 10.0.0.0/24`);
  t.is(await reason('POST', '/nets', { ...base, ip_count: 246 }), `Field 'ip_count' 246 does not fit mask_bits 24: from 10.0.0.10 at most 245 addresses fit in 10.0.0.0/24`);
  t.is(await reason('POST', '/nets', { ...base, ip_count: 0 }), `Field 'ip_count' must be at least 1`);
  t.is(await reason('POST', '/nets', { ...base, mask_bits: 33 }), `Field 'mask_bits' must be between 1 and 32`);
  t.is(await reason('POST', '/nets', { ...base, router_ip: '10.0.1.1' }), `Field 'router_ip' 10.0.1.1 is outside the subnet 10.0.0.0/24`);
  t.is(await reason('POST', '/nets', { ...base, gateway_ip: 'gw' }), `Field 'gateway_ip' must be an IPv4 address`);
  t.is(await reason('POST', '/nets', { ...base, domain: 'bad domain' }), `Field 'domain' must be a DNS domain name, e.g. cluster.local`);
  t.is(await reason('POST', '/nets', { ...base, ip_count: '3' }), `Field 'ip_count' must be an integer`);
  t.is(await reason('POST', '/nets', { ip_count: 3, mask_bits: 24 }), `Missing required field 'first_ip'`);
  t.is(await reason('POST', '/nets', { ...base, node_iface: 'a/b' }), `Field 'node_iface' must be an interface name (1-15 characters, no '/', ':' or whitespace)`);
  // /31 and /32 have no network/broadcast addresses to avoid.
  await ok('POST', '/nets', { first_ip: '192.168.9.0', ip_count: 2, mask_bits: 31 });

  const boot = await ok('POST', '/nets', { ...base, name: 'boot', router_ip: '10.0.0.1', node_iface: 'eth0' });
  const ipmi = await ok('POST', '/nets', { first_ip: '10.10.0.5', ip_count: 10, mask_bits: 16, name: 'ipmi-net', gateway_ip: '10.10.255.254', node_iface: 'bmc0' });
  t.is(await reason('PATCH', `/net/${boot as string}`, { ip_count: 500 }), `Field 'ip_count' 500 does not fit mask_bits 24: from 10.0.0.10 at most 245 addresses fit in 10.0.0.0/24`);
  t.deepEqual(Object.keys(await ok('GET', '/nets/byname/net')), [ipmi].sort());
  t.deepEqual(Object.keys(await ok('GET', '/nets/byname/boot')), [boot]);
  t.deepEqual(Object.keys(await ok('GET', '/nets/byip/10.10.200.7')), [ipmi], 'a full address: the network containing it');
  t.deepEqual(Object.keys(await ok('GET', '/nets/byip/10.0.0.1')), [boot]);
  t.deepEqual(Object.keys(await ok('GET', '/nets/byip/10.0.')).sort(), [boot, ipmi].sort(), 'partial text');
  t.deepEqual(Object.keys(await ok('GET', `/nets/bykey/${(boot as string).slice(3, 12)}`)), [boot]);
  t.deepEqual(Object.keys(await ok('GET', '/nets/byiface/bmc')), [ipmi]);
  t.deepEqual(await ok('GET', '/nets/byname/nothing-like-this'), {});
  t.like(await ok('GET', '/net/boot'), { name: 'boot', first_ip: '10.0.0.10', ip_count: 100, mask_bits: 24, uid: boot });

  // A network nodes use cannot be deleted.
  await ok('PATCH', '/cluster', { default_network: 'boot' });
  await ok('POST', '/nodes', { mac: mac(1) });
  t.regex(await reason('DELETE', '/net/boot'), /^Cannot delete network boot: still used by the cluster \(default_network\), 1 node\(s\)/);
  t.is((await call('DELETE', `/net/${ipmi as string}`)).status, 200);
});

test('spec hostname example (nfsserver); per-type required fields; /hosts serves the same records', async (t) => {
  const { ok, reason } = await head(t);
  const uid = await ok('POST', '/hostnames', { name: 'nfsserver', ip: '10.1.1.10' });
  const record = await ok('GET', '/hostname/nfsserver');
  t.deepEqual(Object.keys(record).sort(), ['ip', 'last_modified', 'last_modified_by', 'last_modified_on', 'name', 'type', 'uid']);
  t.like(record, { type: 'arec', name: 'nfsserver', ip: '10.1.1.10', uid });
  t.deepEqual(await ok('GET', '/host/nfsserver'), record);
  t.deepEqual(Object.keys(await ok('GET', '/hosts')), [uid]);

  t.is(await reason('POST', '/hostnames', { name: 'a' }), `Missing required field 'ip' for a arec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', ip: 'fe80::1' }), `Field 'ip' must be an IPv4 address for an arec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'aaaarec', ip: '10.0.0.1' }), `Field 'ip' must be an IPv6 address for an aaaarec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'srvrec', target: 'nfsserver' }), `Missing required field 'port' for a srvrec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'srvrec', port: 2049 }), `Missing required field 'target' for a srvrec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'srvrec', target: 'x', port: 70000 }), `Field 'port' must be 1-65535`);
  t.is(await reason('POST', '/hostnames', { name: 'a', ip: '10.0.0.1', port: 1 }), `Field 'port' does not apply to a arec record`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'mx', ip: '10.0.0.1' }), `Field 'type' must be one of arec, aaaarec, srvrec`);
  t.is(await reason('POST', '/hostnames', { name: 'a', ip: '10.0.0.1', mac: 'x' }), `Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
  t.is(await reason('POST', '/hostnames', { name: 'a', type: 'srvrec', target: 'x', port: 1, proto: 'sctp' }), `Field 'proto' must be one of tcp, udp`);
  t.is(await reason('POST', '/hosts', { name: 'nfsserver', ip: '10.1.1.11' }), 'Hostname with name=nfsserver already exists.');

  const v6 = await ok('POST', '/hosts', { name: 'v6host', type: 'aaaarec', ip: 'fd00::5', mac: 'AA-BB-CC-DD-EE-FF' });
  t.like(await ok('GET', '/hostname/v6host'), { mac: 'aa:bb:cc:dd:ee:ff' });
  const srv = await ok('POST', '/hostnames', { name: '_nfs', type: 'srvrec', target: 'nfsserver', port: 2049, proto: 'tcp', weight: 5, priority: 10 });
  t.deepEqual(await ok('GET', `/hostnames/bypart/${(srv as string).slice(4, 14)}`), [srv]);
  t.deepEqual((await ok('GET', '/hosts/bypart/0')).sort(), (await ok('GET', '/hostnames/bypart/0')).sort());
  t.deepEqual(await ok('GET', '/hostnames/bypart/not-hex'), []);
  t.deepEqual((await ok('GET', `/hosts/bypart/${(v6 as string).slice(0, 10)}`)), [v6]);
  t.deepEqual(await ok('GET', '/cluster/hosts'), { nfsserver: '10.1.1.10', v6host: 'fd00::5' });
});

test('spec dynamic-group example (BigMemory): parsed form and members', async (t) => {
  const { ok, reason } = await head(t);
  const big = [] as string[];
  for (let i = 0; i < 8; i++) {
    const uid = await ok('POST', '/nodes', { mac: mac(i) }) as string;
    // 64 GiB .. 512 GiB; the ones above 100 GB are members.
    const ram = 64 * 2 ** 30 * (i + 1);
    await ok('POST', '/node/putstatus', { uid, hardware: { ram_total: ram } });
    if (ram > 100e9) big.push(uid);
  }
  const uid = await ok('POST', '/dyngroups', { name: 'BigMemory', selector: 'h[ram_total] > 100GB' });
  const group = await ok('GET', '/dyngroup/BigMemory');
  t.deepEqual(Object.keys(group).sort(), ['last_modified', 'last_modified_by', 'last_modified_on', 'name', 'parsed', 'selector', 'uid']);
  t.like(group, { name: 'BigMemory', selector: 'h[ram_total] > 100GB', parsed: '(hardware["ram_total"] > 100GB)', uid });
  t.deepEqual((await ok('GET', '/dyngroup/BigMemory/nodes') as string[]).sort(), big.sort());
  t.is(big.length, 7);

  await ok('PATCH', '/dyngroup/BigMemory', { selector: 'a[_boot_config] == "none"' });
  t.deepEqual(await ok('GET', '/dyngroup/BigMemory/nodes'), []);
  t.regex(await reason('POST', '/dyngroups', { name: 'bad', selector: 'h[ram_total] >' }), /^Field 'selector' at column \d+: /);
  t.is(await reason('POST', '/dyngroups', { name: 'bad', selector: 'x', parsed: 'y' }), "Read-only field(s), set by keel: parsed (The selector as keel understood it (canonical form))");
  await ok('DELETE', '/dyngroup/BigMemory');
});

test('concurrent creates through the API never share an index, name or IP', async (t) => {
  const { ok } = await head(t);
  await ok('POST', '/nets', { first_ip: '10.5.0.1', ip_count: 1000, mask_bits: 16 });
  await ok('POST', '/namingpools', { name: 'gpu', pattern: 'gpu{:03d}', first_index: 1 });
  // Some holes first, so allocation has gaps to fill while creates race.
  const first = await ok('POST', '/nodes', Array.from({ length: 20 }, (_, i) => ({ mac: mac(1000 + i), naming_pool: i % 2 ? 'gpu' : undefined })));
  for (const uid of (first as string[]).filter((_, i) => i % 3 === 0)) await ok('DELETE', `/node/${uid}`);
  const creates = Array.from({ length: 120 }, (_, i) => ok('POST', '/nodes', i % 10 === 0
    ? [{ mac: mac(i * 2) }, { mac: mac(i * 2 + 1), naming_pool: 'gpu' }]
    : { mac: mac(i * 2), naming_pool: i % 2 ? 'gpu' : undefined }));
  await Promise.all(creates);
  const all = Object.values(await ok('GET', '/nodes')) as { name: string; ip: string; index: number; naming_pool?: string }[];
  t.is(all.length, 20 - 7 + 120 + 12);
  const unique = (key: (n: typeof all[number]) => string) => new Set(all.map(key)).size;
  t.is(unique((n) => n.name), all.length);
  t.is(unique((n) => n.ip), all.length);
  t.is(unique((n) => `${n.naming_pool ?? ''}#${n.index}`), all.length);
  // Lowest free first: each pool's indexes are exactly first_index..first_index+count-1, the IPs one block.
  for (const [pool, firstIndex] of [[undefined, 0], ['gpu', 1]] as const) {
    const indexes = all.filter((n) => (n.naming_pool === undefined) === (pool === undefined)).map((n) => n.index).sort((a, b) => a - b);
    t.deepEqual(indexes, indexes.map((_, i) => i + firstIndex));
  }
  const last = all.map((n) => Number(n.ip.split('.')[3]) + 256 * Number(n.ip.split('.')[2])).sort((a, b) => a - b);
  t.deepEqual(last, last.map((_, i) => i + 1));
  t.deepEqual(all.filter((n) => n.naming_pool).every((n) => n.name === `gpu${String(n.index).padStart(3, '0')}`), true);
});

test('cluster endpoints: settings, summary, hosts, sshkeys, cabundle, license, usage, accountant, head, meta', async (t) => {
  const { ok, call, reason, h } = await head(t);
  const settings = await ok('GET', '/cluster');
  t.like(settings, { naming: 'n{}', accept_new_nodes: false, influx_token_set: false });
  await ok('POST', '/attribs', { name: 'DefaultAttribs', attributes: { _boot_config: 'DefaultBoot' } });
  // default_distro names an existing distro (issue 24, item 14), stored as its uid like default_group.
  const distro = await ok('POST', '/distros', { name: 'rocky9' });
  await ok('PATCH', '/cluster', { default_group: 'DefaultAttribs', naming: 'node{:02d}', accept_new_nodes: true, cluster_name: 'c1', cluster_id: '42', default_distro: 'rocky9', auth_config: { pam: true }, influx_token: 'secret' });
  const after = await ok('GET', '/cluster');
  t.like(after, { naming: 'node{:02d}', accept_new_nodes: true, cluster_name: 'c1', cluster_id: '42', default_distro: distro, auth_config: { pam: true }, influx_token_set: true });
  t.regex(after.default_group, /^[0-9a-f]{32}$/);
  t.false('influx_token' in after);
  await ok('POST', '/nodes', { mac: mac(7) });
  t.like(await ok('GET', '/node/node00'), { index: 0 });
  t.deepEqual(await ok('GET', '/node/node00/attributes'), { _boot_config: 'DefaultBoot' });
  await ok('PATCH', '/cluster', { cluster_name: null });
  t.false('cluster_name' in (await ok('GET', '/cluster')));

  const summary = await ok('GET', '/cluster/summary');
  t.deepEqual(Object.keys(summary).sort(), ['admins', 'attribs', 'bootconfigs', 'distros', 'dyngroups', 'gitrepos', 'hostnames', 'images', 'kickstarts', 'localnodes',
    'mainscripts', 'namingpools', 'nets', 'nodes', 'postbootscripts', 'prebootscripts', 'repos', 'sshkeys', 'subscripts']);
  t.is(summary.nodes.length, 1);
  t.is(summary.admins.length, 1);

  await ok('POST', '/admins', { name: 'keyed', keys: ['ssh-ed25519 AAAA one', 'ssh-ed25519 AAAA two'] });
  // Every admin's keys, then the head's own (docs/registries.md).
  const headKey = ((await ok('GET', '/cluster')) as { heads: { ssh_public: string }[] }).heads[0]!.ssh_public;
  t.deepEqual(await h.call('GET', '/cluster/sshkeys').then((r) => r.json.data), { keys: ['ssh-ed25519 AAAA one', 'ssh-ed25519 AAAA two', headKey] });
  t.deepEqual((await h.call('GET', '/cluster/cabundle')).json.data, { certificates: [], pem: '' });
  t.deepEqual((await h.call('GET', '/cluster/hosts')).json.data, {}, 'public; the node has no network, so no address');
  t.like(await ok('GET', '/cluster/license'), { product: 'keel', nodes: 1, licensed_nodes: null });
  t.like(await ok('GET', '/cluster/usage'), { objects: { nodes: 1, attribs: 1 }, nodes_by_type: { compute: 1 }, accountant: null });

  t.deepEqual(await ok('GET', '/cluster/accountant'), {});
  await ok('PUT', '/cluster/accountant', { kind: 'slurm', url: 'http://acct:6819' });
  t.deepEqual(await ok('GET', '/cluster/accountant'), { kind: 'slurm', url: 'http://acct:6819' });
  t.is(await reason('PUT', '/cluster/accountant', ['x']), 'Request body must be a JSON object (the accounting configuration)');
  t.like(await ok('GET', '/cluster'), { naming: 'node{:02d}' }, 'accountant kept apart from the settings');

  const headInfo = await ok('GET', `/cluster/head/${after.heads[0].uid as string}`);
  t.like(headInfo, { name: 'head-test', uid: after.heads[0].uid });
  t.is((await ok('GET', '/cluster/head/head-test')).uid, headInfo.uid, 'by name too');
  t.is((await call('GET', '/cluster/head/otherhead')).json.reason, 'No head found for ID=otherhead');
  const log = await ok('GET', '/cluster/head/head-test/log?lines=5');
  t.is(log.name, 'head-test');
  t.true(log.lines.length >= 1 && log.lines.length <= 5);
  t.true(log.lines.some((line: { msg?: string }) => line.msg === 'API listening'), 'start-up lines are there');
  t.regex(await reason('GET', '/cluster/head/head-test/log?lines=0'), /lines/);

  for (const plural of ['nodes', 'attribs', 'namingpools', 'nets', 'hostnames', 'hosts', 'dyngroups']) {
    const { status, json } = await h.call('GET', `/${plural}/meta`);
    t.is(status, 200, plural);
    const paths = (json.data as { fields: { path: string[] }[] }).fields.map((f) => f.path[0]);
    t.true(paths.includes('uid') && paths.includes('name'), plural);
  }
  const nodeMeta = (await h.call('GET', '/nodes/meta')).json.data as { fields: { path: string[]; format: string }[] };
  t.is(nodeMeta.fields.find((f) => f.path[0] === 'type')!.format, 'one of unknown, compute, head, simulated');
});

test('a node read after its network changes shows the new domain (views are cached per node)', async (t) => {
  const { ok } = await head(t);
  await ok('POST', '/nets', { name: 'lab', first_ip: '10.9.0.10', ip_count: 50, mask_bits: 24, domain: 'old.example' });
  await ok('POST', '/nodes', { mac: mac(7) });
  t.is((await ok('GET', `/node/${mac(7)}`)).domain, 'old.example');
  await ok('PATCH', '/net/lab', { domain: 'new.example' });
  t.is((await ok('GET', `/node/${mac(7)}`)).domain, 'new.example');
  t.is((Object.values(await ok('GET', '/nodes'))[0] as { domain: string }).domain, 'new.example');
  await ok('PATCH', `/node/${mac(7)}`, { description: 'rack 4' });
  t.is((await ok('GET', `/node/${mac(7)}`)).description, 'rack 4');
});
