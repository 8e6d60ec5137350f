// A serial line for the console tests: `socat` joins two ptys (raw, no echo), so what the
// simulated machine writes on one end comes out of the other, where keel (or ipmi_sim's SOL)
// reads it. socat is stopped by PID (stop(), or the test's teardown).
import { spawn } from 'node:child_process';
import { constants, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ReadStream } from 'node:tty';

export interface PtyPair {
  /** The machine's end: the test writes console output here and reads keystrokes. */
  machine: string;
  /** keel's end (console_device) or ipmi_sim's SOL device. */
  device: string;
  pid: number;
  /** Write on the machine's end. */
  write(data: string | Buffer): Promise<void>;
  /** Everything the machine's end has received (keystrokes). */
  received(): Buffer;
  stop(): Promise<void>;
}

export async function startPtyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-pty-'));
  const machine = join(dir, 'machine');
  // A name of its own: ipmi_sim locks its SOL device as /var/lock/LCK..<basename>, so two pairs
  // both named `device` (tests running at the same time) would lock each other out.
  const device = join(dir, `device-${basename(dir).slice('keel-pty-'.length)}`);
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${machine}`, `pty,raw,echo=0,link=${device}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  const opened: { reader?: ReadStream } = {};
  const stop = async () => {
    opened.reader?.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // socat makes both links once its ptys exist and it is about to start the transfer loop.
  for (let i = 0; i < 200 && !(existsSync(machine) && existsSync(device) && stderr.includes('starting data transfer loop')); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!existsSync(machine) || !existsSync(device)) {
    await stop();
    throw new Error(`socat made no pty pair: ${stderr}`);
  }
  const fd = openSync(machine, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  const stream = new ReadStream(fd);
  opened.reader = stream;
  const keystrokes: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => keystrokes.push(chunk));
  stream.on('error', () => undefined);
  return {
    machine, device, pid,
    write: async (data) => {
      const bytes = Buffer.from(data);
      for (let offset = 0; offset < bytes.length;) {
        try {
          offset += writeSync(fd, bytes, offset);
        } catch (err) {
          // Non-blocking: a full pty buffer says EAGAIN until socat drains it.
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    },
    received: () => Buffer.concat(keystrokes),
    stop,
  };
}
