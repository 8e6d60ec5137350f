// Spec 000's boot-time endpoints: GET /ztp/script (node found by the caller's address), GET
// /ignition/<UID> (its `_ignition`: a kickstart file or a URL keel fetches with a timeout and a size
// cap) and GET /ignition/bin. Requests leave from chosen 127.0.0.x addresses, as nodes would.
import test from 'ava';
import { request as httpRequest, createServer, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { freePort } from './helpers/free-port.js';
import { startTestHead, type TestHead } from './helpers/head.js';

/** GET `url` from `localAddress`: status, body and content type, raw. */
function get(url: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { localAddress }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (piece: Buffer) => parts.push(piece));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString('utf8'), type: res.headers['content-type'] }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

const reason = (body: string) => (JSON.parse(body) as { reason: string }).reason;

interface CreatedNode {
  uid: string;
  name: string;
  /** Given by keel from the network 127.0.0.0/8, in order: requests from it come from the node. */
  ip: string;
}

async function headWithNodes(t: Parameters<typeof startTestHead>[0], env: Record<string, string> = {}): Promise<{ h: TestHead; token: string; node: (attributes: Record<string, string>) => Promise<CreatedNode> }> {
  const h = await startTestHead(t, env);
  const token = (await h.login()).access_token;
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  let mac = 0;
  const node = async (attributes: Record<string, string>) => {
    const created = await h.call('POST', '/nodes', { token, body: { mac: `52:54:00:00:01:0${++mac}`, attributes } });
    t.is(created.status, 200, JSON.stringify(created.json));
    const uid = created.json.data as string;
    const { name, ip } = (await h.call('GET', `/node/${uid}`, { token })).json.data as { name: string; ip: string };
    return { uid, name, ip };
  };
  return { h, token, node };
}

