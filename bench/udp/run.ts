// bench/udp: dgram-native vs node:dgram on loopback, 64- and 1468-byte datagrams, in one run.
//   blast-recv: a dgram-native blaster sends; measured: the receiver (node:dgram or dgram-native)
//   blast-send: measured: the sender (node:dgram or dgram-native); a dgram-native sink receives
//   echo:       a dgram-native client keeps 256 requests in flight; measured: the echo server
// Every process is pinned to the same CPU (taskset), so the peer's work competes with the
// measured side as on a loaded appliance. Figures: packets/s (wall, first to last packet) and
// CPU µs per packet of the measured process; the ratio compares packets per CPU-second.
// Usage: node --import tsx bench/udp/run.ts [--cpu N] [--count N]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const cpu = option('--cpu', '1');
const count = Number(option('--count', '200000'));
const rolePath = fileURLToPath(new URL('./role.ts', import.meta.url));

interface Result {
  packets: number;
  wallMs: number;
  cpuMs: number;
  systemCpuMs: number;
}

function start(role: string, impl: string, size: number, port?: number) {
  const child = spawn('taskset', ['-c', cpu, process.execPath, '--import', 'tsx', rolePath, role, impl, String(size), String(count), ...(port ? [String(port)] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Promise<Record<string, number>>[] = [];
  const resolvers: ((line: Record<string, number>) => void)[] = [];
  for (let i = 0; i < 2; i++) lines.push(new Promise((resolve) => resolvers.push(resolve)));
  let n = 0;
  createInterface({ input: child.stdout }).on('line', (line) => resolvers[n++]?.(JSON.parse(line)));
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.on('exit', () => clearTimeout(timeout));
  return { child, lines };
}

async function runPair(receiverRole: string, receiverImpl: string, senderRole: string, senderImpl: string, size: number, measured: 'receiver' | 'sender'): Promise<Result> {
  const receiver = start(receiverRole, receiverImpl, size);
  const { port } = await receiver.lines[0]!;
  const sender = start(senderRole, senderImpl, size, port);
  const senderResult = (await sender.lines[0]!) as unknown as Result;
  const receiverResult = (await receiver.lines[1]!) as unknown as Result;
  receiver.child.kill();
  return measured === 'receiver' ? receiverResult : senderResult;
}

const scenarios = {
  'blast-recv': (impl: string, size: number) => runPair('sink', impl, 'blaster', 'native', size, 'receiver'),
  'blast-send': (impl: string, size: number) => runPair('sink', 'native', 'blaster', impl, size, 'sender'),
  echo: (impl: string, size: number) => runPair('echo-server', impl, 'echo-client', 'native', size, 'receiver'),
};

const rows: string[] = [];
const header = '| scenario | size | impl | packets | packets/s | CPU µs/packet (of which kernel) | packets per CPU-s | native/node |';
rows.push(header, '|---|---:|---|---:|---:|---:|---:|---:|');
for (const size of [64, 1468]) {
  for (const [name, run] of Object.entries(scenarios)) {
    const perCpuSecond: Record<string, number> = {};
    for (const impl of ['node', 'native']) {
      const r = await run(impl, size);
      const pps = r.packets / (r.wallMs / 1000);
      perCpuSecond[impl] = r.packets / (r.cpuMs / 1000);
      const ratio = impl === 'native' ? `${(perCpuSecond.native! / perCpuSecond.node!).toFixed(2)}×` : '';
      const label = impl === 'node' ? 'node:dgram' : 'dgram-native';
      rows.push(`| ${name} | ${size} | ${label} | ${r.packets} | ${Math.round(pps)} | ${((r.cpuMs * 1000) / r.packets).toFixed(2)} (${((r.systemCpuMs * 1000) / r.packets).toFixed(2)}) | ${Math.round(perCpuSecond[impl]!)} | ${ratio} |`);
      console.error(rows.at(-1));
    }
  }
}
console.log(rows.join('\n'));
