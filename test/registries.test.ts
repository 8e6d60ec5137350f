// Spec 004's registries (mainscripts, subscripts, kickstarts, prebootscripts, postbootscripts,
// sshkey, sshkeys) on a real head: its curl sequence replayed as written (base URL changed to
// keel's, a token added where keel requires one), then what keel adds: ids never reused, the JSON
// views, the kickstart registry meeting spec 000's kickstart files, placeholders filled for the
// asking node, private keys refused.
import test from 'ava';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { localnodeClass } from '../src/model/classes/localnode.js';
import { LocalnodeProbe } from '../src/ssh/reachability.js';
import { startTestHead } from './helpers/head.js';
import { rawRequest } from './helpers/http-raw.js';

const SPEC_BASE = 'http://services.provisioner.sandbox.cloud.alphahorizon.io:30002/api';
const REGISTRIES = ['mainscripts', 'subscripts', 'sshkeys', 'kickstarts', 'prebootscripts', 'postbootscripts', 'sshkey'];

interface CurlCall { method: string; url: string; body?: string; query?: string }

/** The curl calls of the excerpt of spec 004 in test/fixtures, in order. */
function specCalls(): CurlCall[] {
  const text = readFileSync(new URL('fixtures/spec-004-registries.txt', import.meta.url), 'utf8');
  return text.split(/^curl /m).slice(1).map((call) => {
    const url = [...call.matchAll(/'(http[^']*)'/g)].at(-1)![1]!;
    const body = /-d '([\s\S]*?)' \\\n/.exec(call)?.[1];
    const query = /--data-urlencode '([^']*)'/.exec(call)?.[1];
    const method = /-X (\w+)/.exec(call)?.[1] ?? (body === undefined ? 'GET' : 'POST');
    return { method, url, body, query };
  });
}

test('spec 004\'s curl sequence for the registries runs as written against keel', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const auth = { authorization: `Bearer ${token}` };
  const calls = specCalls().filter((call) => REGISTRIES.includes(new URL(call.url).pathname.split('/')[2]!));
  t.is(calls.length, 14, 'seven creations (and the key generator), seven reads');
  const posted = new Map<string, string>();
  let generated: { public: string; private: string } | undefined;
  for (const call of calls) {
    const url = call.url.replace(SPEC_BASE, h.base) + (call.query ? `?${call.query}` : '');
    const path = url.slice(h.base.length);
    if (call.method === 'POST') {
      const body = call.body!.replaceAll(SPEC_BASE, h.base);
      const res = await rawRequest(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.from(body) });
      t.is(res.status, 200, `${path}: ${res.body.toString()}`);
      const data = (JSON.parse(res.body.toString()) as { data: { id: number; uid: string; text: string } }).data;
      t.is(data.id, 1, `${path}: the first of its registry is id 1, as the spec's later paths assume`);
      t.regex(data.uid, /^[0-9a-f]{32}$/);
      const sent = (JSON.parse(body) as { text: string }).text;
      t.is(data.text, sent);
      posted.set(`${path}/1`, sent);
    } else if (path.startsWith('/sshkey?')) {
      const res = await h.call('GET', path, { token });
      t.is(res.status, 200);
      generated = res.json.data as { public: string; private: string };
    } else {
      // The reads: public (iPXE and installers hold no token), the raw text, no envelope.
      const res = await rawRequest(url);
      if (path === '/sshkeys/2') {
        // The spec's "Get private SSH key" reads a second registered key; keel never stores a
        // private key (docs/spec-decisions.md), and nothing was registered second.
        t.is(res.status, 404);
        continue;
      }
      t.is(res.status, 200, path);
      t.is(res.headers['content-type'], 'text/plain; charset=utf-8');
      t.is(res.body.toString(), posted.get(path)!, path);
    }
  }
  // The generated pair: OpenSSH formats, the private key ending in a newline, the two belonging together.
  t.truthy(generated);
  t.regex(generated!.public, /^ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+/);
  t.true(generated!.private.startsWith('-----BEGIN OPENSSH PRIVATE KEY-----\n'));
  t.true(generated!.private.endsWith('-----END OPENSSH PRIVATE KEY-----\n'));
  const priv = ssh2.utils.parseKey(generated!.private);
  const pub = ssh2.utils.parseKey(generated!.public);
  if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) return t.fail('unparsable pair');
  t.true(priv.isPrivateKey());
  t.deepEqual(priv.getPublicSSH(), pub.getPublicSSH());

  // Every keel URL inside the stored texts (chain, inst.ks=, %pre's curl, %post's curl) is served.
  const links = [...posted.values()].flatMap((text) => [...text.matchAll(new RegExp(`${h.base.replaceAll('.', '\\.')}[^\\s"]*`, 'g'))].map((m) => m[0]));
  t.true(links.length >= 4, links.join(' '));
  for (const link of links.filter((l) => !l.includes('/localnodes'))) t.is((await rawRequest(link)).status, 200, link);
  // The same texts on the boot path.
  t.is((await rawRequest(`${h.base.replace('/api/v1', '/boot')}/mainscripts/1`)).body.toString(), posted.get("/mainscripts/1")!);

  // The postbootscript's registration, as the installed machine runs it (its address: this test's
  // own, 127.0.0.1, inside a keel network), then the spec's two localnode reads, with a token.
  const register = /curl --request POST "([^"]+)"/.exec(posted.get('/postbootscripts/1')!)![1]!.replace('${ip}', '127.0.0.1');
  t.is((await rawRequest(register, { method: 'POST' })).status, 403, 'outside keel\'s networks');
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const registered = await rawRequest(register, { method: 'POST' });
  t.is(registered.status, 200, registered.body.toString());
  const localnodeCalls = specCalls().filter((call) => new URL(call.url).pathname.startsWith('/api/localnodes'));
  t.deepEqual(localnodeCalls.map((call) => call.method), ['GET', 'GET']);
  const [list, one] = await Promise.all(localnodeCalls.map((call) => h.call('GET', call.url.replace(SPEC_BASE, h.base).slice(h.base.length), { token })));
  // Spec 004's diagram: [{"id": 1, "artifactId": "felix.pojtinger.swabia.sol", "ip": "192.168.178.152", "pingable": true}, …]
  t.like((list!.json.data as unknown[])[0], { id: 1, artifactId: 'felix.pojtinger.swabia.sol', ip: '127.0.0.1', pingable: true });
  t.is((list!.json.data as unknown[]).length, 1);
  t.like(one!.json.data, { id: 1, artifactId: 'felix.pojtinger.swabia.sol', ip: '127.0.0.1', pingable: true });
});

