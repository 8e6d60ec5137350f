import test, { type ExecutionContext } from 'ava';
import { seededRandom } from './helpers/prng.js';
import { encodeNetascii, type ReadBlock, type ReadBlockInto } from '../src/net/tftp/blocks.js';
import type { TftpLimits } from '../src/net/tftp/options.js';
import { parseTftp, serializeAck, serializeData, serializeError, serializeRequest, type TftpOption, type TftpPacket } from '../src/net/tftp/packets.js';
import type { TransferMode } from '../src/net/tftp/request.js';
import { DEFAULT_RETRANSMIT, Transfer, type RetransmitPolicy, type TransferResult, type TransferStep } from '../src/net/tftp/transfer.js';

// ---------------------------------------------------------------------------------------------
// Content: a synthetic file whose every byte depends on its offset, so a block delivered at the
// wrong place (a rollover or window bug) never matches, and 40 MiB need no allocation.

function patternByte(offset: number): number {
  return Math.imul(offset ^ (offset >>> 13), 0x9e3779b1) >>> 24;
}

function synthetic(offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = patternByte(offset + i);
  return buf;
}


function decode(buf: Buffer): TftpPacket {
  const result = parseTftp(buf);
  if (!result.ok) throw new Error(`transfer sent an unparseable packet: ${result.reason}`);
  return result.packet;
}

/** What a step sent, as block numbers for DATA and packet types otherwise. */
function summary(step: TransferStep): Array<number | string> {
  return step.send.map((buf) => {
    const packet = decode(buf);
    return packet.type === 'data' ? packet.block : packet.type === 'error' ? `error ${packet.code}` : packet.type;
  });
}

function newTransfer(fileSize: number, options: Record<string, string> = {}, extra: { mode?: TransferMode; readBlock?: ReadBlock; readBlockInto?: ReadBlockInto; fileUnchanged?: () => boolean; limits?: TftpLimits; retransmit?: Partial<RetransmitPolicy> } = {}) {
  const clock = { now: 0 };
  const transfer = new Transfer({
    request: { filename: 'f', mode: extra.mode ?? 'octet', options: Object.entries(options).map(([name, value]) => ({ name, value })) },
    fileSize,
    readBlock: extra.readBlock ?? synthetic,
    readBlockInto: extra.readBlockInto,
    fileUnchanged: extra.fileUnchanged,
    limits: extra.limits,
    retransmit: extra.retransmit,
    now: () => clock.now,
  });
  return { transfer, clock };
}

// ---------------------------------------------------------------------------------------------
// A simulated client on a simulated network: RFC 1350 lock-step or RFC 7440 windowed receiver,
// constant one-way latency, seeded independent loss in each direction, fake clock throughout.

interface Scenario {
  fileSize: number;
  options?: Record<string, string>;
  mode?: TransferMode;
  readBlock?: ReadBlock;
  /** The bytes the client must end up with (default: the file itself). */
  expected?: (offset: number, length: number) => Buffer;
  expectedLength?: number;
  loss?: number;
  lossToClient?: number;
  lossToServer?: number;
  seed?: number;
  latencyMs?: number;
  /** The client's retransmission timeout (default: its negotiated timeout, else 1 s). */
  clientTimeoutMs?: number;
  clientRetries?: number;
  /** RFC 7440 receiver that ACKs the last in-order block as soon as it sees a gap (once per gap). */
  ackOnGap?: boolean;
  /** How long the client keeps answering a repeated final DATA after its final ACK (0: it leaves at once). */
  dallyMs?: number;
  /** Drop exactly these client ACKs (by wire block number, first occurrence only), on top of random loss. */
  dropAcks?: number[];
  retransmit?: Partial<RetransmitPolicy>;
  limits?: TftpLimits;
}

interface SimOutcome {
  result: TransferResult;
  clientComplete: boolean;
  clientReceived: number;
  mismatches: number;
  dropped: number;
  /** Largest number of datagrams one step asked to send: the window bound. */
  largestBurst: number;
  /** The server read the file front to back, each byte once. */
  readsSequential: boolean;
  bytesRead: number;
  sawBlockZero: boolean;
  elapsedMs: number;
  clientError: TftpPacket | undefined;
}

