// Load generator for bench/tftp's small-files section: `count` sequential lock-step transfers of
// one file (RFC 1350, octet, blksize 512, no options), as the nodes of a boot storm fetch their
// iPXE script or config. A real client (curl, atftp) would spend most of each transfer starting
// its own process. PAUSE_MS > 0 waits that long between transfers (a timer), so that the server
// goes idle in between, as it does between the requests of a storm's many nodes. Exits 0 when
// every transfer delivered `size` bytes, else 1 with the reason.
//   node bench/tftp/small-files-client.mjs PORT FILE SIZE COUNT [PAUSE_MS]
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

const [port, file, size, count, pauseMs] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6] ?? 0)];
const socket = dgram.createSocket('udp4');
await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
const request = Buffer.from(`\0\x01${file}\0octet\0`, 'latin1');

/** One transfer: RRQ, then ACK each DATA in order until the short block; resolves with the bytes received. */
function transfer() {
  return new Promise((resolve, reject) => {
    let received = 0;
    let expected = 1;
    const timer = setTimeout(() => reject(new Error(`no reply within 5 s (block ${expected})`)), 5000);
    const onMessage = (message, from) => {
      if (message.readUInt16BE(0) === 5) return done(new Error(`ERROR ${message.readUInt16BE(2)}: ${message.subarray(4, -1).toString()}`));
      if (message.readUInt16BE(0) !== 3) return;
      socket.send(message.subarray(0, 4).fill(4, 1, 2), from.port, from.address); // ACK: opcode 4, same block
      if (message.readUInt16BE(2) !== expected) return;
      expected++;
      received += message.length - 4;
      if (message.length < 516) done(undefined);
    };
    const done = (error) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      if (error) reject(error);
      else resolve(received);
    };
    socket.on('message', onMessage);
    socket.send(request, port, '127.0.0.1');
  });
}

try {
  for (let i = 0; i < count; i++) {
    const bytes = await transfer();
    if (bytes !== size) throw new Error(`transfer ${i}: ${bytes} bytes, expected ${size}`);
    if (pauseMs > 0) await sleep(pauseMs);
  }
  socket.close();
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
