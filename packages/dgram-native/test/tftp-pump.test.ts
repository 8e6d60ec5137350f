// dgram-native's TFTP send pump on loopback, against a scripted TFTP client (a plain socket that
// ACKs what it receives): in-order ACKs are answered natively with the next DATA window, straight
// from the given bytes, and everything else is handed to JS through the usual events with the pump
// disarmed. The TFTP server's use of it is tested with real clients in keel's test/tftp-server*.test.ts.
import test from 'ava';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket, type UdpSocket } from 'dgram-native';
import { seededBuffer } from '../../../test/helpers/seeded-bytes.js';

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

const ack = (block: number) => Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);

function dataPacket(block: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 3, (block >> 8) & 0xff, block & 0xff]), payload]);
}

interface Exchange {
  server: UdpSocket;
  client: UdpSocket;
  /** Payloads the client received in block order (checked against the expected wire numbers). */
  received: Buffer[];
  /** Problems the client saw: wrong opcode or block number, wrong length. */
  errors: string[];
  /** Datagrams handed to JS on the server socket, as hex. */
  handedBack: string[];
  close(): Promise<unknown>;
}

/**
 * A transfer of `file` in windows of `windowSize` blocks of `blockSize` bytes, numbered from
 * `firstBlock` on the wire: the test sends the first window itself (as the protocol core would),
 * then arms the pump for the rest, from memory or (`fromPath`) from that file's descriptor, which
 * the test closes at once (the pump sends from its own mapping). The client ACKs the last block
 * of each window.
 */
async function exchange(t: { teardown(fn: () => unknown): void }, file: Buffer, blockSize: number, windowSize: number, firstBlock: number, fromPath?: string): Promise<Exchange> {
  const server = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 4, maxDatagramSize: 516 });
  const client = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, recvBufferSize: 4 << 20, maxDatagramSize: 65535 });
  const result: Exchange = { server, client, received: [], errors: [], handedBack: [], close: () => Promise.all([server.close(), client.close()]) };
  t.teardown(result.close);
  const serverPort = server.address().port;
  client.on('message', (d) => {
    const expected = (firstBlock + result.received.length) % 65536;
    if (d.data.readUInt16BE(0) !== 3 || d.data.readUInt16BE(2) !== expected) {
      result.errors.push(`got ${d.data.subarray(0, 4).toString('hex')}, expected DATA ${expected}`);
      return;
    }
    if (d.data.length !== blockSize + 4) result.errors.push(`block ${expected} is ${d.data.length - 4} bytes`);
    result.received.push(d.data.subarray(4));
    if (result.received.length % windowSize === 0) client.send(ack(expected), serverPort, '127.0.0.1');
  });
  server.on('view', (view) => {
    for (let i = 0; i < view.count; i++) result.handedBack.push(view.data(i).toString('hex'));
  });
  const first = [];
  for (let k = 0; k < windowSize; k++) first.push({ data: dataPacket((firstBlock + k) % 65536, file.subarray(k * blockSize, (k + 1) * blockSize)), port: client.address().port, address: '127.0.0.1' });
  server.sendBatch(first);
  const fd = fromPath === undefined ? undefined : openSync(fromPath, 'r');
  const armed = server.startTftpPump({
    address: '127.0.0.1',
    port: client.address().port,
    blockSize,
    windowSize,
    nextBlock: (firstBlock + windowSize) % 65536,
    data: fd === undefined ? file.subarray(windowSize * blockSize) : { fd, offset: windowSize * blockSize, length: file.length - windowSize * blockSize },
  });
  if (fd !== undefined) closeSync(fd);
  if (!armed) throw new Error('pump not armed');
  return result;
}

/** `file` written to a temporary path, removed after the test. */
function fileOnDisk(t: { teardown(fn: () => unknown): void }, file: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-pump-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'file.bin');
  writeFileSync(path, file);
  return path;
}

test('lock-step: every in-order ACK is answered from the buffer, across the block-number wrap; the ACK after the data ends goes to JS', async (t) => {
  const blockSize = 512;
  const blocks = 300;
  const file = await seededBuffer(41, blockSize * blocks);
  // Starting at 65400 the wire numbers wrap from 65535 to 0 mid-transfer.
  const x = await exchange(t, file, blockSize, 1, 65400);
  await until(() => x.handedBack.length > 0);
  t.deepEqual(x.errors, []);
  t.is(x.received.length, blocks);
  t.true(Buffer.concat(x.received).equals(file), 'byte-identical');
  const lastWire = (65400 + blocks - 1) % 65536;
  t.deepEqual(x.handedBack, [ack(lastWire).toString('hex')], 'the last ACK (no data left for the pump) is handed to JS');
  const progress = x.server.stopTftpPump();
  t.is(progress.windows, blocks - 1, 'the first block was sent by the test; the pump answered every ACK but the last');
  t.true(progress.lastRttMs !== undefined && progress.lastRttMs >= 0 && progress.lastRttMs < 1000);
  t.true(progress.msSinceLastSend >= 0);
  t.is(progress.shortSends, 0);
  t.is(x.server.stopTftpPump().windows, 0, 'stop resets the progress');
});

