// One side of a bench/udp run, as its own process (run.ts pins all of them to one CPU).
// Prints {"ready":true,"port":N} once listening (receivers), then one JSON result line:
// packets handled, wall time from first to last packet, and this process's CPU time.
// Usage: role.ts <sink|echo-server|blaster|echo-client> <node|native> <size> <count> <port|0> [no-gso] [gro] [coalesce]
//   no-gso:   a native sender sends one message per datagram (as many independent clients would)
//   gro:      a native receiver asks for UDP GRO
//   coalesce: a native receiver uses receiveCoalescingMs: 1
import dgram from 'node:dgram';
import { createSocket, type OutgoingDatagram } from 'dgram-native';

const [role, impl, sizeArg, countArg, portArg, ...flags] = process.argv.slice(2);
const size = Number(sizeArg);
const count = Number(countArg);
const targetPort = Number(portArg ?? 0);
const gso = !flags.includes('no-gso');
const gro = flags.includes('gro');
const receiveCoalescingMs = flags.includes('coalesce') ? 1 : 0;
const BATCH = 64;
const BUFFER = 4 << 20;
const payload = Buffer.alloc(size, 0x61);

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function systemCpuMs(): number {
  return process.cpuUsage().system / 1000;
}

/** Measures from the first packet; reports once no packet came for 300 ms (idle time costs ~no CPU). */
function meter() {
  let packets = 0;
  let firstAt = 0;
  let lastAt = 0;
  let cpuAtFirst = 0;
  let cpuAtLast = 0;
  let systemAtFirst = 0;
  let systemAtLast = 0;
  let seenAtCheck = -1;
  const check = setInterval(() => {
    if (packets > 0 && packets === seenAtCheck) {
      clearInterval(check);
      console.log(JSON.stringify({ packets, wallMs: lastAt - firstAt, cpuMs: cpuAtLast - cpuAtFirst, systemCpuMs: systemAtLast - systemAtFirst }));
      process.exit(0);
    }
    seenAtCheck = packets;
    if (packets > 0) {
      lastAt = performance.now();
      cpuAtLast = cpuMs();
      systemAtLast = systemCpuMs();
    }
  }, 150);
  return (n: number) => {
    if (packets === 0) {
      firstAt = performance.now();
      cpuAtFirst = cpuMs();
      systemAtFirst = systemCpuMs();
    }
    packets += n;
    if (packets >= count) {
      // all expected packets arrived: no need to wait for idleness
      clearInterval(check);
      console.log(JSON.stringify({ packets, wallMs: performance.now() - firstAt, cpuMs: cpuMs() - cpuAtFirst, systemCpuMs: systemCpuMs() - systemAtFirst }));
      process.exit(0);
    }
  };
}

function ready(port: number): void {
  console.log(JSON.stringify({ ready: true, port }));
}

const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

async function blaster(): Promise<void> {
  const started = performance.now();
  const cpuStart = cpuMs();
  const systemStart = systemCpuMs();
  if (impl === 'native') {
    const socket = createSocket({ bindAddress: '127.0.0.1', sendBufferSize: BUFFER, gso });
    const batch: OutgoingDatagram[] = Array.from({ length: BATCH }, () => ({ data: payload, port: targetPort, address: '127.0.0.1' }));
    for (let sent = 0; sent < count; sent += BATCH) {
      const result = socket.sendBatch(count - sent >= BATCH ? batch : batch.slice(0, count - sent));
      if (result.queued > 0) await new Promise<void>((resolve) => socket.once('drain', () => resolve()));
      if (sent % (BATCH * 16) === 0) await yieldToLoop();
    }
    await socket.close();
  } else {
    const socket = dgram.createSocket({ type: 'udp4', sendBufferSize: BUFFER });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    for (let sent = 0; sent < count; sent += BATCH) {
      for (let i = 0; i < BATCH && sent + i < count; i++) socket.send(payload, targetPort, '127.0.0.1');
      await yieldToLoop();
    }
    await new Promise<void>((resolve) => socket.close(resolve));
  }
  console.log(JSON.stringify({ packets: count, wallMs: performance.now() - started, cpuMs: cpuMs() - cpuStart, systemCpuMs: systemCpuMs() - systemStart }));
}

function sink(echo: boolean): void {
  const record = meter();
  if (impl === 'native') {
    const socket = createSocket({ bindAddress: '127.0.0.1', recvBufferSize: BUFFER, sendBufferSize: BUFFER, batchSize: gro ? 8 : BATCH, gro, receiveCoalescingMs });
    socket.on('packed', (batch) => {
      if (echo) {
        const replies: OutgoingDatagram[] = new Array(batch.count);
        for (let i = 0; i < batch.count; i++) replies[i] = { data: batch.data(i), port: batch.port(i), address: batch.address(i) };
        socket.sendBatch(replies);
      }
      record(batch.count);
    });
    ready(socket.address().port);
  } else {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER, sendBufferSize: BUFFER });
    socket.on('message', (data, rinfo) => {
      if (echo) socket.send(data, rinfo.port, rinfo.address);
      record(1);
    });
    socket.bind(0, '127.0.0.1', () => ready(socket.address().port));
  }
}

/** Keeps `window` requests outstanding against an echo server; refills after a loss stalls it. */
function echoClient(): void {
  const window = 256;
  const socket = createSocket({ bindAddress: '127.0.0.1', recvBufferSize: BUFFER, sendBufferSize: BUFFER, batchSize: BATCH });
  const started = performance.now();
  const cpuStart = cpuMs();
  const systemStart = systemCpuMs();
  let sent = 0;
  let replies = 0;
  let lastReplies = 0;
  const sendSome = (n: number) => {
    const batch: OutgoingDatagram[] = [];
    for (let i = 0; i < n && sent < count; i++, sent++) batch.push({ data: payload, port: targetPort, address: '127.0.0.1' });
    socket.sendBatch(batch);
  };
  const stall = setInterval(() => {
    if (replies === lastReplies) sendSome(window);
    lastReplies = replies;
  }, 50);
  socket.on('batch', (datagrams) => {
    replies += datagrams.length;
    if (replies >= count || sent >= count) {
      clearInterval(stall);
      console.log(JSON.stringify({ packets: replies, wallMs: performance.now() - started, cpuMs: cpuMs() - cpuStart, systemCpuMs: systemCpuMs() - systemStart }));
      void socket.close();
      return;
    }
    sendSome(datagrams.length);
  });
  sendSome(window);
}

if (role === 'blaster') await blaster();
else if (role === 'sink') sink(false);
else if (role === 'echo-server') sink(true);
else if (role === 'echo-client') echoClient();
else throw new Error(`unknown role ${role}`);