function simulate(scenario: Scenario): SimOutcome {
  const random = seededRandom(scenario.seed ?? 1);
  const lossToClient = scenario.lossToClient ?? scenario.loss ?? 0;
  const lossToServer = scenario.lossToServer ?? scenario.loss ?? 0;
  const latency = scenario.latencyMs ?? 1;
  const source = scenario.readBlock ?? synthetic;
  const expected = scenario.expected ?? source;
  const expectedLength = scenario.expectedLength ?? scenario.fileSize;
  const dropAcks = new Set(scenario.dropAcks ?? []);
  let now = 0;

  let nextRead = 0;
  let readsSequential = true;
  let bytesRead = 0;
  const readBlock: ReadBlock = (offset, length) => {
    if (offset !== nextRead) readsSequential = false;
    nextRead = offset + length;
    bytesRead += length;
    return source(offset, length);
  };

  const transfer = new Transfer({
    request: { filename: 'f', mode: scenario.mode ?? 'octet', options: Object.entries(scenario.options ?? {}).map(([name, value]) => ({ name, value })) },
    fileSize: scenario.fileSize,
    readBlock,
    limits: scenario.limits,
    retransmit: scenario.retransmit,
    now: () => now,
  });

  // In-flight datagrams: constant latency keeps them in time order, so the queue is append-only.
  const queue: Array<{ at: number; toClient: boolean; packet: Buffer }> = [];
  let head = 0;
  let dropped = 0;
  let serverTimer: number | null = null;
  let clientTimer: number | null = null;
  let result: TransferResult | undefined;
  let largestBurst = 0;
  let sawBlockZero = false;

  const client = {
    started: false,
    blockSize: 512,
    windowSize: 1,
    timeoutMs: scenario.clientTimeoutMs ?? 1000,
    next: 1,
    lastAck: 0,
    sinceAck: 0,
    received: 0,
    mismatches: 0,
    retries: 0,
    gapAcked: false,
    complete: false,
    left: false,
    error: undefined as TftpPacket | undefined,
  };
  const wire = (index: number) => index % 65536;

  function toServer(packet: Buffer, block: number): void {
    if (result !== undefined) return; // the transfer's port is closed
    if (dropAcks.delete(block) || random() < lossToServer) {
      dropped++;
      return;
    }
    queue.push({ at: now + latency, toClient: false, packet });
  }
  function sendAck(index: number): void {
    client.lastAck = index;
    client.sinceAck = 0;
    toServer(serializeAck(wire(index)), wire(index));
  }
  function apply(step: TransferStep): void {
    largestBurst = Math.max(largestBurst, step.send.length);
    for (const packet of step.send) {
      if (packet.readUInt16BE(0) === 3 && packet.readUInt16BE(2) === 0) sawBlockZero = true;
      if (random() < lossToClient) dropped++;
      // A copy, as the kernel takes one: the transfer refills an acknowledged block's buffer.
      else queue.push({ at: now + latency, toClient: true, packet: Buffer.from(packet) });
    }
    serverTimer = step.timeoutMs === null ? null : now + step.timeoutMs;
    if (step.finished !== null) result = step.finished;
  }

  function clientReceives(buf: Buffer): void {
    if (client.left) return;
    const packet = decode(buf);
    if (packet.type === 'error') {
      client.error = packet;
      client.left = true;
      clientTimer = null;
      return;
    }
    if (packet.type === 'oack') {
      if (!client.started) {
        client.started = true;
        for (const { name, value } of packet.options) {
          if (name === 'blksize') client.blockSize = Number(value);
          if (name === 'windowsize') client.windowSize = Number(value);
          if (name === 'timeout' && scenario.clientTimeoutMs === undefined) client.timeoutMs = Number(value) * 1000;
        }
      }
      // A repeated OACK means our ACK 0 was lost.
      if (client.next === 1) sendAck(0);
      clientTimer = now + client.timeoutMs;
      return;
    }
    if (packet.type !== 'data') throw new Error(`server sent ${packet.type} to the client`);
    client.started = true;
    const lastIndex = client.next - 1;
    if (client.complete) {
      // Dally: the final DATA again means the final ACK was lost.
      if (packet.block === wire(lastIndex)) sendAck(lastIndex);
      return;
    }
    if (packet.block === wire(client.next)) {
      const length = packet.payload.length;
      if (length > client.blockSize || !packet.payload.equals(expected(client.received, length))) client.mismatches++;
      client.received += length;
      client.next++;
      client.sinceAck++;
      client.retries = 0;
      client.gapAcked = false;
      clientTimer = now + client.timeoutMs;
      if (length < client.blockSize) {
        client.complete = true;
        sendAck(client.next - 1);
        clientTimer = now + (scenario.dallyMs ?? 3000);
      } else if (client.sinceAck >= client.windowSize) {
        sendAck(client.next - 1);
      }
      return;
    }
    if (packet.block === wire(client.lastAck)) {
      // The block we acknowledged last, again: our ACK was lost (the classic client ACKs every duplicate).
      sendAck(client.lastAck);
      return;
    }
    const ahead = (packet.block - wire(client.next) + 65536) % 65536;
    if (scenario.ackOnGap && ahead < client.windowSize && !client.gapAcked) {
      client.gapAcked = true;
      sendAck(client.next - 1);
    }
  }

  function clientTimeout(): void {
    if (client.complete) {
      client.left = true; // dally over
      clientTimer = null;
      return;
    }
    client.retries++;
    if (client.retries > (scenario.clientRetries ?? 8)) {
      client.left = true;
      clientTimer = null;
      return;
    }
    // RFC 7440 §4: on timeout the receiver ACKs the last block received in order.
    if (client.started) sendAck(client.next - 1);
    clientTimer = now + client.timeoutMs;
  }

  apply(transfer.start());
  clientTimer = now + client.timeoutMs;
  for (let events = 0; events < 20_000_000; events++) {
    const delivery = head < queue.length ? (queue[head] as { at: number }).at : Infinity;
    const server = serverTimer ?? Infinity;
    const clientAt = client.left ? Infinity : (clientTimer ?? Infinity);
    const at = Math.min(delivery, server, clientAt);
    if (at === Infinity) break;
    now = at;
    if (delivery === at) {
      const { toClient, packet } = queue[head++] as { toClient: boolean; packet: Buffer };
      if (head > 4096) {
        queue.splice(0, head);
        head = 0;
      }
      if (toClient) clientReceives(packet);
      else if (result === undefined) apply(transfer.onDatagram(packet));
    } else if (server === at) {
      serverTimer = null;
      apply(transfer.onTimeout());
    } else {
      clientTimeout();
    }
    if (now > 24 * 3600 * 1000) throw new Error('simulation ran past a day of simulated time');
  }
  if (result === undefined) throw new Error('simulation ended without a transfer result');
  return {
    result,
    clientComplete: client.complete && client.received === expectedLength,
    clientReceived: client.received,
    mismatches: client.mismatches,
    dropped,
    largestBurst,
    readsSequential,
    bytesRead,
    sawBlockZero,
    elapsedMs: now,
    clientError: client.error,
  };
}

function assertDelivered(t: ExecutionContext, sim: SimOutcome, label = ''): void {
  t.is(sim.result.outcome, 'complete', `${label} ${sim.result.detail}`);
  t.is(sim.mismatches, 0, `${label} blocks with wrong content`);
  t.true(sim.clientComplete, `${label} client got ${sim.clientReceived} bytes`);
}

// ---------------------------------------------------------------------------------------------
// Scripted exchanges: the exact datagrams and timer settings.

test('no options: DATA 1 straight away (RFC 1350), lock-step to the short last block', (t) => {
  const { transfer } = newTransfer(1000);
  const first = transfer.start();
  t.deepEqual(summary(first), [1]);
  t.is(first.timeoutMs, 1000);
  t.deepEqual(decode(first.send[0] as Buffer), { type: 'data', block: 1, payload: synthetic(0, 512) });
  const second = transfer.onAck(1);
  t.deepEqual(decode(second.send[0] as Buffer), { type: 'data', block: 2, payload: synthetic(512, 488) });
  const last = transfer.onAck(2);
  t.deepEqual(last, { send: [], timeoutMs: null, finished: transfer.result as TransferResult });
  t.like(transfer.result, { outcome: 'complete', counters: { blocksSent: 2, blocksResent: 0, bytesSent: 1000, oacksSent: 0 } });
  // After the end nothing is answered.
  t.deepEqual(transfer.onAck(2), { send: [], timeoutMs: null, finished: null });
});

