// The public boot path over real HTTP: image content by name/uid with curl as the client (Range
// edge cases, HEAD, conditionals), chunks and manifests, and many slow readers at once.
import test from 'ava';
import { connect } from 'node:net';
import { execa } from 'execa';
import { remainderBudget } from '../src/http/send-file.js';
import { rawRequest, sha256, upload } from './helpers/http-raw.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { startTestHead } from './helpers/head.js';

const MiB = 1024 * 1024;

async function headWithImage(t: Parameters<typeof startTestHead>[0], size: number, seed = 11) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const uid = (await h.call('POST', '/images', { token, body: { name: 'img' } })).json.data as string;
  const put = await upload(`${h.base}/image/img/content`, token, seed, size);
  if (put.status !== 200) throw new Error(JSON.stringify(put.json));
  const boot = `http://127.0.0.1:${h.head.httpPort}/boot`;
  return { h, token, uid, boot, bytes: await seededBuffer(seed, size) };
}

/** curl as a real client: status, headers (lower-case) and body. */
async function curl(url: string, ...args: string[]) {
  const stdout = Buffer.from((await execa('curl', ['-s', '-i', ...args, url], { encoding: 'buffer' })).stdout);
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.subarray(0, split).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  return { status: Number(head[0]!.split(' ')[1]), headers, body: stdout.subarray(split + 4) };
}

test('Range edge cases through curl: first/last byte, suffixes, chunk boundaries, past the end, malformed', async (t) => {
  const size = 2 * MiB + 100;
  const { boot, bytes, uid } = await headWithImage(t, size);
  const url = `${boot}/image/img`;
  const cases: [string, number, number, number][] = [
    ['bytes=0-0', 206, 0, 1],
    [`bytes=${size - 1}-${size - 1}`, 206, size - 1, size],
    [`bytes=${size - 1}-`, 206, size - 1, size],
    ['bytes=-100', 206, size - 100, size],
    [`bytes=-${size * 2}`, 206, 0, size],
    [`bytes=${MiB - 10}-${MiB + 9}`, 206, MiB - 10, MiB + 10], // spans two chunks
    [`bytes=100-${size * 3}`, 206, 100, size],
  ];
  for (const [range, status, start, end] of cases) {
    const res = await curl(url, '-H', `Range: ${range}`);
    t.is(res.status, status, range);
    t.is(res.headers['content-range'], `bytes ${start}-${end - 1}/${size}`, range);
    t.is(res.headers['content-length'], String(end - start), range);
    t.true(res.body.equals(bytes.subarray(start, end)), range);
  }
  for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`, 'bytes=-0']) {
    const res = await curl(url, '-H', `Range: ${range}`);
    t.is(res.status, 416, range);
    t.is(res.headers['content-range'], `bytes */${size}`, range);
  }
  for (const range of ['bytes=5-2', 'bytes=x-y', 'lines=1-2', 'bytes=0-1,4-5']) {
    const res = await curl(url, '-H', `Range: ${range}`);
    t.is(res.status, 200, `${range} is ignored`);
    t.is(res.headers['content-length'], String(size));
    t.true(res.body.equals(bytes), range);
  }
  // By uid as well as by name; HEAD has the GET's length and no body.
  const head = await curl(`${boot}/image/${uid}`, '-I');
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(size));
  t.is(head.headers['accept-ranges'], 'bytes');
  const etag = head.headers.etag!;
  t.is(etag, `"${sha256(bytes)}"`);
  t.is((await curl(url, '-H', `If-None-Match: ${etag}`)).status, 304);
  t.is((await curl(url, '-H', 'Range: bytes=0-9', '-H', `If-Range: ${etag}`)).status, 206);
  t.is((await curl(url, '-H', 'Range: bytes=0-9', '-H', 'If-Range: "old"')).status, 200);
  // Boot paths are read-only and public: no token needed, and no writes.
  t.is((await rawRequest(url, { method: 'PUT', body: Buffer.from('x') })).status, 405);
  t.is((await curl(`${boot}/image/nope`)).status, 404);
  t.is((await curl(`${boot}/admins`)).status, 404);
});

test('chunks and manifests: a node can rebuild the file from its manifest and chunks', async (t) => {
  const size = 3 * MiB + 7;
  const { h, token, boot, bytes } = await headWithImage(t, size, 12);
  const manifest = JSON.parse((await curl(`${boot}/image/img/manifest`)).body.toString()) as { size: number; sha256: string; chunk_size: number; chunks: string[] };
  t.is(manifest.size, size);
  t.is(manifest.chunks.length, 4);
  const parts: Buffer[] = [];
  for (const hash of manifest.chunks) {
    const res = await curl(`${boot}/chunks/${hash}`);
    t.is(res.status, 200);
    t.is(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    t.is(res.headers.etag, `"${hash}"`);
    t.is(sha256(res.body), hash);
    parts.push(res.body);
  }
  t.true(Buffer.concat(parts).equals(bytes));
  t.is(sha256(Buffer.concat(parts)), manifest.sha256);
  // Ranges work on chunks too.
  const tail = await curl(`${boot}/chunks/${manifest.chunks[3]}`, '-H', 'Range: bytes=-7');
  t.is(tail.status, 206);
  t.true(tail.body.equals(bytes.subarray(size - 7)));
  t.is((await curl(`${boot}/chunks/xyz`)).status, 400);
  t.is((await curl(`${boot}/chunks/${'0'.repeat(64)}`)).status, 404);
  // A chunk no file references any more is not served (it is garbage awaiting GC).
  await h.call('DELETE', '/image/img/content', { token });
  t.is((await curl(`${boot}/chunks/${manifest.chunks[0]}`)).status, 404);
});

test('many slow readers: bounded remainder copies, every reader still gets exact bytes', async (t) => {
  const size = 16 * MiB;
  const { boot, bytes } = await headWithImage(t, size, 13);
  const port = Number(new URL(boot).port);
  const readers = 100;
  // A small budget, so that most stalled readers take the path that re-reads from LMDB.
  remainderBudget.limit = 8 * MiB;
  const sockets = Array.from({ length: readers }, () => {
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET /boot/image/img HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause(); // a slow reader: reads nothing for now
    return socket;
  });
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 1500));
  t.true(remainderBudget.inUse <= remainderBudget.limit, `copies held: ${remainderBudget.inUse}`);
  t.log(`remainder copies held by ${readers} stalled readers: ${(remainderBudget.inUse / MiB).toFixed(1)} MiB`);
  // Ten readers wake up and read to the end: their bytes are exact, whether the server kept a
  // copy of their remainder or reads it again from LMDB.
  const received = await Promise.all(sockets.slice(0, 10).map((socket) => new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      total += d.length;
      // The header is a few hundred bytes: the body is complete once that much more arrived.
      if (total < size) return;
      const all = Buffer.concat(parts, total);
      const split = all.indexOf('\r\n\r\n');
      if (split >= 0 && total - split - 4 >= size) resolve(all.subarray(split + 4, split + 4 + size));
    });
    socket.on('error', reject);
    socket.resume();
  })));
  for (const body of received) t.true(body.equals(bytes));
  sockets.forEach((s) => s.destroy());
  // Aborted transfers give back what they held.
  for (let i = 0; i < 50 && remainderBudget.inUse > 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.is(remainderBudget.inUse, 0);
});
