import test from 'ava';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { mount } from '../src/http/dispatch.js';
import { statusLine } from '../src/http/errors.js';
import type { Request, Route } from '../src/http/route.js';
import { Router } from '../src/http/router.js';
import { HttpServer } from '../src/http/server.js';
import { startTestHead } from './helpers/head.js';

test('success and error envelopes with the right status codes', async (t) => {
  const h = await startTestHead(t);
  const { access_token } = await h.login();
  const ok = await h.call('GET', '/admins', { token: access_token });
  t.is(ok.status, 200);
  t.true(ok.json.success);
  t.is(typeof ok.json.data, 'object');

  const missing = await h.call('GET', '/admin/nobody', { token: access_token });
  t.deepEqual([missing.status, missing.json], [404, { success: false, reason: 'No admin found for ID=nobody' }]);

  const unknownPath = await h.call('GET', '/no/such/thing', { token: access_token });
  t.is(unknownPath.status, 404);
  t.false(unknownPath.json.success);

  const res = await fetch(`${h.base}/cluster/time`, { method: 'PUT' });
  t.is(res.status, 405);
  t.is(res.statusText, 'Method Not Allowed');
  t.is(res.headers.get('allow'), 'GET');
  t.false(((await res.json()) as { success: boolean }).success);

  const malformed = await h.call('POST', '/admins', { token: access_token, body: '{"name": ' });
  t.is(malformed.status, 400);
  t.regex(malformed.json.reason!, /Malformed JSON/);

  const unknownFields = await h.call('POST', '/admins', { token: access_token, body: { name: 'x1', colour: 'red', size: 1 } });
  t.deepEqual([unknownFields.status, unknownFields.json.reason], [400, 'Unhandled parameter(s): colour, size']);

  const wrongType = await h.call('PATCH', '/admin/admin', { token: access_token, body: { roles: 'role.fulladmin' } });
  t.deepEqual([wrongType.status, wrongType.json.reason], [400, "Field 'roles' must be a list of strings"]);

  const notObject = await h.call('POST', '/admins', { token: access_token, body: [1, 2] });
  t.is(notObject.status, 400);

  const xml = await h.call('POST', '/admins', { token: access_token, body: '<admin/>', headers: { 'content-type': 'application/xml' } });
  t.is(xml.status, 415);
  t.false(xml.json.success);

  // What `curl --data '{…}'` sends, as in the spec's examples.
  const curlStyle = await h.call('POST', '/admins', {
    token: access_token, body: '{"name":"curlstyle"}', headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(curlStyle.status, 200);
});

test('bodies over the configured limit get 413, declared or streamed', async (t) => {
  const h = await startTestHead(t, { KEEL_HTTP_MAX_BODY_BYTES: '2048' });
  const { access_token } = await h.login();
  const big = { name: 'big', description: 'x'.repeat(4096) };
  const declared = await h.call('POST', '/admins', { token: access_token, body: big });
  t.is(declared.status, 413);
  t.false(declared.json.success);

  // Chunked upload without Content-Length: the limit is enforced while reading.
  const stream = new ReadableStream({
    start(controller) {
      for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
      controller.close();
    },
  });
  const chunked = await fetch(`${h.base}/admins`, {
    method: 'POST', body: stream, duplex: 'half', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
  } as RequestInit);
  t.is(chunked.status, 413);
  t.is((await h.call('GET', '/cluster/time')).status, 200, 'server still answers');
});

function rawRequest(port: number, payload: string, destroyAfterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(payload);
      setTimeout(() => socket.destroy(), destroyAfterMs);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

test('aborted and garbage requests neither crash the server, leak memory nor leave it stuck', async (t) => {
  const h = await startTestHead(t);
  const { access_token } = await h.login();
  const port = h.head.httpPort;
  const partial = `POST /api/v1/admins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${access_token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"abc`;
  const garbage = '\x00\x01\x02 NOT HTTP AT ALL\r\n\r\n';
  const badLength = 'POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n';
  const burst = async (rounds: number) => {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(Array.from({ length: 30 }, (_, i) => rawRequest(port, [partial, garbage, badLength][i % 3]!, 5)));
    }
  };
  const heapAfterGc = () => {
    (globalThis as { gc?: () => void }).gc!();
    const { heapUsed, external } = process.memoryUsage();
    return heapUsed + external;
  };
  // Bounded: a warm-up of 300 requests, then 3,000 more; the heap must not keep what they left.
  await burst(10);
  const before = heapAfterGc();
  await burst(100);
  const growth = heapAfterGc() - before;
  t.true(growth < 4 * 1024 * 1024, `heap + external memory grew by ${growth} bytes over 3,000 aborted/garbage requests`);
  const after = await h.call('GET', '/admins', { token: access_token });
  t.is(after.status, 200);
  t.false(Object.values(after.json.data as Record<string, { name: string }>).some((a) => a.name === 'abc'), 'half-sent body created nothing');
});

test('every status gets its reason phrase, also those no table listed (502 from power)', (t) => {
  t.is(statusLine(502), '502 Bad Gateway');
  t.is(statusLine(206), '206 Partial Content');
  t.is(statusLine(599), '599');
});

test('the peer address and the query reach a route that reads them, answered at once or after a wait', async (t) => {
  const seen = (req: Request) => ({ address: req.remoteAddress, q: req.query.get('q'), params: req.params });
  let readAfterAbort: string | undefined;
  const router = new Router<Route>();
  router.add({ method: 'GET', path: '/now/:id', access: 'public', summary: 'answered in the request callback', handler: seen });
  router.add({
    method: 'GET', path: '/later/:id', access: 'public', summary: 'answered after a wait',
    handler: async (req) => {
      await sleep(10);
      return seen(req);
    },
  });
  router.add({
    method: 'GET', path: '/gone', access: 'public', summary: 'reads the address after the client left',
    handler: async (req) => {
      await sleep(200);
      readAfterAbort = req.remoteAddress;
      return undefined;
    },
  });
  const log = pino({ level: 'silent' });
  const server = new HttpServer({ mounts: [mount('/api/v1', router, undefined, { errorStatuses: [], log })], maxBodyBytes: 1024 * 1024, log });
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  for (const path of ['/now', '/later']) {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}/a%2Fb?q=x%20y&other=1`);
    t.is(res.status, 200, path);
    t.deepEqual(((await res.json()) as { data: unknown }).data, { address: '127.0.0.1', q: 'x y', params: { id: 'a/b' } }, path);
  }
  // The client leaves before the route asks: uWS no longer lets the response be read, the route gets ''.
  const socket = connect(port, '127.0.0.1', () => socket.end('GET /api/v1/gone HTTP/1.1\r\nHost: x\r\n\r\n'));
  socket.on('error', () => {});
  await sleep(50);
  socket.destroy();
  for (let i = 0; i < 50 && readAfterAbort === undefined; i++) await sleep(20);
  t.is(readAfterAbort, '');
  const after = await fetch(`http://127.0.0.1:${port}/api/v1/now/1`);
  t.is(after.status, 200, 'the server still answers');
});