test('windows of 16 × 1468 go out as GSO runs, the client ACKing each window end', async (t) => {
  const blockSize = 1468;
  const windowSize = 16;
  const windows = 40;
  const file = await seededBuffer(42, blockSize * windowSize * windows);
  const x = await exchange(t, file, blockSize, windowSize, 1);
  await until(() => x.handedBack.length > 0);
  t.deepEqual(x.errors, []);
  t.true(Buffer.concat(x.received).equals(file), 'byte-identical');
  t.deepEqual(x.handedBack, [ack(windowSize * windows).toString('hex')]);
  t.is(x.server.stopTftpPump().windows, windows - 1);
  t.true(x.server.stats().gsoSends >= windows - 1, 'each pumped window is one GSO message (1468 × 16 < 64 KiB)');
});

test('from a file: the pump sends from its own mapping of it (lock-step at 512 and 65464, windows of 4 × 16384 and 16 × 1468), byte-identical', async (t) => {
  // The first window's end is rarely page-aligned (512 × 1, 65464, 1468 × 16): the mapping starts at the page before.
  for (const [blockSize, windowSize, windows] of [[512, 1, 300], [65464, 1, 40], [16384, 4, 30], [1468, 16, 20]] as const) {
    const file = await seededBuffer(43, blockSize * windowSize * windows);
    const x = await exchange(t, file, blockSize, windowSize, 1, fileOnDisk(t, file));
    await until(() => x.handedBack.length > 0);
    t.deepEqual(x.errors, [], `${blockSize} × ${windowSize}`);
    t.true(Buffer.concat(x.received).equals(file), `${blockSize} × ${windowSize}: byte-identical although the caller closed its descriptor`);
    t.deepEqual(x.handedBack, [ack(windowSize * windows).toString('hex')], 'the ACK after the last window goes to JS');
    t.is(x.server.stopTftpPump().windows, windows - 1);
  }
});

test('from a file that turns out shorter than promised: the pump sends what it can read and hands the next ACK to JS', async (t) => {
  const blockSize = 16384;
  const file = await seededBuffer(44, blockSize * 20);
  const path = fileOnDisk(t, file);
  // Cut after block 12 before the transfer starts: the pump was told 19 blocks follow the first.
  truncateSync(path, blockSize * 12);
  const x = await exchange(t, file, blockSize, 1, 1, path);
  await until(() => x.handedBack.length > 0);
  t.deepEqual(x.errors, []);
  t.is(x.received.length, 12, 'the first block by the test, 11 by the pump: all the file still has');
  t.true(Buffer.concat(x.received).equals(file.subarray(0, blockSize * 12)));
  t.deepEqual(x.handedBack, [ack(12).toString('hex')], 'the ACK it could not answer goes to JS');
  t.is(x.server.stopTftpPump().windows, 11);
});

test('anything but the expected ACK disarms the pump and reaches JS with the rest of its batch, in order', async (t) => {
  const blockSize = 512;
  const file = await seededBuffer(43, blockSize * 64);
  const server = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 8, maxDatagramSize: 16 });
  const client = createSocket({ bindAddress: '127.0.0.1', pktinfo: false });
  const stranger = createSocket({ bindAddress: '127.0.0.1', pktinfo: false });
  t.teardown(() => Promise.all([server.close(), client.close(), stranger.close()]));
  const serverPort = server.address().port;
  const atClient: string[] = [];
  client.on('message', (d) => atClient.push(d.data.subarray(0, 4).toString('hex')));
  stranger.on('message', () => t.fail('the pump never answers another source'));
  const handedBack: string[] = [];
  server.on('view', (view) => {
    for (let i = 0; i < view.count; i++) handedBack.push(`${view.port(i) === client.address().port ? 'client' : 'stranger'} ${view.data(i).toString('hex')}${view.truncated(i) ? ' cut' : ''}`);
  });
  const arm = (nextBlock: number, offset: number) =>
    server.startTftpPump({ address: '127.0.0.1', port: client.address().port, blockSize, windowSize: 1, nextBlock, data: file.subarray(offset) });

  // Block 1 is outstanding. Queued before the pump reads: the good ACK 1 (answered with DATA 2),
  // then a duplicate ACK 1 (handed back), then ACK 2, which the disarmed pump leaves to JS as well.
  t.true(arm(2, blockSize));
  client.send(ack(1), serverPort, '127.0.0.1');
  client.send(ack(1), serverPort, '127.0.0.1');
  client.send(ack(2), serverPort, '127.0.0.1');
  await until(() => handedBack.length >= 2);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(handedBack, ['client 00040001', 'client 00040002']);
  t.deepEqual(atClient, ['00030002'], 'only the in-order ACK was answered');
  t.is(server.stopTftpPump().windows, 1);

  // Each of these, alone, is handed back and disarms the pump; re-armed after each, as the server does.
  const cases: [UdpSocket, Buffer, string][] = [
    [stranger, ack(2), 'stranger 00040002'],
    [client, Buffer.from([0, 5, 0, 1, 0x61, 0]), 'client 000500016100'],
    [client, Buffer.from([0, 4, 0]), 'client 000400'],
    [client, Buffer.from([0, 3, 0, 2, 1, 2]), 'client 000300020102'],
    [client, Buffer.alloc(40, 4), `client ${'04'.repeat(16)} cut`],
    [client, ack(7), 'client 00040007'],
  ];
  for (const [from, datagram, seen] of cases) {
    handedBack.length = 0;
    t.true(arm(3, 2 * blockSize));
    from.send(datagram, serverPort, '127.0.0.1');
    await until(() => handedBack.length > 0);
    t.deepEqual(handedBack, [seen]);
    t.is(server.stopTftpPump().windows, 0);
  }
  t.deepEqual(atClient, ['00030002'], 'nothing else was sent');
  // Disarmed, the socket is an ordinary socket again: ACK 2 now reaches JS.
  client.send(ack(2), serverPort, '127.0.0.1');
  await until(() => handedBack.length > 1);
  t.is(handedBack.at(-1), 'client 00040002');
});