test('localnodes: a machine registers only its own address, once; an admin any', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const other = await rawRequest(`${h.base}/localnodes?ip=127.0.0.5&artifactId=a`, { method: 'POST' });
  t.is(other.status, 403);
  t.regex(other.body.toString(), /registers its own address: ip=127\.0\.0\.5 is not the caller's 127\.0\.0\.1/);
  for (const pingable of ['true', 'false']) t.is((await rawRequest(`${h.base}/localnodes?ip=127.0.0.1&artifactId=a&pingable=${pingable}`, { method: 'POST' })).status, 200);
  const list = (await h.call('GET', '/localnodes', { token })).json.data as { id: number; pingable: boolean }[];
  t.deepEqual(list.map((n) => [n.id, n.pingable]), [[1, false]], 'one record per address, updated');
  t.is((await rawRequest(`${h.base}/localnodes?ip=127.0.0.1&pingable=maybe`, { method: 'POST' })).status, 400);
  t.is((await rawRequest(`${h.base}/localnodes?ip=10.9.9.9`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, 200, 'an admin registers any address');
  t.is((await rawRequest(`${h.base}/localnodes?ip=10.9.9.8`, { method: 'POST', headers: { authorization: 'Bearer nonsense' } })).status, 401);
  t.like((await h.call('GET', '/localnodes/2', { token })).json.data, { id: 2, ip: '10.9.9.9', name: 'localnode-2' });
  // Only loopback traffic from here on: the probe would connect to 10.9.9.9.
  t.is((await h.call('DELETE', '/localnodes/2', { token })).status, 200);
  t.is((await h.call('GET', '/localnodes')).status, 401);

  // `pingable` re-checked: a TCP connection to the SSH port (here a listener of the test's own).
  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.teardown(() => listener.close());
  t.is((await h.call('PATCH', '/localnodes/1', { token, body: { ssh_port: (listener.address() as { port: number }).port } })).status, 200);
  const probe = new LocalnodeProbe(h.head.model.objects(localnodeClass), pino({ level: 'silent' }), { intervalMs: 60_000, timeoutMs: 1000 });
  t.teardown(() => probe.close());
  await probe.probeAll();
  t.like((await h.call('GET', '/localnodes/1', { token })).json.data, { pingable: true, last_modified_by: 'keel' });
  await new Promise((resolve) => listener.close(resolve));
  await probe.probeAll();
  t.like((await h.call('GET', '/localnodes/1', { token })).json.data, { pingable: false });
});

test('ids are sequential and never reused; JSON views, replace, patch, delete', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  for (const text of ['#!ipxe\necho one', '#!ipxe\necho two']) t.is((await h.call('POST', '/mainscripts', { token, body: { text } })).status, 200);
  t.is((await h.call('DELETE', '/mainscripts/2', { token })).status, 200);
  const third = await h.call('POST', '/mainscripts', { token, body: { text: '#!ipxe\necho three', name: 'menu', description: 'boot menu' } });
  t.like(third.json.data, { id: 3, name: 'menu', description: 'boot menu' });
  t.is((await rawRequest(`${h.base}/mainscripts/2`)).status, 404);
  // Keel's view, by id, name or uid, with a token.
  t.is((await h.call('GET', '/mainscript/3')).status, 401);
  t.like((await h.call('GET', '/mainscript/menu', { token })).json.data, { id: 3, text: '#!ipxe\necho three' });
  t.like((await h.call('GET', '/mainscript/1', { token })).json.data, { id: 1, name: 'mainscript-1' });
  const list = (await h.call('GET', '/mainscripts', { token })).json.data as Record<string, { id: number }>;
  t.deepEqual(Object.values(list).map((v) => v.id).sort(), [1, 3]);
  // Replace keeps the id; the text changes where nodes fetch it.
  t.is((await h.call('PUT', '/mainscripts/3', { token, body: { text: '#!ipxe\necho replaced', name: 'menu' } })).status, 200);
  t.is((await rawRequest(`${h.base}/mainscripts/menu`)).body.toString(), '#!ipxe\necho replaced');
  t.like((await h.call('GET', '/mainscript/menu', { token })).json.data, { id: 3 });
  t.is((await h.call('PATCH', '/mainscripts/3', { token, body: { id: 9 } })).status, 400, 'id is keel\'s');
  t.is((await h.call('POST', '/mainscripts', { token, body: {} })).json.reason, "Missing required field 'text'");
  t.is((await h.call('POST', '/mainscripts', { token, body: { text: 5 } })).json.reason, "Field 'text' must be a string");
  t.is((await h.call('POST', '/mainscripts', { token, body: { text: 'x', name: '12' } })).status, 400, 'a name that reads as an id');
  t.is((await h.call('POST', '/mainscripts', { token, body: { text: 'x', name: 'menu' } })).json.reason, 'Mainscript with name=menu already exists.');
  // Longer than the generic 4,096 of a string field: a kickstart is.
  const long = `#!/bin/sh\n${'echo filler\n'.repeat(1000)}`;
  t.is((await h.call('POST', '/prebootscripts', { token, body: { text: long } })).status, 200);
  t.is((await rawRequest(`${h.base}/prebootscripts/1`)).body.toString(), long);
  // Writes need a full admin.
  t.is((await h.call('POST', '/subscripts', { body: { text: 'x' } })).status, 401);
});

test('one kickstart registry: spec 004\'s /kickstarts/<id> and spec 000\'s /kickstart/<NAME> and kickstart files', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  mkdirSync(join(h.dataDir, 'kickstarts'), { recursive: true });
  writeFileSync(join(h.dataDir, 'kickstarts', 'file.cfg'), 'text\n');
  const created = await h.call('POST', '/kickstarts', { token, body: { text: 'lang en_US\n', name: 'fedora.ks' } });
  t.like(created.json.data, { id: 1, name: 'fedora.ks' });
  t.is((await rawRequest(`${h.base}/kickstart/fedora.ks`)).body.toString(), 'lang en_US\n', 'spec 000 path serves the registry');
  t.is((await rawRequest(`${h.base}/kickstarts/1`)).body.toString(), 'lang en_US\n');
  t.is((await rawRequest(`${h.base}/kickstart/file.cfg`)).body.toString(), 'text\n', 'files still served');
  const list = (await h.call('GET', '/kickstarts', { token })).json.data as { name: string; source: string; id?: number }[];
  t.deepEqual(list.map((k) => [k.name, k.source, k.id]), [['fedora.ks', 'registry', 1], ['file.cfg', 'file', undefined]]);
  // A registry name never hides a file, and a file upload never shadows the registry.
  t.regex((await h.call('POST', '/kickstarts', { token, body: { text: 'x', name: 'file.cfg' } })).json.reason!, /kickstart file named file.cfg exists/);
  const upload = await rawRequest(`${h.base}/kickstart/fedora.ks`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: Buffer.from('other') });
  t.is(upload.status, 400);
  // A boot config may name the registry's kickstart.
  t.is((await h.call('POST', '/bootconfigs', { token, body: { name: 'b', kickstart: 'fedora.ks', boot_style: 'disked' } })).status, 200);
  const errors = await h.call('GET', '/bootconfig/b/errors', { token });
  t.notRegex(errors.json.reason ?? '', /kickstart file/);
  t.is((await h.call('DELETE', '/kickstarts/fedora.ks', { token })).status, 200);
  t.is((await rawRequest(`${h.base}/kickstart/fedora.ks`)).status, 404);
});

