// TFTP server conformance with real clients (curl, atftp, tftp-hpa) and a scripted peer for what
// they cannot send, against an in-process server on 127.0.0.1. Content is compared byte for byte.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, serializeAck } from '../src/net/tftp/packets.js';
import { atftp, createFixture, curl, runClient, sha256, startServer, tftpHpa, type Fixture } from './tftp/fixture.js';
import { RawClient } from './tftp/raw-client.js';
import { startTestHead } from './helpers/head.js';
import { ChunkStore } from '../src/store/chunks.js';
import { ChunkStoreSource, RootDirectorySource } from '../src/net/tftp/sources.js';

let fixture: Fixture;
test.before(async () => {
  fixture = await createFixture();
});
test.after.always(async () => {
  await fixture?.close();
});

const expected = (name: string) => sha256(fixture.files.get(name)!);

async function rawClient(t: Parameters<typeof startServer>[0], port: number): Promise<RawClient> {
  const client = await RawClient.open(port);
  t.teardown(() => client.close());
  return client;
}

const transferLines = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'tftp transfer');

// Serial (ava runs these before the concurrent tests): it counts the process's open sockets.
test.serial('a transfer holds two sockets on one port while it runs and none once it ends, however it ends', async (t) => {
  const { server, port } = startServer(t, fixture);
  const openSockets = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // readdirSync's own fd, closed since
    }
  }).length;
  const settle = async () => {
    for (let i = 0; i < 50 && server.stats().activeTransfers > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 20)); // sockets close on the next loop turn
  };
  const client = await rawClient(t, port);
  const stranger = await rawClient(t, port);
  await settle();
  const idle = openSockets();

  client.rrq('f.bin');
  const first = await client.next();
  t.is(first?.packet.type, 'data');
  t.is(openSockets(), idle + 2, 'the connected transfer socket and its unconnected sibling');
  stranger.ack(1, first!.port);
  t.is((await stranger.next())?.packet.type, 'error');
  client.error(ErrorCode.notDefined, 'enough', first!.port); // ends it: aborted by the client
  await settle();
  t.is(openSockets(), idle);

  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => runClient(t, 'curl', curl(port, 'small.bin', i % 2 ? 512 : 1468))));
  for (const run of runs) t.is(sha256(run.data ?? Buffer.alloc(1)), expected('small.bin'));
  await settle();
  t.is(openSockets(), idle);
  t.like(server.stats(), { activeTransfers: 0, unknownTransferIds: 1, outcomes: { complete: 8, 'aborted-by-client': 1 } });
});

test('curl at blksize 8, 512, 1468, 8192 and 65464: byte-identical', async (t) => {
  const { server, port, logs } = startServer(t, fixture);
  const cases: [string, number][] = [['small.bin', 8], ['f.bin', 512], ['f.bin', 1468], ['ipxe.efi', 8192], ['f.bin', 65464], ['exact.bin', 1468]];
  // Not the empty file: curl 7.88 fails on it with any server ("getpeername() failed", tftpd-hpa too); atftp and tftp-hpa fetch it below.
  for (const [name, blksize] of cases) {
    const run = await runClient(t, 'curl', curl(port, name, blksize));
    t.is(run.exitCode, 0, `${name} at ${blksize}: ${run.output}`);
    t.is(sha256(run.data ?? Buffer.alloc(1)), expected(name), `${name} at ${blksize}`);
  }
  const lines = transferLines(logs);
  t.deepEqual(lines.map((l) => l.blksize), cases.map(([, b]) => b));
  t.true(lines.every((l) => l.outcome === 'complete'));
  t.is(server.stats().outcomes.complete, cases.length);
});

