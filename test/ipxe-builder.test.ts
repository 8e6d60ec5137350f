// Spec 004's /ipxes on a real head building real iPXE from the vendored source, in the shared
// work directory (test/helpers/ipxe-build.ts): its curl examples run as written with curl (base
// URL changed to keel's, a token added), each build reaching progress 100; a new script only
// relinks; the artifact becomes a TFTP/firmware file; a missing source, a missing toolchain and a
// failing make end the job failed with a reason and a readable log; bad requests are 400s.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { IpxeBuilder } from '../src/build/ipxe.js';
import { BuildJobs } from '../src/build/jobs.js';
import { BuildQueue } from '../src/build/queue.js';
import { Model } from '../src/model/model.js';
import { Store } from '../src/store/store.js';
import { startTestHead, type TestHead } from './helpers/head.js';
import { COLD_BUILD_TIMEOUT_MS, IPXE_BUILD_ENV, IPXE_SOURCE, waitForBuild, type BuildView } from './helpers/ipxe-build.js';

const run = promisify(execFile);
const SPEC_BASE = 'http://services.provisioner.sandbox.cloud.alphahorizon.io:30002/api';

/** The curl commands of the excerpt of spec 004 in test/fixtures, as written. */
function specCommands(): string[] {
  const text = readFileSync(new URL('fixtures/spec-004-ipxes.txt', import.meta.url), 'utf8');
  return text.split(/^(?=curl )/m).slice(1).map((block) => block.replace(/\n#[^\n]*\n?$/, '').replace(/\n(#[^\n]*)$/gm, '').trim());
}

async function buildView(h: TestHead, token: string, id: number | string): Promise<BuildView> {
  const res = await h.call('GET', `/ipxes/${id}`, { token });
  if (res.status !== 200) throw new Error(`GET /ipxes/${id}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.data as BuildView;
}

const ended = (view: BuildView) => ['done', 'failed', 'cancelled'].includes(view.status);

async function logOf(h: TestHead, token: string, id: number): Promise<string> {
  const res = await fetch(`${h.base}/ipxes/${id}/log`, { headers: { authorization: `Bearer ${token}` } });
  return res.text();
}

test('spec 004\'s iPXE builder examples run as written with curl; every build reaches progress 100 with its script embedded', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS);
  const h = await startTestHead(t, IPXE_BUILD_ENV);
  const token = (await h.login()).access_token;
  const commands = specCommands();
  t.is(commands.length, 8, 'four builds, four status reads');
  const created: BuildView[] = [];
  for (const command of commands) {
    const rewritten = command.replaceAll(SPEC_BASE, h.base).replace(/^curl /, `curl -sS -H 'Authorization: Bearer ${token}' `);
    const { stdout } = await run('bash', ['-c', rewritten]);
    const answer = JSON.parse(stdout) as { success: boolean; data: BuildView | BuildView[] };
    t.true(answer.success, `${command}: ${stdout}`);
    if (command.includes('-d ')) created.push(answer.data as BuildView);
    else if (/ipxes'$/.test(command)) t.is((answer.data as BuildView[]).length, 4, 'the list has the four builds');
    else t.is((answer.data as BuildView).id, Number(/ipxes\/(\d+)'$/.exec(command)![1]));
  }
  t.deepEqual(created.map((view) => [view.id, view.status, view.progress]), [[1, 'queued', 0], [2, 'queued', 0], [3, 'queued', 0], [4, 'queued', 0]]);
  const seen: number[] = [];
  const done: BuildView[] = [];
  for (const { id } of created) done.push(await waitForBuild(() => buildView(h, token, id), ended, COLD_BUILD_TIMEOUT_MS, id === 1 ? seen : []));
  for (const view of done) {
    t.is(view.status, 'done', `build ${view.id}: ${view.reason}`);
    t.is(view.progress, 100);
  }
  t.true(done[1]!.started! >= done[0]!.ended!, 'one build at a time (build.concurrency 1)');
  t.deepEqual(seen, [...seen].sort((a, b) => a - b), `progress never goes back: ${seen.join(',')}`);
  const script = `#!ipxe\ndhcp\nchain ${h.base}/mainscripts/1`;
  const [efi, kpxe, efi2, lkrn] = await Promise.all(done.map(async (view) => Buffer.from(await (await fetch(view.url!)).arrayBuffer())));
  t.regex(done[0]!.url!, new RegExp(`/api/v1/ipxes/${done[0]!.uid}/ipxe\\.efi$`));
  t.is(efi!.subarray(0, 2).toString(), 'MZ', 'ipxe.efi is a PE image');
  t.true(efi!.includes(script), 'with the script embedded');
  t.true(efi2!.includes(script), 'the third build (the same request) too');
  t.regex(done[1]!.url!, /\/ipxe\.kpxe$/);
  t.true(kpxe!.length > 32 * 1024, 'ipxe.kpxe (compressed; booted by test/e2e/ipxe-built.test.ts)');
  t.regex(done[3]!.url!, /\/ipxe\.lkrn$/);
  t.is(lkrn!.subarray(0x202, 0x206).toString(), 'HdrS', 'ipxe.lkrn has a Linux kernel header');
  t.is(createHash('sha256').update(efi!).digest('hex'), done[0]!.file!.sha256, 'the URL serves the stored artifact');
});

test('a second script on a built platform only recompiles the embedded script and relinks; the artifact becomes a TFTP file', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS);
  const h = await startTestHead(t, IPXE_BUILD_ENV);
  const token = (await h.login()).access_token;
  const ids: number[] = [];
  for (const marker of ['first', 'second']) {
    const res = await h.call('POST', '/ipxes', { token, body: { script: `#!ipxe\necho relink-${marker}\n`, platform: 'bin-x86_64-pcbios', driver: 'undionly', extension: 'kpxe' } });
    t.is(res.status, 200, JSON.stringify(res.json));
    ids.push((res.json.data as BuildView).id);
  }
  for (const id of ids) t.is((await waitForBuild(() => buildView(h, token, id), ended, COLD_BUILD_TIMEOUT_MS)).status, 'done');
  const compiled = [...(await logOf(h, token, ids[1]!)).matchAll(/\[BUILD\] (\S+)/g)].map((m) => m[1]);
  t.deepEqual(compiled, ['bin-x86_64-pcbios/embedded.o'], 'only the embedded script is compiled again');
  const put = await h.call('PUT', `/ipxes/${ids[1]}/tftpfile`, { token, body: { name: 'undionly.kpxe' } });
  t.is(put.status, 200, JSON.stringify(put.json));
  const view = await buildView(h, token, ids[1]!);
  const artifact = Buffer.from(await (await fetch(view.url!)).arrayBuffer());
  const firmware = Buffer.from(await (await fetch(`${h.base.replace('/api/v1', '/boot')}/firmware/undionly.kpxe`)).arrayBuffer());
  t.true(firmware.equals(artifact), 'GET /boot/firmware/undionly.kpxe serves the built binary');
  t.is((await h.call('PUT', `/ipxes/${ids[1]}/tftpfile`, { token, body: { name: '../x' } })).status, 400);
  // DELETE of an ended build removes it, its artifact and its log.
  t.is((await h.call('DELETE', `/ipxes/${ids[0]}`, { token })).status, 200);
  t.is((await h.call('GET', `/ipxes/${ids[0]}`, { token })).status, 404);
  t.is((await fetch((await buildView(h, token, ids[1]!)).url!.replace(view.uid, 'nope'))).status, 404);
});

