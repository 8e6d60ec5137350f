// dgram-native when the kernel refuses a datagram with EAGAIN: send() returns false and queues,
// sendBatch() reports `queued`, the queue is flushed in order on writability and 'drain' fires,
// and maxQueuedDatagrams bounds it with a clear error.
//
// How the kernel is made to refuse, deterministically: on plain loopback UDP never says EAGAIN
// (lo has no qdisc and releases the sender's buffer charge at once, so datagrams are dropped at a
// full receiver instead). Here a namespace's lo gets a tbf qdisc limited to 2 Mbit/s: datagrams
// waiting in it stay charged to the sending socket, whose send buffer is the kernel's minimum
// (4608 bytes, a few 1000-byte datagrams), so the next sendmsg/sendmmsg gets EAGAIN until tbf
// lets them go (about 4 ms per datagram). The peer runs in that namespace (as root).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { namespaces, runInNamespace } from '../../../test/helpers/namespaces.js';

const peer = fileURLToPath(new URL('./child-processes/backpressure-peer.ts', import.meta.url));
const MAX_QUEUED = 32;

interface Report {
  sendBufferSize: number;
  firstBatch: { sent: number; queued: number; failed: number };
  firstBatchReceived: number[];
  sendResults: boolean[];
  batch: { sent: number; queued: number; failed: number };
  queuedAtBound: number;
  overflow: { code: string; syscall: string; message: string };
  fullBatch: { sent: number; queued: number; failed: { code: string; message: string }[] };
  drainMs: number;
  queuedAtDrain: number;
  accepted: number;
  received: number[];
}

const sequence = (n: number) => Array.from({ length: n }, (_, i) => i);

test('EAGAIN from the kernel queues datagrams, flushes them in order, emits drain, and the queue bound is enforced', async (t) => {
  const [name] = Object.values(namespaces(t, 'dgnbp', ['tbf'] as const));
  execFileSync('ip', ['netns', 'exec', name!, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '2mbit', 'burst', '1600', 'limit', '1000000']);
  const child = runInNamespace(t, name!, peer, [String(MAX_QUEUED)]);
  const report = (await child.nextLine()) as unknown as Report;
  t.is(await child.exited, 0);

  t.true(report.sendBufferSize < 10_000, `granted SO_SNDBUF ${report.sendBufferSize}`);
  // sendmmsg stopped at EAGAIN: part sent, the rest queued, nothing failed, all delivered in order.
  t.true(report.firstBatch.sent >= 1 && report.firstBatch.queued >= 1, JSON.stringify(report.firstBatch));
  t.is(report.firstBatch.sent + report.firstBatch.queued, 16);
  t.is(report.firstBatch.failed, 0);
  t.deepEqual(report.firstBatchReceived, sequence(16));

  // send(): true until the kernel refuses, then false for every later datagram (they queue
  // behind the first refused one), and a batch behind them is queued whole.
  const firstFalse = report.sendResults.indexOf(false);
  t.true(firstFalse >= 1, JSON.stringify(report.sendResults));
  t.deepEqual(report.sendResults.slice(firstFalse), report.sendResults.slice(firstFalse).map(() => false));
  t.deepEqual(report.batch, { sent: 0, queued: 8, failed: 0 });

  // The bound: the datagram beyond maxQueuedDatagrams is refused with a clear error.
  t.is(report.queuedAtBound, MAX_QUEUED);
  t.like(report.overflow, { code: 'EAGAIN', syscall: 'sendmsg' });
  t.regex(report.overflow.message, /send queue full \(maxQueuedDatagrams 32\)/);
  t.deepEqual({ sent: report.fullBatch.sent, queued: report.fullBatch.queued }, { sent: 0, queued: 0 });
  t.deepEqual(report.fullBatch.failed.map((f) => f.code), ['EAGAIN', 'EAGAIN']);

  // 'drain' came once the queue was empty, after tbf let the backlog through (not at once).
  t.is(report.queuedAtDrain, 0);
  t.true(report.drainMs > 20, `drain after ${report.drainMs} ms`);
  // Everything accepted (sent or queued) arrived exactly once and in order; nothing refused did.
  t.is(report.accepted, firstFalse + MAX_QUEUED);
  t.deepEqual(report.received, sequence(report.accepted));
});