test('placeholders are filled for the asking node, in the text\'s language', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const pre = '#!/bin/bash\necho <name> <ip> <rack> <<EOF\nEOF\n';
  t.is((await h.call('POST', '/prebootscripts', { token, body: { text: pre } })).status, 200);
  t.is((await h.call('POST', '/subscripts', { token, body: { text: '#!ipxe\necho <name> <rack>' } })).status, 200);
  // Not a node yet: the text as written.
  t.is((await rawRequest(`${h.base}/prebootscripts/1`)).body.toString(), pre);
  // A node on 127.0.0.0/8, so that this test's own requests come from its address.
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const created = await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:00:00:01', attributes: { rack: 'r 7' } } });
  t.is(created.status, 200, JSON.stringify(created.json));
  const { name, ip } = (await h.call('GET', `/node/${created.json.data as string}`, { token })).json.data as { name: string; ip: string };
  t.is(ip, '127.0.0.1', 'the first address of the network');
  t.is((await rawRequest(`${h.base}/prebootscripts/1`)).body.toString(), `#!/bin/bash\necho ${name} 127.0.0.1 'r 7' <<EOF\nEOF\n`, 'shell quoting');
  t.is((await rawRequest(`${h.base.replace('/api/v1', '/boot')}/subscripts/1`)).body.toString(), `#!ipxe\necho ${name} r 7`, 'iPXE');
  // A value that would be more iPXE script is refused, not served.
  t.is((await h.call('PATCH', '/node/127.0.0.1/attributes', { token, body: { rack: '${evil}' } })).status, 200);
  const refused = await rawRequest(`${h.base}/subscripts/1`);
  t.is(refused.status, 400);
  t.regex(refused.body.toString(), /<rack> cannot go into an iPXE script/);
});