test('sizes around block boundaries: exactly n blocks ends with an empty DATA, 0 bytes is one empty DATA', (t) => {
  for (const [size, lastBlock, lastLength] of [
    [0, 1, 0],
    [1, 1, 1],
    [511, 1, 511],
    [512, 2, 0],
    [513, 2, 1],
    [1024, 3, 0],
  ] as const) {
    const { transfer } = newTransfer(size);
    let step = transfer.start();
    for (let block = 1; block < lastBlock; block++) step = transfer.onAck(block);
    const last = decode(step.send[0] as Buffer);
    t.like(last, { type: 'data', block: lastBlock }, `size ${size}`);
    t.is(last.type === 'data' ? last.payload.length : -1, lastLength, `size ${size}`);
    t.like(transfer.onAck(lastBlock).finished, { outcome: 'complete' }, `size ${size}`);
  }
});

test('options: OACK first, ACK 0 acknowledges it, then the first window', (t) => {
  const { transfer } = newTransfer(5000, { tsize: '0', blksize: '1024', windowsize: '4', timeout: '2' });
  const first = transfer.start();
  t.deepEqual(
    first.send.map(decode),
    [
      {
        type: 'oack',
        options: [
          { name: 'tsize', value: '5000' },
          { name: 'blksize', value: '1024' },
          { name: 'windowsize', value: '4' },
          { name: 'timeout', value: '2' },
        ],
      },
    ],
  );
  t.is(first.timeoutMs, 2000);
  const window = transfer.onAck(0);
  t.deepEqual(summary(window), [1, 2, 3, 4]);
  t.deepEqual(window.send.map((buf) => buf.length), [1028, 1028, 1028, 1028]);
  t.deepEqual(summary(transfer.onAck(4)), [5]);
  t.like(transfer.onAck(5).finished, { outcome: 'complete', counters: { blocksSent: 5, oacksSent: 1, bytesSent: 5000 } });
});

test('an option request the server cannot honour gets ERROR 8 and nothing else', (t) => {
  const { transfer } = newTransfer(100, { blksize: '4' });
  const step = transfer.start();
  t.deepEqual(summary(step), ['error 8']);
  t.like(step.finished, { outcome: 'negotiation-refused', detail: 'blksize 4 is below the minimum of 8' });
});

test('tsize probe then ERROR (EDK2): the transfer ends cleanly as aborted-after-oack, nothing read, nothing sent back', (t) => {
  let reads = 0;
  const { transfer } = newTransfer(40 << 20, { tsize: '0' }, { readBlock: (offset, length) => (reads++, synthetic(offset, length)) });
  t.deepEqual(transfer.start().send.map(decode), [{ type: 'oack', options: [{ name: 'tsize', value: String(40 << 20) }] }]);
  const end = transfer.onDatagram(serializeError(8, 'User aborted the transfer'));
  t.deepEqual(end.send, []);
  t.is(end.timeoutMs, null);
  t.like(end.finished, { outcome: 'aborted-after-oack', detail: 'client sent ERROR 8 "User aborted the transfer"' });
  t.is(reads, 0);
});

test('an ERROR during the data phase ends the transfer as aborted-by-client', (t) => {
  const { transfer } = newTransfer(5000);
  transfer.start();
  transfer.onAck(1);
  t.like(transfer.onDatagram(serializeError(0, 'disk full')).finished, { outcome: 'aborted-by-client' });
});

test('the client\'s port unreachable ends the transfer at once, sending nothing: mid-file, after the last block, after an OACK', (t) => {
  const midFile = newTransfer(5000).transfer;
  midFile.start();
  midFile.onAck(1);
  const gone = midFile.onClientGone();
  t.deepEqual(gone.send, []);
  t.is(gone.timeoutMs, null);
  t.like(gone.finished, { outcome: 'aborted-by-client', detail: 'client port unreachable' });
  const atTheEnd = newTransfer(1000).transfer;
  atTheEnd.start();
  atTheEnd.onAck(1); // block 2, the last (488 bytes), is out: its ACK is what the client never sent
  t.like(atTheEnd.onClientGone().finished, { outcome: 'end-unconfirmed' });
  const probe = newTransfer(40 << 20, { tsize: '0' }).transfer;
  probe.start();
  t.like(probe.onClientGone().finished, { outcome: 'aborted-after-oack' });
  t.deepEqual(probe.onClientGone().send, [], 'nothing more once ended');
});

test('duplicate ACKs never trigger a send (Sorcerer\'s Apprentice) and leave the timer running', (t) => {
  const { transfer, clock } = newTransfer(5000);
  transfer.start();
  clock.now = 10;
  t.deepEqual(summary(transfer.onAck(1)), [2]);
  for (const at of [20, 30, 40]) {
    clock.now = at;
    const step = transfer.onAck(1);
    t.deepEqual(step.send, []);
    // The RTT sample of block 1 (10 ms) set the RTO to its 200 ms floor, armed at t=10.
    t.is(step.timeoutMs, 210 - at);
  }
  t.is(transfer.counters.duplicateAcks, 3);
  t.deepEqual(summary(transfer.onAck(2)), [3]);
  t.is(transfer.counters.blocksResent, 0);
});

test('windowed: a partial ACK resends from the block after it and tops the window up', (t) => {
  const { transfer } = newTransfer(20 * 512, { windowsize: '4' });
  transfer.start();
  t.deepEqual(summary(transfer.onAck(0)), [1, 2, 3, 4]);
  const partial = transfer.onAck(2);
  t.deepEqual(summary(partial), [3, 4, 5, 6]);
  t.like(transfer.counters, { partialAcks: 1, blocksResent: 2, blocksSent: 6 });
  // An ACK older than the last acknowledged one is stale: ignored.
  t.deepEqual(transfer.onAck(1).send, []);
  t.is(transfer.counters.ignoredAcks, 1);
  // An ACK for a block never sent is ignored too.
  t.deepEqual(transfer.onAck(9).send, []);
  t.is(transfer.counters.ignoredAcks, 2);
  t.deepEqual(summary(transfer.onAck(6)), [7, 8, 9, 10]);
});

