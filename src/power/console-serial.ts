// A local serial line on @serialport/stream with the Linux binding of @serialport/bindings-cpp (a
// native addon, embedded in the single binary: src/native.ts). The binding opens the device
// non-blocking and sets the line parameters itself (termios, no stty subprocess), reads through a
// libuv poll handle (no threadpool thread parked in a blocking read per console), and drives the
// BREAK condition with TIOCSBRK/TIOCCBRK (port.set({brk})).
import { LinuxBinding } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import type { ConsoleLine, LineEvents, SerialSpec } from './console-line.js';

const settle = (resolve: () => void, reject: (err: Error) => void) => (err: Error | null) => (err ? reject(err) : resolve());

export async function openSerialLine(spec: SerialSpec, events: LineEvents): Promise<ConsoleLine> {
  const port = new SerialPortStream({
    binding: LinuxBinding,
    path: spec.device,
    baudRate: spec.baud,
    dataBits: spec.dataBits,
    parity: spec.parity,
    stopBits: spec.stopBits,
    rtscts: spec.flow === 'rtscts',
    xon: spec.flow === 'xonxoff',
    xoff: spec.flow === 'xonxoff',
    // flock(LOCK_EX): a second keel (or anything else that locks) cannot share the line.
    lock: true,
    // Reopening after an error must not hang up the node's getty (DTR drop on close).
    hupcl: false,
    autoOpen: false,
  });
  // Until the port is open, errors are the open's (rejected below).
  port.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => port.open(settle(resolve, reject)));
  } catch (err) {
    // The binding's errors read "Error: <strerror>, cannot open <path>".
    throw new Error(`${spec.device}: ${(err as Error).message.replace(/^Error: /, '')}`, { cause: err });
  }
  let closing = false;
  let ended = false;
  let breaking = false;
  const end = (reason: string) => {
    if (closing || ended) return;
    ended = true;
    if (port.isOpen) port.close(() => undefined);
    events.ended(reason);
  };
  port.on('data', (chunk: Buffer) => events.data(chunk));
  port.removeAllListeners('error');
  port.on('error', (err: Error) => end(`${spec.device}: ${err.message}`));
  // 'close' with an error: the binding saw the device go (read error, e.g. EIO when the far end of
  // a pty closes, or a USB adapter unplugged).
  port.on('close', (err: Error | null) => end(`${spec.device}: ${err?.message ?? 'closed'}`));
  const set = (brk: boolean) => new Promise<void>((resolve, reject) => port.set({ brk }, settle(resolve, reject)));
  return {
    write: (bytes) => {
      if (port.isOpen) port.write(bytes);
    },
    async sendBreak(durationMs) {
      if (breaking) throw new Error('a break is already being sent on this line');
      breaking = true;
      try {
        // set() also writes the modem lines (DTR, RTS: kept asserted), which a pty refuses after it
        // took the break (ENOTTY): the break is still cleared after the duration, and the first
        // error reported.
        let failure: Error | undefined;
        await set(true).catch((err: Error) => (failure = err));
        await new Promise((resolve) => setTimeout(resolve, durationMs));
        if (port.isOpen) await set(false).catch((err: Error) => (failure ??= err));
        if (failure) throw new Error(`${spec.device}: ${failure.message.replace(/^Error: /, '')}`, { cause: failure });
      } finally {
        breaking = false;
      }
    },
    async close() {
      closing = true;
      if (!port.isOpen) return;
      await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}
