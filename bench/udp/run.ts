// bench/udp: dgram-native vs node:dgram on loopback, 64- and 1468-byte datagrams, in one run.
//   blast-recv:           a dgram-native blaster sends one message per datagram (gso: false, as
//                         many independent clients would); measured: the receiver
//   blast-recv-coalesced: the same, dgram-native receiving with receiveCoalescingMs: 1
//   blast-recv-gso:       the blaster sends with GSO (runs of 64 datagrams per send);
//                         dgram-native receives with gro: true, node:dgram gets the datagrams the
//                         kernel segments for it
//   blast-send:           measured: the sender (node:dgram, or dgram-native sendBatch with GSO);
//                         a dgram-native sink with default options receives
//   echo:                 a dgram-native client keeps 256 requests in flight; measured: the echo
//                         server (dgram-native: gro, 'packed' event, replies with sendBatch)
// Every process is pinned to the same CPU (taskset), so the peer's work competes with the
// measured side as on a loaded appliance. Figures: packets/s (wall, first to last packet), the
// share of sent datagrams the receiver got, and CPU µs per packet of the measured process; the
// ratio compares packets per CPU-second.
// Usage: node --import tsx bench/udp/run.ts [--cpu N] [--count N] [--only scenario,...] [--sink gro,coalesce]
//   --sink: flags for the blast-send sink (see role.ts)
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
const sinkFlags = option('--sink', '').split(',').filter(Boolean);
const only = option('--only', '').split(',').filter(Boolean);
const rolePath = fileURLToPath(new URL('./role.ts', import.meta.url));

interface Result {
  packets: number;
  wallMs: number;
  cpuMs: number;
  systemCpuMs: number;
}

/** role, implementation, then flags (no-gso, gro; see role.ts) */
type Side = [string, string, ...string[]];

function start([role, impl, ...flags]: Side, size: number, port = 0) {
  const child = spawn('taskset', ['-c', cpu, process.execPath, '--import', 'tsx', rolePath, role, impl, String(size), String(count), String(port), ...flags], {
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

/** The measured side's figures, and the share of sent datagrams the receiver got. */
async function runPair(receiverSide: Side, senderSide: Side, size: number, measured: 'receiver' | 'sender'): Promise<Result & { delivered: number }> {
  const receiver = start(receiverSide, size);
  const { port } = await receiver.lines[0]!;
  const sender = start(senderSide, size, port);
  const senderResult = (await sender.lines[0]!) as unknown as Result;
  const receiverResult = (await receiver.lines[1]!) as unknown as Result;
  receiver.child.kill();
  const delivered = receiverResult.packets / count;
  return { ...(measured === 'receiver' ? receiverResult : senderResult), delivered };
}

// The 'gro' flag only affects a dgram-native receiver; node:dgram cannot ask for GRO.
const scenarios = {
  'blast-recv': (impl: string, size: number) => runPair(['sink', impl], ['blaster', 'native', 'no-gso'], size, 'receiver'),
  'blast-recv-coalesced': (impl: string, size: number) => runPair(['sink', impl, 'coalesce'], ['blaster', 'native', 'no-gso'], size, 'receiver'),
  'blast-recv-gso': (impl: string, size: number) => runPair(['sink', impl, 'gro'], ['blaster', 'native'], size, 'receiver'),
  'blast-send': (impl: string, size: number) => runPair(['sink', 'native', ...sinkFlags], ['blaster', impl], size, 'sender'),
  echo: (impl: string, size: number) => runPair(['echo-server', impl, 'gro'], ['echo-client', 'native'], size, 'receiver'),
};

const rows: string[] = [];
const header = '| scenario | size | impl | packets | delivered | packets/s | CPU µs/packet (of which kernel) | packets per CPU-s | native/node |';
rows.push(header, '|---|---:|---|---:|---:|---:|---:|---:|---:|');
for (const size of [64, 1468]) {
  for (const [name, run] of Object.entries(scenarios)) {
    if (only.length > 0 && !only.includes(name)) continue;
    const perCpuSecond: Record<string, number> = {};
    for (const impl of ['node', 'native']) {
      const r = await run(impl, size);
      const pps = r.packets / (r.wallMs / 1000);
      perCpuSecond[impl] = r.packets / (r.cpuMs / 1000);
      const ratio = impl === 'native' ? `${(perCpuSecond.native! / perCpuSecond.node!).toFixed(2)}×` : '';
      const label = impl === 'node' ? 'node:dgram' : 'dgram-native';
      rows.push(`| ${name} | ${size} | ${label} | ${r.packets} | ${(r.delivered * 100).toFixed(1)} % | ${Math.round(pps)} | ${((r.cpuMs * 1000) / r.packets).toFixed(2)} (${((r.systemCpuMs * 1000) / r.packets).toFixed(2)}) | ${Math.round(perCpuSecond[impl]!)} | ${ratio} |`);
      console.error(rows.at(-1));
    }
  }
}
console.log(rows.join('\n'));