test('timeouts resend the whole unacknowledged window with exponential backoff, then give up with ERROR 0', (t) => {
  const { transfer, clock } = newTransfer(20 * 512, { windowsize: '4' });
  transfer.start();
  clock.now = 5;
  transfer.onAck(0);
  transfer.onAck(2); // blocks 3..6 outstanding
  const delays: number[] = [];
  let step: TransferStep = { send: [], timeoutMs: 200, finished: null };
  for (let i = 0; i < 8; i++) {
    clock.now += step.timeoutMs as number;
    step = transfer.onTimeout();
    t.deepEqual(summary(step), [3, 4, 5, 6]);
    delays.push(step.timeoutMs as number);
  }
  // RTO 200 (floor, from the 5 ms OACK sample) doubling to the 8 s ceiling; past five
  // retransmissions it keeps trying until 30 s have passed without progress (a client like atftp
  // may be silent for its own 5 s timeout, twice).
  t.deepEqual(delays, [400, 800, 1600, 3200, 6400, 8000, 8000, 8000]);
  clock.now += step.timeoutMs as number;
  t.true(clock.now - 5 >= DEFAULT_RETRANSMIT.minGiveUpMs);
  const end = transfer.onTimeout();
  t.deepEqual(summary(end), ['error 0']);
  t.like(end.finished, { outcome: 'timeout', detail: 'no ACK after 8 retransmissions in 37 s of blocks 3..6', counters: { timeouts: 9 } });
});

test('an early timer call does not resend: it only re-arms for the rest', (t) => {
  const { transfer, clock } = newTransfer(2000);
  transfer.start();
  clock.now = 400;
  t.deepEqual(transfer.onTimeout(), { send: [], timeoutMs: 600, finished: null });
  t.is(transfer.counters.timeouts, 0);
});

test('the client\'s timeout option is the RTO: 3 s, backoff on loss, back to 3 s on progress', (t) => {
  const { transfer, clock } = newTransfer(5000, { timeout: '3' });
  t.is(transfer.start().timeoutMs, 3000);
  clock.now = 1;
  t.is(transfer.onAck(0).timeoutMs, 3000); // a 1 ms RTT sample does not shorten it
  clock.now = 3001;
  t.is(transfer.onTimeout().timeoutMs, 6000);
  clock.now = 3002;
  t.is(transfer.onAck(1).timeoutMs, 3000);
});

test('OACK lost: the OACK is retransmitted; a repeated ACK 0 is a duplicate', (t) => {
  const { transfer, clock } = newTransfer(5000, { blksize: '1024' });
  transfer.start();
  clock.now = 1000;
  t.deepEqual(summary(transfer.onTimeout()), ['oack']);
  // While the OACK is outstanding, ACK 65535 (block -1) is nonsense, not a duplicate.
  t.deepEqual(transfer.onAck(65535).send, []);
  t.like(transfer.counters, { ignoredAcks: 1, duplicateAcks: 0 });
  t.deepEqual(summary(transfer.onAck(0)), [1]);
  t.deepEqual(transfer.onAck(0).send, []);
  t.like(transfer.counters, { oacksSent: 2, duplicateAcks: 1 });
});

test('rollover: block 65535 is followed by block 0, and ACKs map across the wrap inside a window', (t) => {
  const blockSize = 512;
  const { transfer } = newTransfer(65540 * blockSize + 100, { windowsize: '4' });
  transfer.start();
  let step = transfer.onAck(0);
  let acked = 0;
  // Whole windows up to 65532, then the window 65533..65536 straddles the wrap.
  while (acked < 65532) {
    acked += 4;
    step = transfer.onAck(acked % 65536);
  }
  t.deepEqual(summary(step), [65533, 65534, 65535, 0]);
  // ACK 65535 is a partial ACK inside the window; ACK 0 then means block 65536, not the OACK.
  t.deepEqual(summary(transfer.onAck(65535)), [0, 1, 2, 3]);
  t.deepEqual(summary(transfer.onAck(0)), [1, 2, 3, 4]);
  const last = transfer.onAck(4);
  t.deepEqual(last.send.map(decode), [{ type: 'data', block: 5, payload: synthetic(65540 * blockSize, 100) }]);
  t.like(transfer.onAck(5).finished, { outcome: 'complete', counters: { blocksSent: 65541 } });
});