test('DELETE of a running iPXE build cancels it: the build stops, the job stays cancelled with its log', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS);
  const h = await startTestHead(t, IPXE_BUILD_ENV);
  const token = (await h.login()).access_token;
  const res = await h.call('POST', '/ipxes', { token, body: { script: '#!ipxe\necho cancel-me\n', platform: 'bin-x86_64-efi', driver: 'ipxe', extension: 'efi' } });
  const { id } = res.json.data as BuildView;
  await waitForBuild(() => buildView(h, token, id), (view) => view.status === 'running', 60_000);
  const cancelled = await h.call('DELETE', `/ipxes/${id}`, { token });
  t.is(cancelled.status, 200, JSON.stringify(cancelled.json));
  t.is((cancelled.json.data as BuildView).status, 'cancelled');
  t.is((cancelled.json.data as BuildView).reason, 'cancelled by admin');
  t.regex(await logOf(h, token, id), /cancelled: cancelled by admin/);
  // The tree is usable at once by the next build (the lock went with the killed group).
  const next = await h.call('POST', '/ipxes', { token, body: { script: '#!ipxe\necho after-cancel\n', platform: 'bin-x86_64-efi', driver: 'ipxe', extension: 'efi' } });
  const done = await waitForBuild(() => buildView(h, token, (next.json.data as BuildView).id), ended, COLD_BUILD_TIMEOUT_MS);
  t.is(done.status, 'done', done.reason);
});

