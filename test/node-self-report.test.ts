// What a node may write about itself without a token (issue 19, item 3): PUT /node/putattribs takes
// only node_<name> attributes, PUT /node/putstatus only status and hardware; a serial console's
// device must match console.device_patterns (default /dev/ttyS*, /dev/ttyUSB*), whoever sets it.
import test from 'ava';
import { startTestHead, type TestHead } from './helpers/head.js';

/** A head with one node at 127.0.0.1, the address this test's requests come from. */
async function headWithNode(t: Parameters<typeof startTestHead>[0]): Promise<{ h: TestHead; token: string; uid: string }> {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const created = await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:aa:bb:01' } });
  const uid = created.json.data as string;
  t.is(((await h.call('GET', `/node/${uid}`, { token })).json.data as { ip: string }).ip, '127.0.0.1');
  return { h, token, uid };
}

test('a node may set node_<name> attributes and nothing keel or an admin acts on', async (t) => {
  const { h, token, uid } = await headWithNode(t);
  const ownAttributes = async () => (await h.call('GET', `/node/${uid}`, { token })).json.data as { attributes: Record<string, string> };

  const hijack = await h.call('PUT', '/node/putattribs', { body: { console: 'serial', console_device: '/dev/pts/0' } });
  t.is(hijack.status, 403);
  t.is(hijack.json.reason, 'A node may set only node_<name> attributes; refused: console, console_device');
  for (const key of ['console_baud', 'console_ring_kib', 'ipmi_workarounds', 'redfish_tls', 'redfish_quirks', 'power_soft_wait_s', '_boot_config', '_iscsi_target', 'rack', 'node-x', 'node_']) {
    const res = await h.call('PUT', '/node/putattribs', { body: { node_ok: '1', [key]: 'x' } });
    t.is(res.status, 403, key);
  }
  t.deepEqual((await ownAttributes()).attributes, {}, 'a refused request changes nothing');

  t.is((await h.call('PUT', '/node/putattribs', { body: { node_rack: 'r4', node_slot: 7 } })).status, 200);
  t.deepEqual((await ownAttributes()).attributes, { node_rack: 'r4', node_slot: '7' });
  const long = await h.call('PUT', '/node/putattribs', { body: { node_rack: 'r'.repeat(1025) } });
  t.is(long.status, 400);
  t.is(long.json.reason, `Attribute 'node_rack' must have at most 1024 characters`);

  // An admin may still set anything (with a token).
  t.is((await h.call('POST', '/node/putattribs', { token, body: { uid, _boot_config: 'rocky' } })).status, 200);
  t.is((await ownAttributes()).attributes._boot_config, 'rocky');
});

test('a node reports status and hardware only', async (t) => {
  const { h, token, uid } = await headWithNode(t);
  const refused = await h.call('PUT', '/node/putstatus', { body: { status: { up: true }, attributes: { console: 'serial' }, power_uri: 'ipmi://u:p@evil' } });
  t.is(refused.status, 400);
  t.is(refused.json.reason, 'Unhandled parameter(s): attributes, power_uri');
  t.is((await h.call('PUT', '/node/putstatus', { body: { status: { load_avg: '0.1', console: 'serial', console_device: '/dev/pts/0' } } })).status, 200);
  const node = (await h.call('GET', `/node/${uid}`, { token })).json.data as { attributes: Record<string, string>; power_uri: null };
  t.deepEqual(node.attributes, {}, 'status never becomes attributes');
  t.is(node.power_uri, null);
  t.is(((await h.call('GET', `/node/${uid}/console`, { token })).json.data as { kind: string }).kind, 'none');
});

/** GET /node/<id>/console until its kind is `kind` (console capture reconciles shortly after a change). */
async function consoleOf(h: TestHead, token: string, uid: string, kind: string): Promise<{ kind: string; reason?: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const status = (await h.call('GET', `/node/${uid}/console`, { token })).json.data as { kind: string; reason?: string };
    if (status.kind === kind || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('console_device must match console.device_patterns: never a pty or a virtual console', async (t) => {
  const { h, token, uid } = await headWithNode(t);
  for (const device of ['/dev/pts/0', '/dev/tty1', '/dev/ttyS0/../pts/0', '/dev/mem']) {
    t.is((await h.call('PATCH', `/node/${uid}/attributes`, { token, body: { console: 'serial', console_device: device } })).status, 200);
    // Let the console service reconcile the change before reading its verdict.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = await consoleOf(h, token, uid, 'none');
    t.is(status.kind, 'none', device);
    t.is(status.reason, `attribute console_device must be a device matching /dev/ttyS*, /dev/ttyUSB* (config console.device_patterns), got '${device}'`, device);
  }
  // A device of the default patterns is opened (none is plugged in here: capture starts and retries).
  t.is((await h.call('PATCH', `/node/${uid}/attributes`, { token, body: { console_device: '/dev/ttyUSB99' } })).status, 200);
  t.is((await consoleOf(h, token, uid, 'serial')).kind, 'serial');
});