test('send pump: pumpable() describes a full outstanding window; onPumped() catches up across the wrap, and the core carries on', (t) => {
  const blockSize = 512;
  const windowSize = 16;
  const windows = 4100; // the pump answers 4100 window-end ACKs: 65,600 blocks, past the wrap
  const fileSize = (windowSize * (windows + 3)) * blockSize + 100;
  const reads: number[] = [];
  const { transfer, clock } = newTransfer(fileSize, { windowsize: String(windowSize) }, { readBlockInto: (target, at, offset, length) => (reads.push(offset), synthetic(offset, length).copy(target, at)) });
  transfer.start();
  t.is(transfer.pumpable(), undefined, 'not while the OACK is outstanding');
  t.deepEqual(summary(transfer.onAck(0)), Array.from({ length: windowSize }, (_, i) => i + 1));
  t.deepEqual(transfer.pumpable(), { nextBlock: windowSize + 1, offset: windowSize * blockSize, blockSize, windowSize });
  // The pump answered ACK 16 with 17..32 and so on; its last window is outstanding, sent 30 ms ago.
  clock.now = 5000;
  reads.length = 0;
  const caughtUp = transfer.onPumped({ windows, lastRttMs: 2, msSinceLastSend: 30 });
  // One RTT sample of 2 ms (after the OACK's 0 ms: SRTT 0.25); RTO at the 200 ms floor, counted from the pump's send.
  t.deepEqual(caughtUp, { send: [], timeoutMs: 200 - 30, finished: null });
  const lastSent = windowSize * (windows + 1);
  t.deepEqual(reads, Array.from({ length: windowSize }, (_, i) => (lastSent - windowSize + i) * blockSize), 'only the outstanding window is read again');
  t.like(transfer.counters, { blocksSent: lastSent, bytesSent: lastSent * blockSize, srttMs: 0.25, blocksResent: 0 });
  t.deepEqual(transfer.pumpable(), { nextBlock: (lastSent + 1) % 65536, offset: lastSent * blockSize, blockSize, windowSize });
  // A timeout resends exactly the window the pump sent last, with its wire numbers and bytes.
  clock.now += 200;
  const resent = transfer.onTimeout();
  t.deepEqual(resent.send.map(decode), Array.from({ length: windowSize }, (_, i) => {
    const index = lastSent - windowSize + 1 + i;
    return { type: 'data', block: index % 65536, payload: synthetic((index - 1) * blockSize, blockSize) };
  }));
  // The core goes on from there to the end: two more full windows, then the short last block.
  // Backed off, no pump until an RTT sample (Karn: not from the resent window) has reset the RTO.
  t.is(transfer.pumpable(), undefined, 'not with the RTO backed off');
  let step = transfer.onAck(lastSent % 65536);
  t.deepEqual(summary(step), Array.from({ length: windowSize }, (_, i) => (lastSent + 1 + i) % 65536));
  t.is(transfer.pumpable(), undefined, 'the resent window gave no sample');
  step = transfer.onAck((lastSent + windowSize) % 65536);
  t.like(transfer.pumpable(), { nextBlock: (lastSent + 2 * windowSize + 1) % 65536 }, 'a window sent once gave one');
  step = transfer.onAck((lastSent + 2 * windowSize) % 65536);
  t.deepEqual(step.send.map(decode), [{ type: 'data', block: (lastSent + 2 * windowSize + 1) % 65536, payload: synthetic(fileSize - 100, 100) }]);
  t.is(transfer.pumpable(), undefined, 'not once the last block is read');
  t.like(transfer.onAck((lastSent + 2 * windowSize + 1) % 65536).finished, { outcome: 'complete', counters: { blocksSent: lastSent + 2 * windowSize + 1, blocksResent: windowSize, timeouts: 1 } });
});

test('send pump: never in netascii; no progress changes nothing; a source failing on the re-read ends the transfer with ERROR 0', (t) => {
  const ascii = newTransfer(10_000, {}, { mode: 'netascii' }).transfer;
  ascii.start();
  t.is(ascii.pumpable(), undefined);

  const { transfer } = newTransfer(10_000, {}, { readBlockInto: (target, at, offset, length) => {
    if (offset >= 2048) throw new Error('EIO');
    return synthetic(offset, length).copy(target, at);
  } });
  transfer.start();
  t.deepEqual(transfer.pumpable(), { nextBlock: 2, offset: 512, blockSize: 512, windowSize: 1 });
  t.deepEqual(transfer.onPumped({ windows: 0, lastRttMs: undefined, msSinceLastSend: 0 }), { send: [], timeoutMs: 1000, finished: null });
  t.is(transfer.counters.blocksSent, 1);
  // Blocks 2..5 went out from the pump; re-reading block 5 (offset 2048) fails.
  const step = transfer.onPumped({ windows: 4, lastRttMs: 1, msSinceLastSend: 0 });
  t.deepEqual(summary(step), ['error 0']);
  t.like(step.finished, { outcome: 'source-error' });
});



test('the file is checked before the last block only: changed, the transfer ends with ERROR 0 instead of the last block', (t) => {
  for (const [fileSize, mode] of [[1300, 'octet'], [1024, 'octet'], [1300, 'netascii']] as const) {
    let checks = 0;
    let changed = false;
    const { transfer } = newTransfer(fileSize, {}, { mode, fileUnchanged: () => (checks++, !changed) });
    t.deepEqual(summary(transfer.start()), [1]);
    t.deepEqual(summary(transfer.onAck(1)), [2]);
    t.is(checks, 0, `${fileSize} ${mode}: full blocks go out unchecked`);
    changed = true;
    const step = transfer.onAck(2);
    t.is(checks, 1);
    t.deepEqual(summary(step), ['error 0'], `${fileSize} ${mode}: no block 3`);
    t.like(step.finished, { outcome: 'source-error', detail: 'the file changed during the transfer' });
  }
  const { transfer } = newTransfer(1300, {}, { fileUnchanged: () => true });
  transfer.start();
  transfer.onAck(1);
  t.deepEqual(summary(transfer.onAck(2)), [3]);
  t.like(transfer.onAck(3).finished, { outcome: 'complete' });
});

test('malformed packets and non-ACKs from the client end the transfer with ERROR 4, never a throw', (t) => {
  for (const buf of [Buffer.from([0]), Buffer.from([0, 4, 1]), Buffer.from([0, 9, 0, 0]), serializeData(1, Buffer.alloc(3)), serializeRequest({ filename: 'f', mode: 'octet', options: [] })]) {
    const { transfer } = newTransfer(5000);
    transfer.start();
    const step = transfer.onDatagram(buf);
    t.deepEqual(summary(step), ['error 4']);
    t.like(step.finished, { outcome: 'protocol-error' });
  }
});

/**
 * Judges a read transfer's output as its client would. `wire` is what the client must end up with
 * (the file, or its netascii encoding). Legitimate: the OACK the client asked for, until it is
 * acknowledged and before any DATA; DATA whose block is in the window after the last acknowledged
 * one and whose payload is exactly `wire` at that block's offset; an ERROR as the transfer's last
 * and only packet; nothing once it has ended. `observe` takes each step with the packet that
 * caused it and returns what was wrong.
 */