test('a missing source fails the job naming build.ipxe_source; a failing make fails it with make\'s error; both logs are readable through the API', async (t) => {
  t.timeout(COLD_BUILD_TIMEOUT_MS);
  const missing = await startTestHead(t, { ...IPXE_BUILD_ENV, KEEL_BUILD_IPXE_SOURCE: '/nonexistent/ipxe-src.tar.xz' });
  const token = (await missing.login()).access_token;
  const res = await missing.call('POST', '/ipxes', { token, body: { script: '#!ipxe\n', platform: 'bin-x86_64-efi', driver: 'ipxe', extension: 'efi' } });
  const failed = await waitForBuild(() => buildView(missing, token, (res.json.data as BuildView).id), ended, 60_000);
  t.is(failed.status, 'failed');
  t.is(failed.reason, 'No iPXE source: build.ipxe_source /nonexistent/ipxe-src.tar.xz does not exist (docs/builders.md says where to get it)');
  t.regex(await logOf(missing, token, failed.id), /failed: No iPXE source: build\.ipxe_source/);

  const h = await startTestHead(t, IPXE_BUILD_ENV);
  const token2 = (await h.login()).access_token;
  const bad = await h.call('POST', '/ipxes', { token: token2, body: { script: '#!ipxe\n', platform: 'bin-x86_64-efi', driver: 'nosuchdriver', extension: 'efi' } });
  const makeFailed = await waitForBuild(() => buildView(h, token2, (bad.json.data as BuildView).id), ended, COLD_BUILD_TIMEOUT_MS);
  t.is(makeFailed.status, 'failed');
  t.is(makeFailed.reason, 'flock exited with status 2: ld:--defsym:2: undefined symbol `obj_nosuchdriver\' referenced in expression', 'the linker\'s line names the cause');
  t.regex(await logOf(h, token2, makeFailed.id), /make -j"\$jobs" "\$target"[\s\S]*bin-x86_64-efi\/nosuchdriver\.efi[\s\S]*\*\*\*[\s\S]*failed: flock exited with status 2: ld:/);
});

test('a missing toolchain fails the job naming the program and its package', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-ipxe-toolchain-'));
  const store = new Store({ dataDir: dir, headName: 'test' });
  const model = new Model(store, { dataDir: dir });
  const builder = new IpxeBuilder({ source: IPXE_SOURCE, workDir: dir, env: { PATH: join(dir, 'no-tools') } });
  const queue = new BuildQueue({ jobs: new BuildJobs(store), chunks: model.chunks, builders: [builder], concurrency: 1, logDir: join(dir, 'logs'), log: pino({ level: 'silent' }) });
  t.teardown(async () => {
    await queue.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await queue.start();
  const job = await queue.submit('tester', 'ipxe', { script: '#!ipxe\n', platform: 'bin', driver: 'ipxe', extension: 'lkrn' });
  const deadline = Date.now() + 30_000;
  while (queue.jobs.get(job.uid)!.status !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(queue.jobs.get(job.uid)!.reason, `The iPXE toolchain is incomplete: flock is not on the build's PATH (${join(dir, 'no-tools')}); install the Debian package util-linux`);
});

test('bad requests are 400s naming the field; unknown builds 404', async (t) => {
  const h = await startTestHead(t, IPXE_BUILD_ENV);
  const token = (await h.login()).access_token;
  const post = (body: unknown) => h.call('POST', '/ipxes', { token, body });
  const good = { script: '#!ipxe\n', platform: 'bin-x86_64-efi', driver: 'ipxe', extension: 'efi' };
  for (const [body, reason] of [
    [{ ...good, platform: 'bin-arm64-efi' }, /^Field 'platform' must be one of bin-x86_64-efi, /],
    [{ ...good, extension: 'kpxe' }, /^Field 'extension' must be one of efi for platform bin-x86_64-efi$/],
    [{ ...good, script: 'echo hi' }, /^Field 'script' must be an iPXE script starting with '#!ipxe'/],
    [{ ...good, driver: '../../etc' }, /^Field 'driver' must be an iPXE driver name/],
    [{ ...good, label: 'x' }, /^Unknown field 'label'/],
  ] as const) {
    const res = await post(body);
    t.is(res.status, 400, JSON.stringify(body));
    t.regex(res.json.reason!, reason);
  }
  t.is((await h.call('GET', '/ipxes/99', { token })).status, 404);
  t.is((await h.call('GET', '/ipxes', {})).status, 401, 'the list needs a token');
  t.deepEqual((await h.call('GET', '/ipxes', { token })).json.data, [], 'nothing was queued');
});
