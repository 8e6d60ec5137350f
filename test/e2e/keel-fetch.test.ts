// keel's initramfs fetcher (images/initramfs/keel-fetch) run on this host with busybox's applets
// only, as in the initramfs, against a real keel head on loopback: the paths a boot in a VM
// seldom takes — a head that does not answer, a chunk or a whole file that arrives wrong, a chunk
// that fails once and is fetched again after the backoff. The "wrong" head is a forwarding proxy
// in front of the real head that damages what the test says (a broken cache, as a node may meet).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startTestHead } from '../helpers/head.js';
import { seededBuffer } from '../helpers/seeded-bytes.js';

const FETCH = new URL('../../images/initramfs/keel-fetch', import.meta.url).pathname;
/** Nothing listens there: a head that is down. */
const DEAD_HEAD = 'http://127.0.0.1:1';
const RUN_TIMEOUT_MS = 60_000;

/** A directory of busybox applets: keel-fetch runs with these alone on its PATH, as in the initramfs. */
function busyboxPath(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-busybox-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('busybox', ['--install', '-s', dir]);
  return dir;
}

interface Fetched {
  code: number | null;
  output: string;
  file?: Buffer;
  env: string;
}

function keelFetch(t: ExecutionContext, mode: 'chunks' | 'whole', urls: string[]): Promise<Fetched> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-fetch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'image.squashfs');
  const path = busyboxPath(t);
  return new Promise((resolve) => {
    execFile(join(path, 'sh'), [FETCH, mode, out, urls.join(',')], { env: { PATH: path }, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const read = (file: string) => {
        try {
          return readFileSync(file);
        } catch {
          return undefined;
        }
      };
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: stdout + stderr, file: read(out), env: read(`${out}.env`)?.toString() ?? '' });
    });
  });
}

/** A keel head with an image of 2.5 chunks; its /boot URL and the bytes. */
async function headWithImage(t: ExecutionContext) {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const uid = (await h.call('POST', '/images', { token, body: { name: 'img' } })).json.data as string;
  const bytes = await seededBuffer(7, 2.5 * 2 ** 20);
  const put = await fetch(`${h.base}/image/${uid}/content`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: new Uint8Array(bytes) });
  t.is(put.status, 200);
  const head = h.base.replace('/api/v1', '');
  const manifest = (await (await fetch(`${head}/boot/image/${uid}/manifest`)).json()) as { chunks: string[]; sha256: string };
  return { head, path: `/boot/image/${uid}`, bytes, manifest };
}

/** A proxy to `upstream` whose `damage` may answer a request itself (true) instead of forwarding it. */
async function proxy(t: ExecutionContext, upstream: string, damage: (path: string, body: Buffer, res: ServerResponse) => boolean): Promise<string> {
  const server = createServer((req, res) => {
    void (async () => {
      const reply = await fetch(upstream + req.url);
      const body = Buffer.from(await reply.arrayBuffer());
      if (damage(req.url!, body, res)) return;
      const headers: Record<string, string> = {};
      reply.headers.forEach((value, key) => (headers[key] = value));
      res.writeHead(reply.status, headers).end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const flipped = (body: Buffer) => {
  const copy = Buffer.from(body);
  copy[0] = copy[0]! ^ 0xff;
  return copy;
};
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('chunks: a head that is down is skipped; a chunk that arrives wrong is fetched from the next head', async (t) => {
  const { head, path, bytes, manifest } = await headWithImage(t);
  const broken = await proxy(t, head, (url, body, res) => {
    if (url !== `/boot/chunks/${manifest.chunks[1]}`) return false;
    res.writeHead(200, { 'content-length': String(body.length) }).end(flipped(body));
    return true;
  });
  const fetched = await keelFetch(t, 'chunks', [`${DEAD_HEAD}${path}`, `${broken}${path}`, `${head}${path}`]);
  t.is(fetched.code, 0, fetched.output);
  t.true(fetched.file?.equals(bytes), 'the image, byte for byte');
  t.regex(fetched.output, /GET http:\/\/127\.0\.0\.1:1\/boot\/image\/\w+\/manifest failed/);
  t.true(fetched.output.includes(`chunk 1 from ${broken}: sha256 `), fetched.output);
  t.false(fetched.output.includes('chunk 0 from'), 'good chunks are taken from the first head that answers');
  t.true(fetched.env.includes(`KEEL_IMAGE_SHA256='${manifest.sha256}'`), fetched.env);
  t.true(fetched.env.includes(`KEEL_IMAGE_URL='${broken}${path}'`), 'the manifest came from the first head that answered');
});

test('chunks: a chunk that fails once is fetched again after the backoff from the same head', async (t) => {
  const { head, path, bytes, manifest } = await headWithImage(t);
  let failures = 0;
  const flaky = await proxy(t, head, (url, _body, res) => {
    if (url !== `/boot/chunks/${manifest.chunks[2]}` || failures > 0) return false;
    failures += 1;
    res.writeHead(503).end('busy');
    return true;
  });
  const started = Date.now();
  const fetched = await keelFetch(t, 'chunks', [`${flaky}${path}`]);
  t.is(fetched.code, 0, fetched.output);
  t.true(fetched.file?.equals(bytes));
  t.regex(fetched.output, /chunk 2 from http:\/\/127\.0\.0\.1:\d+: .*503/);
  t.true(Date.now() - started >= 1000, 'one backoff of 1 s before the second try');
});

test('whole: exact Content-Length and the ETag\'s sha256, else the next head', async (t) => {
  const { head, path, bytes } = await headWithImage(t);
  const truncated = await proxy(t, head, (url, body, res) => {
    if (url !== path) return false;
    // The full length announced, half the bytes sent, then the connection closed.
    res.writeHead(200, { 'content-length': String(body.length) });
    res.write(body.subarray(0, body.length / 2), () => res.destroy());
    return true;
  });
  const damaged = await proxy(t, head, (url, body, res) => {
    if (url !== path) return false;
    res.writeHead(200, { 'content-length': String(body.length), etag: `"${sha256(body)}"` }).end(flipped(body));
    return true;
  });
  const fetched = await keelFetch(t, 'whole', [`${truncated}${path}`, `${damaged}${path}`, `${head}${path}`]);
  t.is(fetched.code, 0, fetched.output);
  t.true(fetched.file?.equals(bytes));
  t.true(fetched.output.includes(`GET ${truncated}${path}`), fetched.output);
  t.true(fetched.output.includes(`GET ${damaged}${path}: sha256 ${sha256(flipped(bytes))}, the ETag says ${sha256(bytes)}`), fetched.output);
  t.true(fetched.env.includes(`KEEL_IMAGE_URL='${head}${path}'`));
});

test('every head failing is exit 1 with the reasons, for init to try again', async (t) => {
  const { path } = await headWithImage(t);
  for (const mode of ['chunks', 'whole'] as const) {
    const fetched = await keelFetch(t, mode, [`${DEAD_HEAD}${path}`]);
    t.is(fetched.code, 1, fetched.output);
    t.regex(fetched.output, /keel-fetch: GET http:\/\/127\.0\.0\.1:1\/boot\/image\/\w+(\/manifest)? failed/);
  }
});