test('an ACK when less than a whole window of data is left goes to JS; invalid arguments and closed or GRO sockets throw', async (t) => {
  const server = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 4, maxDatagramSize: 516 });
  const client = createSocket({ bindAddress: '127.0.0.1', pktinfo: false });
  const gro = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, gro: true });
  t.teardown(() => Promise.all([server.close(), client.close(), gro.close()]));
  const handedBack: string[] = [];
  server.on('view', (view) => handedBack.push(view.data(0).toString('hex')));
  const start = { address: '127.0.0.1', port: client.address().port, blockSize: 512, windowSize: 4, nextBlock: 5, data: Buffer.alloc(3 * 512 + 511) };
  t.true(server.startTftpPump(start));
  client.send(ack(4), server.address().port, '127.0.0.1');
  await until(() => handedBack.length > 0);
  t.deepEqual(handedBack, ['00040004']);
  t.is(server.stopTftpPump().windows, 0);

  t.throws(() => server.startTftpPump({ ...start, windowSize: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => server.startTftpPump({ ...start, windowSize: 65 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => server.startTftpPump({ ...start, blockSize: 65465 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => server.startTftpPump({ ...start, nextBlock: 65536 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => server.startTftpPump({ ...start, port: 70000 }), { code: 'ERR_SOCKET_BAD_PORT' });
  if (gro.gro) t.throws(() => gro.startTftpPump(start), { code: 'EINVAL' });
  await client.close();
  const closed = createSocket({ bindAddress: '127.0.0.1' });
  await closed.close();
  t.throws(() => closed.startTftpPump(start), { code: 'ERR_SOCKET_CLOSED' });
  t.deepEqual(closed.stopTftpPump(), { windows: 0, lastRttMs: undefined, msSinceLastSend: 0, shortSends: 0 });
});

test('fuzz: 1000 random datagrams at an armed pump, re-armed after each hand-back: each is answered or handed back, never lost, never a crash', async (t) => {
  // A receive buffer for all 1000 at once: the test sends faster than the server reads.
  const server = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 4, maxDatagramSize: 516, recvBufferSize: 8 << 20 });
  const client = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, recvBufferSize: 8 << 20 });
  t.teardown(() => Promise.all([server.close(), client.close()]));
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256)));
  const file = random(512 * 2000);
  let nextBlock = 2;
  let handedBack = 0;
  let answered = 0;
  const arm = () => {
    server.startTftpPump({ address: '127.0.0.1', port: client.address().port, blockSize: 512, windowSize: 1, nextBlock, data: file.subarray(512 * (nextBlock - 1)) });
  };
  const catchUp = () => {
    const { windows } = server.stopTftpPump();
    answered += windows;
    nextBlock += windows;
  };
  server.on('view', (view) => {
    catchUp();
    handedBack += view.count;
    arm();
  });
  arm();
  const total = 1000;
  for (let i = 0; i < total; i++) {
    // Mostly ACK-shaped (opcode 4, random block), some random opcodes and lengths 0..600.
    const datagram = i % 3 === 0 ? random(Math.floor(Math.random() * 600)) : Buffer.concat([Buffer.from([0, 4]), random(2 + (i % 5))]);
    client.send(datagram, server.address().port, '127.0.0.1');
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => { catchUp(); arm(); return handedBack + answered >= total; });
  t.is(handedBack + answered, total);
  t.is(server.stats().kernelDrops, 0);
});