function clientReferee(wire: Buffer, blockSize: number, windowSize: number, oack: TftpOption[] | undefined) {
  const lastBlock = Math.floor(wire.length / blockSize) + 1;
  /** Highest block the client has acknowledged: 0 for the OACK, -1 before that. */
  let acked = oack === undefined ? 0 : -1;
  /** Highest block the client has received: 0 for the OACK. */
  let received = -1;
  let ended = false;
  const stats = { dataChecked: 0 };

  function observe(step: TransferStep, fed: TftpPacket | undefined): string[] {
    const wrong: string[] = [];
    if (ended) {
      if (step.send.length > 0 || step.finished !== null) wrong.push(`sent ${step.send.length} packets or ended again after the end`);
      return wrong;
    }
    // The ACKs of blocks received and not yet acknowledged count; stale and future ones change nothing.
    const ackedBefore = acked;
    if (fed?.type === 'ack' && fed.block > acked && fed.block <= received) acked = fed.block;
    for (const buf of step.send) {
      const result = parseTftp(buf);
      if (!result.ok) {
        wrong.push(`sent an unparseable packet: ${result.reason}`);
        continue;
      }
      const packet = result.packet;
      if (packet.type === 'error') {
        if (step.finished === null || step.send.length !== 1) wrong.push(`ERROR ${packet.code} is not the transfer's last and only packet`);
      } else if (packet.type === 'oack') {
        if (oack === undefined) wrong.push('OACK though no option is acknowledged');
        else if (acked >= 0) wrong.push('OACK after the client acknowledged it');
        else if (JSON.stringify(packet.options) !== JSON.stringify(oack)) wrong.push(`OACK ${JSON.stringify(packet.options)} for ${JSON.stringify(oack)}`);
        received = Math.max(received, 0);
      } else if (packet.type === 'data') {
        const block = packet.block;
        if (acked < 0) wrong.push(`DATA ${block} before the OACK was acknowledged`);
        else if (block < 1 || block > lastBlock) wrong.push(`DATA ${block} outside blocks 1..${lastBlock}`);
        else if (block <= acked || block > acked + windowSize) wrong.push(`DATA ${block} outside the window after ACK ${acked} (windowsize ${windowSize})`);
        else if (!packet.payload.equals(wire.subarray((block - 1) * blockSize, block * blockSize))) wrong.push(`DATA ${block} is not the file's bytes at offset ${(block - 1) * blockSize}`);
        else stats.dataChecked++;
        received = Math.max(received, block);
      } else {
        wrong.push(`sent ${packet.type.toUpperCase()}`);
      }
    }
    if (fed?.type === 'error' && step.send.length > 0) wrong.push('answered the client\'s ERROR (RFC 1350 §7: never)');
    // Complete exactly when the client has just acknowledged the last block.
    const lastBlockAcknowledged = acked === lastBlock && ackedBefore < lastBlock;
    if (lastBlockAcknowledged !== (step.finished?.outcome === 'complete')) wrong.push(`${step.finished?.outcome ?? 'not ended'} with ACK ${acked} of last block ${lastBlock}`);
    // A live transfer without a timer would wait forever for a client that has gone.
    if (step.finished === null && step.timeoutMs === null) wrong.push('no timer while the transfer is live');
    ended = step.finished !== null;
    return wrong;
  }

  return {
    observe,
    stats,
    /** A plausible ACK: around the newest block received, stale, duplicate, in-window or just ahead (16-bit, so -1 is 65535). */
    nearbyAck: (random: () => number) => (received + 1 - Math.floor(random() * (windowSize + 2))) & 0xffff,
  };
}

test('fuzz: ACKs, ERRORs, garbage and timeouts into live transfers: only the OACK asked for, DATA with the file\'s bytes in the window, or a last ERROR', (t) => {
  const random = seededRandom(7440);
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  let dataChecked = 0;
  for (let i = 0; i < 300; i++) {
    const mode: TransferMode = random() < 0.25 ? 'netascii' : 'octet';
    const requested: Record<string, string> = {};
    if (random() < 0.5) requested.blksize = String(8 + Math.floor(random() * 1461));
    if (random() < 0.7) requested.windowsize = String(1 + Math.floor(random() * 8));
    if (random() < 0.3) requested.tsize = '0';
    const blockSize = Number(requested.blksize ?? 512);
    const windowSize = Number(requested.windowsize ?? 1);
    // Up to 24 blocks, so that many transfers get to the end; some end on a block boundary, so that the last DATA is empty.
    const fileSize = random() < 0.2 ? blockSize * Math.floor(random() * 8) : Math.floor(random() * blockSize * 24);
    // Half the clients send ERRORs and garbage now and then; a quarter go silent early, so that the transfer times out.
    const hostile = random() < 0.5;
    const silentFrom = random() < 0.25 ? Math.floor(random() * 10) : Infinity;
    const wire = mode === 'octet' ? synthetic(0, fileSize) : encodeNetascii(synthetic(0, fileSize));
    // Every option asked for is within the default limits, so the OACK echoes it; tsize is the file's size, never offered in netascii.
    const oack = Object.entries(requested).flatMap(([name, value]) => (name !== 'tsize' ? [{ name, value }] : mode === 'octet' ? [{ name, value: String(fileSize) }] : []));
    const referee = clientReferee(wire, blockSize, windowSize, oack.length > 0 ? oack : undefined);
    const { transfer, clock } = newTransfer(fileSize, requested, { mode });
    const setting = `transfer ${i} (${mode}, ${fileSize} bytes, ${JSON.stringify(requested)})`;
    const run = (event: string, fed: TftpPacket | undefined, call: () => TransferStep): boolean => {
      let step: TransferStep;
      try {
        step = call();
      } catch (error) {
        problems.push(`${setting}, ${event}: threw ${(error as Error).stack}`);
        return false;
      }
      problems.push(...referee.observe(step, fed).map((problem) => `${setting}, ${event}: ${problem}`));
      return true;
    };
    if (!run('start', undefined, () => transfer.start())) continue;
    // Events go on after the end: a finished transfer must stay silent.
    for (let j = 0; j < 50; j++) {
      clock.now += random() * 3000;
      const kind = random();
      if (kind < 0.2 || j >= silentFrom) {
        if (!run(`event ${j}, timeout at ${Math.round(clock.now)} ms`, undefined, () => transfer.onTimeout())) break;
        continue;
      }
      const datagram =
        kind < 0.8 || !hostile ? serializeAck(referee.nearbyAck(random))
        : kind < 0.9 ? serializeAck(Math.floor(random() * 65536))
        : kind < 0.93 ? serializeError(Math.floor(random() * 9), 'client gives up')
        : Buffer.from(Array.from({ length: Math.floor(random() * 8) }, () => Math.floor(random() * 256)));
      const fed = parseTftp(datagram);
      if (!run(`event ${j}, datagram ${datagram.toString('hex')}`, fed.ok ? fed.packet : undefined, () => transfer.onDatagram(datagram))) break;
    }
    const outcome = transfer.result?.outcome ?? 'live';
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    dataChecked += referee.stats.dataChecked;
  }
  t.is(problems.length, 0, problems.slice(0, 10).join('\n'));
  // The fuzzer must reach every way a transfer can end under it (and leave some running), and check many DATA packets.
  const reached = JSON.stringify(Object.fromEntries(outcomes));
  for (const outcome of ['complete', 'end-unconfirmed', 'timeout', 'protocol-error', 'aborted-by-client', 'aborted-after-oack', 'live']) t.true((outcomes.get(outcome) ?? 0) >= 3, `${outcome}: ${reached}`);
  t.true(dataChecked > 1500, `only ${dataChecked} DATA packets checked`);
});