/** A local HTTP server for remote Ignition configs; closed at teardown. */
async function configServer(t: Parameters<typeof startTestHead>[0], handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('GET /ztp/script sends the ZTP script of the node at the caller\'s address, its placeholders filled; 404 with a reason otherwise', async (t) => {
  const { h, token, node } = await headWithNodes(t);
  t.is((await h.call('PUT', '/kickstart/cumulus-ztp.sh', { token, body: '#!/bin/bash\n# CUMULUS-AUTOPROVISIONING\nhostnamectl set-hostname <name>\necho <ip> <rack> > /etc/where <<EOF\nEOF\n', headers: { 'content-type': 'text/plain' } })).status, 200);
  const ztpSwitch = await node({ _boot_config: 'ztp:cumulus-ztp.sh', rack: 'row 4' });
  const noScript = await node({ _boot_config: 'ztp:no-such-script' });
  const notZtpNode = await node({ rack: 'r1' });

  const ok = await get(`${h.base}/ztp/script`, ztpSwitch.ip);
  t.is(ok.status, 200);
  t.is(ok.type, 'text/plain; charset=utf-8');
  t.is(ok.body, `#!/bin/bash\n# CUMULUS-AUTOPROVISIONING\nhostnamectl set-hostname ${ztpSwitch.name}\necho ${ztpSwitch.ip} 'row 4' > /etc/where <<EOF\nEOF\n`);

  const unknown = await get(`${h.base}/ztp/script`, '127.0.0.200');
  t.is(unknown.status, 404);
  t.is(reason(unknown.body), 'No node has the caller\'s address 127.0.0.200');
  const missing = await get(`${h.base}/ztp/script`, noScript.ip);
  t.is(missing.status, 404);
  t.is(reason(missing.body), 'No kickstart file named no-such-script');
  const notZtp = await get(`${h.base}/ztp/script`, notZtpNode.ip);
  t.is(notZtp.status, 404);
  t.regex(reason(notZtp.body), /has no ZTP script: its _boot_config is unset, not ztp:<NAME>/);
});

test('GET /ignition/<UID> sends the config _ignition names: a local file or a URL, placeholders filled as JSON; each failure a reason', async (t) => {
  const slowMs = 3000;
  const remote = await configServer(t, (req, res) => {
    if (req.url === '/node.ign') res.end('{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,<name>"}}]},"x":"<note>"}');
    else if (req.url === '/huge.ign') {
      res.write('{"pad":"');
      // 2 MiB against a 1 MiB cap, sent in pieces: keel must stop reading, not buffer it all.
      for (let i = 0; i < 32; i++) res.write('x'.repeat(65536));
      res.end('"}');
    } else if (req.url === '/slow.ign') {
      res.write('{');
      setTimeout(() => res.end('}'), slowMs).unref();
    } else {
      res.statusCode = 404;
      res.end('no');
    }
  });
  const { h, node } = await headWithNodes(t, { KEEL_INSTALL_IGNITION_FETCH_TIMEOUT: '1' });
  mkdirSync(join(h.dataDir, 'kickstarts'), { recursive: true });
  writeFileSync(join(h.dataDir, 'kickstarts', 'local.ign'), '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["<key>"]}]}}');
  const { uid: local } = await node({ _ignition: 'local.ign', key: 'ssh-ed25519 AAAA "quoted" key' });
  const fetched = await node({ _ignition: `${remote}/node.ign`, note: 'line\\one' });
  const { uid: huge } = await node({ _ignition: `${remote}/huge.ign` });
  const { uid: slow } = await node({ _ignition: `${remote}/slow.ign` });
  const { uid: gone } = await node({ _ignition: `${remote}/gone.ign` });
  const { uid: missingFile } = await node({ _ignition: 'nowhere.ign' });
  const { uid: none } = await node({});
  // A port nothing listens on.
  const closed = `http://127.0.0.1:${await freePort()}/x.ign`;
  const { uid: unreachable } = await node({ _ignition: closed });

  const a = await get(`${h.base}/ignition/${local}`);
  t.is(a.status, 200);
  t.is(a.type, 'application/json');
  t.deepEqual(JSON.parse(a.body), { ignition: { version: '3.4.0' }, passwd: { users: [{ name: 'core', sshAuthorizedKeys: ['ssh-ed25519 AAAA "quoted" key'] }] } });

  const b = await get(`${h.base}/ignition/${fetched.uid}`);
  t.is(b.status, 200);
  const filled = JSON.parse(b.body) as { storage: { files: { contents: { source: string } }[] }; x: string };
  t.is(filled.storage.files[0]!.contents.source, `data:,${fetched.name}`);
  t.is(filled.x, 'line\\one');

  const c = await get(`${h.base}/ignition/${huge}`);
  t.is(c.status, 502);
  t.is(reason(c.body), `${remote}/huge.ign sent more than 1048576 bytes (install.ignition_max_bytes)`);

  const started = Date.now();
  const d = await get(`${h.base}/ignition/${slow}`);
  t.is(d.status, 504);
  t.is(reason(d.body), `${remote}/slow.ign did not answer in full within 1 s (install.ignition_fetch_timeout)`);
  t.true(Date.now() - started < slowMs, 'keel gave up before the slow server finished');

  const e = await get(`${h.base}/ignition/${gone}`);
  t.is(e.status, 502);
  t.is(reason(e.body), `${remote}/gone.ign answered 404 Not Found`);
  const f = await get(`${h.base}/ignition/${unreachable}`);
  t.is(f.status, 502);
  t.regex(reason(f.body), new RegExp(`^Cannot fetch ${closed}: .*ECONNREFUSED`));

  const g = await get(`${h.base}/ignition/${missingFile}`);
  t.is(g.status, 404);
  t.is(reason(g.body), 'No kickstart file named nowhere.ign');
  const n = await get(`${h.base}/ignition/${none}`);
  t.is(n.status, 404);
  t.regex(reason(n.body), /has no _ignition attribute/);
  const u = await get(`${h.base}/ignition/0123456789abcdef0123456789abcdef`);
  t.is(u.status, 404);
  t.regex(reason(u.body), /No node found/);
});

test('GET /ignition/bin sends the configured binary; 404 with a reason when none is configured or the file is missing', async (t) => {
  const unset = await startTestHead(t);
  const none = await get(`${unset.base}/ignition/bin`);
  t.is(none.status, 404);
  t.is(reason(none.body), 'No Ignition binary is installed on this head: set install.ignition_bin in keel.toml');

  const configured = await startTestHead(t, { KEEL_INSTALL_IGNITION_BIN: '/nonexistent/ignition' });
  const missing = await get(`${configured.base}/ignition/bin`);
  t.is(missing.status, 404);
  t.regex(reason(missing.body), /^The Ignition binary install.ignition_bin names is missing: No file \/nonexistent\/ignition/);

  const binary = Buffer.from(Array.from({ length: 300000 }, (_, i) => (i * 7) % 256));
  const present = await startTestHead(t, { KEEL_INSTALL_IGNITION_BIN: join(unset.dataDir, 'ignition') });
  writeFileSync(join(unset.dataDir, 'ignition'), binary);
  const res = await fetch(`${present.base}/ignition/bin`);
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'application/octet-stream');
  t.deepEqual(Buffer.from(await res.arrayBuffer()), binary);
});