test('atftp with windowsize 1, 4, 16, tsize and timeout: byte-identical', async (t) => {
  const { port, logs } = startServer(t, fixture);
  const cases: [string, Record<string, number>][] = [
    ['f.bin', { blksize: 1468, windowsize: 1, tsize: 0 }],
    ['f.bin', { blksize: 1468, windowsize: 4, timeout: 2 }],
    ['f.bin', { blksize: 1468, windowsize: 16, tsize: 0 }],
    ['exact.bin', { blksize: 1468, windowsize: 16 }],
    ['ipxe.efi', { blksize: 512, windowsize: 16, tsize: 0, timeout: 1 }],
    ['empty.bin', { windowsize: 4, tsize: 0 }],
  ];
  for (const [name, options] of cases) {
    const run = await runClient(t, 'atftp', atftp(port, name, options));
    t.is(run.exitCode, 0, `${name} ${JSON.stringify(options)}: ${run.output}`);
    t.is(sha256(run.data ?? Buffer.alloc(1)), expected(name), `${name} ${JSON.stringify(options)}`);
  }
  t.deepEqual(transferLines(logs).map((l) => [l.blksize, l.windowsize]), cases.map(([, o]) => [o.blksize ?? 512, o.windowsize]));
});

test('the send pump carries octet transfers past the first window with real clients; the core keeps count', async (t) => {
  const { server, port, logs } = startServer(t, fixture);
  // curl lock-step from the root directory (the pump maps the file) and from the store (64 KiB
  // chunks: blocks straddle chunks, the pump hands back at each chunk end), atftp windows, across
  // block sizes. The last number is the share of blocks the pump must have sent at least: all but
  // the first window, the last block and, from the store, the hand-backs where a chunk ends (with
  // 32 KiB windows over 64 KiB chunks that is every other window).
  const runs: [string, string[], number][] = [
    ['f.bin', curl(port, 'f.bin', 512), 0.9],
    ['ipxe.efi', curl(port, 'ipxe.efi', 1468), 0.9],
    ['f.bin', atftp(port, 'f.bin', { blksize: 1468, windowsize: 16 }), 0.8],
    ['exact.bin', atftp(port, 'exact.bin', { blksize: 1468, windowsize: 4 }), 0.8],
    ['ipxe.efi', atftp(port, 'ipxe.efi', { blksize: 8192, windowsize: 4 }), 0.4],
    ['f.bin', curl(port, 'f.bin', 65464), 0.85],
    ['f.bin', atftp(port, 'f.bin', { blksize: 16384, windowsize: 4 }), 0.85],
  ];
  let blocks = 0;
  for (const [name, args, share] of runs) {
    const before = server.stats().pumpedBlocks;
    const run = await runClient(t, args[0] === '-g' ? 'atftp' : 'curl', args);
    t.is(run.exitCode, 0, `${name} ${args.join(' ')}: ${run.output}`);
    t.is(sha256(run.data ?? Buffer.alloc(1)), expected(name), `${name} ${args.join(' ')}`);
    const line = transferLines(logs).at(-1)!;
    const sent = Math.floor(fixture.files.get(name)!.length / Number(line.blksize)) + 1;
    blocks += sent;
    t.true(server.stats().pumpedBlocks - before >= sent * share, `${name} ${args.join(' ')}: ${server.stats().pumpedBlocks - before} of ${sent} blocks pumped`);
    t.like(line, { outcome: 'complete', bytes: fixture.files.get(name)!.length, blocksResent: 0, timeouts: 0 });
  }
  t.is(server.stats().blocksSent, blocks, 'the core counts the pumped blocks as sent, once each');
  // netascii is never pumped (its offsets shift); the core sends every block.
  const before = server.stats().pumpedBlocks;
  const ascii = await runClient(t, 'tftp', tftpHpa(port, 'f.bin', 'ascii'));
  t.is(ascii.exitCode, 0, ascii.output);
  t.is(server.stats().pumpedBlocks, before);
});