test('DATA packets are refilled in place once acknowledged: one buffer per window slot, not one per block', (t) => {
  for (const windowSize of [1, 4]) {
    const { transfer } = newTransfer(40 * 512 + 7, { windowsize: String(windowSize) });
    transfer.start();
    // Small Buffers are slices of shared pools: a packet's memory is its ArrayBuffer and offset.
    const memory = new Map<ArrayBuffer, Set<number>>();
    let step = transfer.onAck(0);
    let acked = 0;
    while (step.send.length > 0 && step.finished === null) {
      for (const [i, packet] of step.send.entries()) {
        const block = acked + i + 1;
        // Checked when sent: the content is only guaranteed until the next call.
        t.deepEqual(decode(packet), { type: 'data', block, payload: synthetic((block - 1) * 512, block === 41 ? 7 : 512) });
        if (packet.length === 516) {
          const offsets = memory.get(packet.buffer as ArrayBuffer) ?? new Set<number>();
          memory.set(packet.buffer as ArrayBuffer, offsets.add(packet.byteOffset));
        }
      }
      acked += step.send.length;
      step = transfer.onAck(acked);
    }
    t.like(transfer.result, { outcome: 'complete', counters: { blocksSent: 41 } });
    const distinct = [...memory.values()].reduce((sum, offsets) => sum + offsets.size, 0);
    t.true(distinct <= windowSize, `windowsize ${windowSize}: ${distinct} distinct packet buffers`);
  }
});

test('readBlockInto reads straight into the DATA packet in octet mode; its short counts and errors end the transfer', (t) => {
  const calls: number[] = [];
  const readBlockInto: ReadBlockInto = (target, targetOffset, offset, length) => {
    calls.push(offset);
    return synthetic(offset, length).copy(target, targetOffset);
  };
  const readBlock: ReadBlock = () => {
    throw new Error('readBlock must not be used when readBlockInto is given');
  };
  const { transfer } = newTransfer(1000, {}, { readBlock, readBlockInto });
  t.deepEqual(decode(transfer.start().send[0] as Buffer), { type: 'data', block: 1, payload: synthetic(0, 512) });
  t.deepEqual(decode(transfer.onAck(1).send[0] as Buffer), { type: 'data', block: 2, payload: synthetic(512, 488) });
  t.like(transfer.onAck(2).finished, { outcome: 'complete' });
  t.deepEqual(calls, [0, 512]);

  const short = newTransfer(2000, {}, { readBlockInto: (target, at, offset, length) => synthetic(offset, Math.min(length, 1500 - offset)).copy(target, at) }).transfer;
  short.start();
  short.onAck(1);
  const step = short.onAck(2);
  t.deepEqual(summary(step), ['error 0']);
  t.regex((step.finished as TransferResult).detail, /returned 476 bytes at offset 1024 where 512 were expected/);

  const failing = newTransfer(2000, {}, {
    readBlockInto: () => {
      throw new Error('EIO');
    },
  }).transfer;
  t.like(failing.start().finished, { outcome: 'source-error', detail: 'reading 512 bytes at offset 0 failed: EIO' });

  // netascii converts what readBlock returns; readBlockInto is not used there.
  const text = Buffer.from('a\nb\n');
  const netascii = newTransfer(text.length, {}, { mode: 'netascii', readBlock: (o, l) => text.subarray(o, o + l), readBlockInto }).transfer;
  t.deepEqual(decode(netascii.start().send[0] as Buffer), { type: 'data', block: 1, payload: Buffer.from('a\r\nb\r\n') });
  t.deepEqual(calls, [0, 512]);
});

test('a source shorter than its announced size ends the transfer with ERROR 0 instead of hanging', (t) => {
  const { transfer } = newTransfer(2000, {}, { readBlock: (offset, length) => synthetic(offset, Math.min(length, 1500 - offset)) });
  transfer.start();
  transfer.onAck(1);
  const step = transfer.onAck(2);
  t.deepEqual(summary(step), ['error 0']);
  t.like(step.finished, { outcome: 'source-error' });
  t.regex((step.finished as TransferResult).detail, /returned 476 bytes at offset 1024 where 512 were expected/);
});

test('a source that throws ends the transfer with ERROR 0', (t) => {
  const { transfer } = newTransfer(2000, {}, {
    readBlock: () => {
      throw new Error('MDB_CORRUPTED');
    },
  });
  const step = transfer.start();
  t.deepEqual(summary(step), ['error 0']);
  t.like(step.finished, { outcome: 'source-error', detail: 'reading 512 bytes at offset 0 failed: MDB_CORRUPTED' });
});

test('cancel() sends ERROR 0 with the reason', (t) => {
  const { transfer } = newTransfer(2000);
  transfer.start();
  const step = transfer.cancel('server shutting down');
  t.deepEqual(step.send.map(decode), [{ type: 'error', code: 0, message: 'server shutting down' }]);
  t.like(step.finished, { outcome: 'cancelled' });
});

// ---------------------------------------------------------------------------------------------
// Whole transfers against the simulated client.

test('lock-step and windowed transfers deliver identical content at every size around block boundaries', (t) => {
  for (const windowSize of [1, 4, 16]) {
    for (const blockSize of [512, 1468]) {
      for (const blocks of [0, 1, 4, 16, 17, 64]) {
        for (const delta of [-1, 0, 1]) {
          const fileSize = blocks * blockSize + delta;
          if (fileSize < 0) continue;
          const sim = simulate({ fileSize, options: { blksize: String(blockSize), windowsize: String(windowSize) } });
          const label = `w${windowSize} b${blockSize} size ${fileSize}`;
          assertDelivered(t, sim, label);
          t.is(sim.result.counters.blocksResent, 0, label);
          t.is(sim.result.counters.blocksSent, Math.floor(fileSize / blockSize) + 1, label);
          t.true(sim.readsSequential && sim.bytesRead === fileSize, `${label}: file read front to back once`);
          t.true(sim.largestBurst <= windowSize, label);
        }
      }
    }
  }
});

