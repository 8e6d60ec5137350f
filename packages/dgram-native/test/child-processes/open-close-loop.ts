// Opens and closes dgram-native sockets in a loop and prints RSS, V8 heap and open fds after a
// warm-up and at five checkpoints, as one JSON line. Run with --expose-gc so that every
// measurement follows a full collection.
// Usage: node --expose-gc --import tsx open-close-loop.ts <iterations> [warmup]
import { readdirSync } from 'node:fs';
import { createSocket, type UdpSocket } from 'dgram-native';

const iterations = Number(process.argv[2]);
const warmup = Number(process.argv[3] ?? 20_000);
const inFlight = 100; // closes complete on the next loop turn; wait for them in groups

async function cycle(count: number): Promise<void> {
  for (let done = 0; done < count; done += inFlight) {
    const closing: Promise<void>[] = [];
    for (let i = 0; i < inFlight && done + i < count; i++) {
      // Every other socket also has the receive-coalescing timer, a second libuv handle to close.
      const socket: UdpSocket = createSocket({ bindAddress: '127.0.0.1', pktinfo: true, recvBufferSize: 1 << 16, receiveCoalescingMs: i % 2 });
      socket.on('message', () => undefined);
      closing.push(socket.close());
    }
    await Promise.all(closing);
  }
}

const megabytes = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

function settle(): { rssMB: number; heapMB: number; fds: number } {
  for (let i = 0; i < 3; i++) (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  return { rssMB: megabytes(memory.rss), heapMB: megabytes(memory.heapUsed + memory.external), fds: readdirSync('/proc/self/fd').length };
}

await cycle(warmup);
const before = settle();
const checkpoints = [];
const started = process.hrtime.bigint();
for (let step = 1; step <= 5; step++) {
  await cycle(Math.round((iterations * step) / 5) - Math.round((iterations * (step - 1)) / 5));
  checkpoints.push(settle());
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ iterations, warmup, seconds: Math.round(seconds * 10) / 10, before, checkpoints }));