test('tftp-hpa client, plain RFC 1350: octet and netascii', async (t) => {
  const { port, logs } = startServer(t, fixture);
  for (const name of ['f.bin', 'exact.bin', 'empty.bin', 'sub/dir/nested.cfg', 'grub/grub.cfg', 'inside-link']) {
    const run = await runClient(t, 'tftp', tftpHpa(port, name));
    t.is(run.exitCode, 0, run.output);
    t.is(sha256(run.data ?? Buffer.alloc(1)), expected(name), name);
  }
  const ascii = await runClient(t, 'tftp', tftpHpa(port, 'text.txt', 'ascii'));
  t.is(ascii.data?.toString('latin1'), fixture.files.get('text.txt')!.toString('latin1'));
  const modes = transferLines(logs).map((l) => l.mode);
  t.is(modes.at(-1), 'netascii');
  t.true(transferLines(logs).every((l) => l.outcome === 'complete' && l.blksize === 512));
});

test('tsize is the real size in the OACK; the EDK2 probe (ERROR after OACK) then the real request', async (t) => {
  const { server, port } = startServer(t, fixture);
  const client = await rawClient(t, port);
  client.rrq('ipxe.efi', [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1468' }]);
  const oack = await client.next();
  t.is(oack?.packet.type, 'oack');
  if (oack?.packet.type !== 'oack') return;
  t.deepEqual(oack.packet.options, [{ name: 'tsize', value: String(fixture.files.get('ipxe.efi')!.length) }, { name: 'blksize', value: '1468' }]);
  t.not(oack.port, port, 'the transfer answers from its own port');
  client.error(ErrorCode.optionRefused, 'tsize probe done', oack.port);
  client.rrq('ipxe.efi', [{ name: 'blksize', value: '1468' }]);
  const second = await client.next();
  t.truthy(second);
  const data = await client.download(second!, 1468);
  t.is(sha256(data), expected('ipxe.efi'));
  await new Promise((r) => setTimeout(r, 50));
  const { outcomes } = server.stats();
  t.is(outcomes['aborted-after-oack'], 1);
  t.is(outcomes.complete, 1);
  t.is(server.stats().activeTransfers, 0);
});

test('error codes: 1 not found, 2 write request, 4 illegal operation, 8 option refused, 5 unknown transfer ID', async (t) => {
  const { server, port } = startServer(t, fixture);
  const client = await rawClient(t, port);
  const errorFor = async (send: () => void) => {
    send();
    const reply = await client.next();
    return reply?.packet.type === 'error' ? reply.packet.code : reply?.packet.type;
  };
  t.is(await errorFor(() => client.rrq('no-such-file')), ErrorCode.fileNotFound);
  t.is(await errorFor(() => client.wrq('upload.bin')), ErrorCode.accessViolation);
  t.is(await errorFor(() => client.rrq('f.bin', [], 'mail')), ErrorCode.illegalOperation);
  t.is(await errorFor(() => client.send(Buffer.from([0, 9, 1, 2, 3]))), ErrorCode.illegalOperation);
  t.is(await errorFor(() => client.send(serializeAck(1))), ErrorCode.illegalOperation);
  t.is(await errorFor(() => client.rrq('f.bin', [{ name: 'blksize', value: '4' }])), ErrorCode.optionRefused);
  t.is(await errorFor(() => client.rrq('f.bin', [{ name: 'windowsize', value: '0' }])), ErrorCode.optionRefused);

  // A stranger's ACK on a transfer's port gets ERROR 5; the transfer goes on.
  client.rrq('small.bin');
  const first = await client.next();
  t.is(first?.packet.type, 'data');
  const stranger = await rawClient(t, port);
  stranger.ack(1, first!.port);
  const toStranger = await stranger.next();
  t.is(toStranger?.packet.type === 'error' ? toStranger.packet.code : undefined, ErrorCode.unknownTransferId);
  const data = await client.download(first!, 512);
  t.is(sha256(data), expected('small.bin'));

  // Real clients see the same: curl and tftp-hpa fail on a missing file, tftp-hpa's put is refused.
  t.not((await runClient(t, 'curl', curl(port, 'no-such-file'))).exitCode, 0);
  const put = await runClient(t, 'tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', '/etc/hostname', 'x']);
  t.regex(put.output, /Access violation|read-only/i);
  const stats = server.stats();
  t.is(stats.notFound, 2);
  t.is(stats.writeRequestsRefused, 2);
  t.is(stats.illegalRequests, 3);
  t.is(stats.outcomes['negotiation-refused'], 2);
  t.is(stats.unknownTransferIds, 1);
});

test('path escapes are refused with ERROR 2 and logged; symlinks inside the root are served', async (t) => {
  const { server, port, logs } = startServer(t, fixture);
  const client = await rawClient(t, port);
  const escapes = ['../outside/secret', 'sub/../../outside/secret', '/etc/passwd', 'escape-link', 'escape-dir/secret', '..', 'sub'];
  for (const name of escapes) {
    client.rrq(name);
    const reply = await client.next();
    t.is(reply?.packet.type === 'error' ? reply.packet.code : reply?.packet.type, ErrorCode.accessViolation, JSON.stringify(name));
  }
  t.is(server.stats().accessViolations, escapes.length);
  t.is(logs.filter((l) => l.msg === 'tftp: access violation').length, escapes.length);
  const atftpEscape = await runClient(t, 'atftp', atftp(port, '../outside/secret', {}));
  t.not(atftpEscape.data?.toString(), 'not for TFTP clients\n');
  const curlEscape = await runClient(t, 'curl', curl(port, '../outside/secret'));
  t.not(curlEscape.exitCode, 0);
  t.is(curlEscape.data, undefined);
  const inside = await runClient(t, 'curl', curl(port, 'inside-link', 1468));
  t.is(sha256(inside.data ?? Buffer.alloc(1)), expected('inside-link'));
});

test('duplicate ACKs are never answered (no Sorcerer\'s Apprentice); the timer resends', async (t) => {
  const { port } = startServer(t, fixture, { retransmit: { initialRtoMs: 300 } });
  const client = await rawClient(t, port);
  client.rrq('small.bin');
  const first = await client.next();
  t.is(first?.packet.type, 'data');
  client.ack(1, first!.port);
  const second = await client.next();
  t.true(second?.packet.type === 'data' && second.packet.block === 2);
  client.ack(1, first!.port);
  client.ack(1, first!.port);
  t.is(await client.next(100), undefined, 'no DATA in answer to a duplicate ACK');
  const resent = await client.next(2000);
  t.true(resent?.packet.type === 'data' && resent.packet.block === 2, 'DATA 2 again on timeout');
  t.is(await client.next(100), undefined, 'exactly once');
});

test('a client that closes its port mid-transfer: the ICMP port unreachable ends the transfer at once, not after the give-up time', async (t) => {
  const { server, port, logs } = startServer(t, fixture, { retransmit: { initialRtoMs: 200 } });
  const client = await rawClient(t, port);
  client.rrq('f.bin');
  const first = await client.next();
  t.is(first?.packet.type, 'data');
  client.ack(1, first!.port);
  t.is((await client.next())?.packet.type, 'data');
  client.close(); // the server's next retransmission of block 2 meets a closed port
  const closedAt = Date.now();
  while (server.stats().activeTransfers > 0 && Date.now() - closedAt < 10_000) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(server.stats().activeTransfers, 0, 'ended well before the 30 s give-up time');
  t.like(transferLines(logs).at(-1), { outcome: 'aborted-by-client', detail: 'client port unreachable' });
  t.is(server.stats().sendErrors, 0, 'not counted as a send error');
});

test('a root-directory file cut short mid-transfer: the transfer ends with an ERROR, never completes; the server keeps serving', async (t) => {
  const { server, port, logs } = startServer(t, fixture);
  const name = `shrinking-${randomBytes(4).toString('hex')}.bin`;
  writeFileSync(join(fixture.root, name), randomBytes(64 * 1024));
  t.teardown(() => rmSync(join(fixture.root, name), { force: true }));
  const client = await rawClient(t, port);
  client.rrq(name);
  let reply = await client.next();
  let blocks = 0;
  // Lock-step at 512; the pump (sending from its mapping of the file) carries blocks 2 onwards.
  for (; reply?.packet.type === 'data'; reply = await client.next()) {
    blocks++;
    // After block 4 the file is cut inside a page: the mapping reads zeros up to that page's end,
    // the pages after it fault, and the core's own reads come short.
    if (reply.packet.block === 4) truncateSync(join(fixture.root, name), 8000);
    client.ack(reply.packet.block, reply.port);
  }
  t.is(reply?.packet.type, 'error', `after ${blocks} blocks: an ERROR, not a last block`);
  t.like(transferLines(logs).at(-1), { outcome: 'source-error' });
  t.is(server.stats().outcomes.complete, 0);
  const run = await runClient(t, 'curl', curl(port, 'f.bin', 1468));
  t.is(sha256(run.data ?? Buffer.alloc(1)), expected('f.bin'), 'and the server serves the next transfer');
});

test('a root-directory file replaced by rename mid-transfer: the running transfer completes with the old content, the next gets the new', async (t) => {
  const { port, logs } = startServer(t, fixture);
  const name = `replaced-${randomBytes(4).toString('hex')}.bin`;
  const [before, after] = [randomBytes(20_000), randomBytes(30_000)];
  writeFileSync(join(fixture.root, name), before);
  t.teardown(() => rmSync(join(fixture.root, name), { force: true }));
  const client = await rawClient(t, port);
  client.rrq(name);
  const received: Buffer[] = [];
  for (let reply = await client.next(); reply?.packet.type === 'data'; reply = await client.next()) {
    received.push(reply.packet.payload);
    // As `install` or `mv` replace a file: a new inode renamed over the one being sent (which
    // unlinks it and moves its ctime, not its content).
    if (reply.packet.block === 4) {
      writeFileSync(join(fixture.root, `${name}.new`), after);
      renameSync(join(fixture.root, `${name}.new`), join(fixture.root, name));
    }
    client.ack(reply.packet.block, reply.port);
    if (reply.packet.payload.length < 512) break;
  }
  t.true(Buffer.concat(received).equals(before), 'the old content, whole');
  for (let i = 0; i < 100 && transferLines(logs).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.like(transferLines(logs).at(-1), { outcome: 'complete' }); // logged once the final ACK is in
  const run = await runClient(t, 'curl', curl(port, name, 1468));
  t.true(run.data?.equals(after), 'the next transfer gets the new file');
});

test('a file the send pump cannot map: logged once, the core sends every block, byte-identical', async (t) => {
  // /dev/null cannot be mapped (ENODEV): a source whose descriptor is that, with the bytes in memory.
  const bytes = randomBytes(100_000);
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  const source = { open: () => ({ size: bytes.length, fd, readBlock: (offset: number, length: number) => bytes.subarray(offset, offset + length), close: () => {} }) };
  const { server, port, logs } = startServer(t, fixture, { source });
  const run = await runClient(t, 'curl', curl(port, 'unmappable.bin', 512));
  t.is(run.exitCode, 0, run.output);
  t.true(run.data?.equals(bytes), 'byte-identical');
  t.is(server.stats().pumpedBlocks, 0);
  t.is(logs.filter((l) => l.msg === 'tftp: the send pump refused the transfer; the core sends every block').length, 1);
  t.like(transferLines(logs).at(-1), { outcome: 'complete' });
});

test('malformed datagrams on the server port and on a transfer port never stop the server', async (t) => {
  const { server, port } = startServer(t, fixture);
  const client = await rawClient(t, port);
  client.rrq('f.bin', [{ name: 'blksize', value: '1468' }]);
  const oack = await client.next();
  t.is(oack?.packet.type, 'oack');
  const garbage = await rawClient(t, port);
  for (let i = 0; i < 500; i++) {
    const junk = randomBytes(i % 40);
    garbage.send(junk);
    garbage.send(junk, oack!.port);
    // Paced, so that the kernel's receive buffers (not the server) decide nothing here.
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const data = await client.download(oack!, 1468);
  t.is(sha256(data), expected('f.bin'));
  const after = await runClient(t, 'curl', curl(port, 'small.bin', 1468));
  t.is(sha256(after.data ?? Buffer.alloc(1)), expected('small.bin'));
  // Every stranger's datagram that reached the transfer port was counted (a few may be dropped by the
  // kernel when the machine is loaded, never more than sent).
  const strangers = server.stats().unknownTransferIds;
  t.true(strangers > 400 && strangers <= 500, `${strangers}`);
});

test('16 concurrent clients of the same store file, and closing the server cancels a transfer', async (t) => {
  const { server, port } = startServer(t, fixture);
  const runs = await Promise.all(Array.from({ length: 16 }, (_, i) => runClient(t, 'curl', curl(port, 'ipxe.efi', i % 2 ? 1468 : 8192))));
  for (const run of runs) t.is(sha256(run.data ?? Buffer.alloc(1)), expected('ipxe.efi'));
  t.is(server.stats().outcomes.complete, 16);

  const client = await rawClient(t, port);
  client.rrq('f.bin');
  const first = await client.next();
  t.is(first?.packet.type, 'data');
  t.is(server.stats().activeTransfers, 1);
  await server.close();
  const last = await client.next();
  t.true(last?.packet.type === 'error' && last.packet.code === ErrorCode.notDefined);
  t.is(server.stats().outcomes.cancelled, 1);
  t.is(server.stats().activeTransfers, 0);
});

test('a NUL cannot reach a file name on the wire (it ends the name) and sources refuse it when handed one', async (t) => {
  const { port } = startServer(t, fixture);
  const client = await rawClient(t, port);
  // "f.bin\0.txt\0octet\0": the name is "f.bin" and the mode ".txt", which is refused.
  client.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('f.bin\0.txt\0octet\0', 'latin1')]));
  const reply = await client.next();
  t.is(reply?.packet.type === 'error' ? reply.packet.code : reply?.packet.type, ErrorCode.illegalOperation);
  const source = new RootDirectorySource(fixture.root);
  t.like(source.open('f.bin\0.txt'), { error: 'access-violation' });
  t.like(new ChunkStoreSource(fixture.chunks).open('ipxe.efi\0'), { error: 'access-violation' });
});