test('rollover: a file beyond 65535 blocks at blksize 512 (> 32 MiB) arrives intact, lock-step', (t) => {
  const fileSize = 65536 * 512 + 300_000; // 33.85 MB, 66122 blocks
  const sim = simulate({ fileSize, options: { tsize: '0' } });
  assertDelivered(t, sim);
  t.true(sim.sawBlockZero);
  t.is(sim.result.counters.blocksSent, Math.floor(fileSize / 512) + 1);
});

test('rollover with windowsize 16 under 0.5% loss both ways', (t) => {
  const fileSize = 65536 * 512 + 70_000;
  const sim = simulate({ fileSize, options: { windowsize: '16' }, loss: 0.005, seed: 42 });
  assertDelivered(t, sim);
  t.true(sim.sawBlockZero);
  t.true(sim.dropped > 100, `only ${sim.dropped} datagrams dropped`);
});

test('random loss of DATA and ACK (0.5% and 5%, both directions): every transfer completes intact with bounded retransmission', (t) => {
  const stats: string[] = [];
  for (const loss of [0.005, 0.05]) {
    for (const windowSize of [1, 4, 16]) {
      for (const ackOnGap of [false, true]) {
        let dropped = 0;
        let resent = 0;
        let sent = 0;
        let timeouts = 0;
        let elapsedMs = 0;
        for (let seed = 1; seed <= 8; seed++) {
          const fileSize = 150 * 1024 + seed * 97;
          const sim = simulate({ fileSize, options: { windowsize: String(windowSize) }, loss, seed, ackOnGap });
          const label = `loss ${loss} w${windowSize} ackOnGap ${ackOnGap} seed ${seed}`;
          assertDelivered(t, sim, label);
          const counters = sim.result.counters;
          // Every timeout is caused by a lost datagram: constant latency, so no spurious ones.
          t.true(counters.timeouts <= sim.dropped, `${label}: ${counters.timeouts} timeouts for ${sim.dropped} drops`);
          // No Sorcerer's Apprentice: each drop costs at most two windows of resends.
          t.true(counters.blocksResent <= 2 * windowSize * sim.dropped, `${label}: ${counters.blocksResent} resends for ${sim.dropped} drops`);
          dropped += sim.dropped;
          resent += counters.blocksResent;
          sent += counters.blocksSent;
          timeouts += counters.timeouts;
          elapsedMs += counters.durationMs;
        }
        stats.push(`loss ${loss} w${windowSize}${ackOnGap ? ' ack-on-gap' : ''}: ${sent} blocks, ${dropped} drops, ${timeouts} timeouts, ${resent} resends, ${(elapsedMs / 1000).toFixed(1)} s of transfer time (simulated)`);
      }
    }
  }
  t.log(stats.join('\n'));
});

test('the final ACK lost: a dallying client re-ACKs the resent last block, a vanished one leaves the transfer end-unconfirmed', (t) => {
  const dallying = simulate({ fileSize: 1500, dropAcks: [3] });
  assertDelivered(t, dallying);
  t.is(dallying.result.counters.blocksResent, 1);
  const vanished = simulate({ fileSize: 1500, dropAcks: [3], dallyMs: 0 });
  t.true(vanished.clientComplete);
  // The last block is resent until 30 s pass without an ACK (five retransmissions take 12.6 s at the RTO floor).
  t.like(vanished.result, { outcome: 'end-unconfirmed', counters: { timeouts: 9, blocksResent: 8 } });
});

test('adaptive RTO: a 1.5 s round trip (above the 1 s initial RTO) costs one spurious resend, not one per block', (t) => {
  const sim = simulate({ fileSize: 50 * 512, latencyMs: 750, clientTimeoutMs: 20_000 });
  assertDelivered(t, sim);
  t.true(sim.result.counters.blocksResent <= 1, `${sim.result.counters.blocksResent} resends`);
  t.true((sim.result.counters.srttMs as number) >= 1499 && (sim.result.counters.srttMs as number) <= 1501);
  t.true(sim.result.counters.rtoMs >= 1500);
});

test('adaptive RTO on a fast path settles at the floor', (t) => {
  const sim = simulate({ fileSize: 50 * 512, latencyMs: 0.1 });
  assertDelivered(t, sim);
  t.is(sim.result.counters.rtoMs, 200);
});

test('a client that never answers: OACK retransmitted, then timeout', (t) => {
  const sim = simulate({ fileSize: 1000, options: { tsize: '0' }, lossToServer: 1, clientRetries: 100 });
  t.like(sim.result, { outcome: 'timeout', counters: { oacksSent: 6, blocksSent: 0 } });
  t.like(sim.clientError, { type: 'error', code: 0 });
});

test('netascii: LF becomes CR LF and CR becomes CR NUL; tsize is not offered; decoding gives the file back', (t) => {
  const text = Buffer.from('line one\nline two\r\nbare cr\r'.repeat(80) + '\n'.repeat(600), 'latin1');
  const encoded = encodeNetascii(text);
  for (const windowSize of ['1', '4']) {
    const sim = simulate({
      fileSize: text.length,
      mode: 'netascii',
      options: { tsize: '0', windowsize: windowSize },
      readBlock: (offset, length) => text.subarray(offset, offset + length),
      expected: (offset, length) => encoded.subarray(offset, offset + length),
      expectedLength: encoded.length,
      loss: 0.05,
      seed: 3,
    });
    assertDelivered(t, sim, `netascii w${windowSize}`);
  }
  const decoded = encoded.toString('latin1').replace(/\r\n/g, '\n').replace(/\r\0/g, '\r');
  t.is(decoded, text.toString('latin1'));
  t.is(encoded.length, text.length + 80 * 4 + 600);
  const { transfer } = newTransfer(text.length, { tsize: '0' }, { mode: 'netascii', readBlock: (o, l) => text.subarray(o, o + l) });
  t.deepEqual(summary(transfer.start()), [1]);
});