test('the SSH key registry takes public keys only and serves them raw', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  for (const algorithm of ['ed25519', 'ecdsa', 'rsa']) {
    const pair = (await h.call('GET', `/sshkey?algorithm=${algorithm}`, { token })).json.data as { public: string; private: string };
    const refused = await h.call('POST', '/sshkeys', { token, body: { text: pair.private, artifactId: 'a' } });
    t.is(refused.status, 400, algorithm);
    t.regex(refused.json.reason!, /private key/);
    const ok = await h.call('POST', '/sshkeys', { token, body: { text: pair.public, artifactId: 'a' } });
    t.is(ok.status, 200, JSON.stringify(ok.json));
  }
  t.is((await h.call('GET', '/sshkey?algorithm=dsa', { token })).status, 400);
  t.is((await h.call('GET', '/sshkey?algorithm=ed25519')).status, 401);
  t.regex((await h.call('POST', '/sshkeys', { token, body: { text: 'not a key' } })).json.reason!, /not an OpenSSH public key/);
  t.regex((await rawRequest(`${h.base}/sshkeys/3`)).body.toString(), /^ssh-rsa /);
  // The keys authorised on the nodes: the head's own and the registry's (spec 001's /cluster/sshkeys).
  const authorised = ((await h.call('GET', '/cluster/sshkeys')).json.data as { keys: string[] }).keys;
  t.is(authorised.length, 4);
  t.regex(authorised[0]!, /^ssh-ed25519 \S+ keel@head-test$/);
  t.deepEqual(authorised.slice(1).map((key) => key.split(' ')[0]).sort(), ['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa']);
  // The registered key with its artifactId, in keel's view.
  t.like((await h.call('GET', '/sshkey/2', { token })).json.data, { id: 2, artifactId: 'a' });
});

test('a node boots at a mainscript: _boot_config mainscript:<name> chains it from /boot', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const boot = h.base.replace('/api/v1', '/boot');
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const mac = '52:54:00:00:00:21';
  t.is((await h.call('POST', '/nodes', { token, body: { mac, attributes: { _boot_config: 'mainscript:menu' } } })).status, 200);
  const missing = (await rawRequest(`${boot}/ipxe?mac=${mac}`)).body.toString();
  t.regex(missing, /names mainscript menu, which does not exist/);
  t.regex(missing, /chain --replace --autofree .*\/boot\/ipxe\?mac=/, 'a retry script');
  const text = `#!ipxe\nmenu Choose Script\nitem sub Sub\nchoose --default sub --timeout 3000 server && goto \${server}\n:sub\nchain ${boot}/subscripts/1`;
  t.is((await h.call('POST', '/mainscripts', { token, body: { text, name: 'menu' } })).status, 200);
  const script = (await rawRequest(`${boot}/ipxe?mac=${mac}`)).body.toString();
  const chained = /^chain --autofree (\S+)$/m.exec(script)?.[1];
  t.is(chained, `${boot}/mainscripts/1`, script);
  t.is((await rawRequest(chained!)).body.toString(), text);
});