test('keel serve starts TFTP with the head: files published as tftp/<path> in its store are served', async (t) => {
  const { head } = await startTestHead(t);
  const ipxe = fixture.files.get('ipxe.efi')!;
  await new ChunkStore(head.store).putFile('tftp/ipxe.efi', Readable.from([ipxe]));
  const run = await runClient(t, 'curl', curl(head.tftpPort, 'ipxe.efi', 1468));
  t.is(sha256(run.data ?? Buffer.alloc(0)), sha256(ipxe));
  t.is(head.tftp.stats().outcomes.complete, 1);
});

test('readInto and readBlock of both sources give the same bytes as the file holds: across chunk boundaries, at the end', (t) => {
  const cases: [string, ReturnType<RootDirectorySource['open']>][] = [
    ['f.bin', new RootDirectorySource(fixture.root).open('f.bin')],
    ['ipxe.efi', new ChunkStoreSource(fixture.chunks).open('ipxe.efi')],
  ];
  for (const [name, opened] of cases) {
    if ('error' in opened) return t.fail(opened.reason);
    t.teardown(() => opened.close());
    const content = fixture.files.get(name)!;
    t.truthy(opened.readInto, `${name}: readInto`);
    // In the store (64 KiB chunks) every size straddles a chunk boundary somewhere.
    for (const length of [512, 1468, 16384, 65464]) {
      const target = Buffer.alloc(length + 8, 0xee);
      for (const offset of [0, 65536 - 100, 300_001, content.length - length, content.length - 10, content.length]) {
        const copied = opened.readInto!(target, 4, offset, length);
        const want = content.subarray(offset, offset + length);
        t.is(copied, want.length, `${name} ${length} @ ${offset}`);
        t.true(target.subarray(4, 4 + copied).equals(want), `${name} ${length} @ ${offset}: content`);
        t.is(target[3], 0xee, `${name}: nothing written before the offset`);
        t.true(opened.readBlock(offset, length).equals(want), `${name} ${length} @ ${offset}: readBlock agrees`);
      }
    }
  }
});
