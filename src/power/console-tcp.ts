// A terminal server's TCP port as a console line: the raw TCP ports that serial concentrators and
// QEMU's `-serial tcp:` expose, or the same in telnet mode, where BREAK exists (IAC BRK, RFC 854;
// QEMU's `telnet=on` and concentrators in telnet mode turn it into a serial break on the line).
// Telnet here is the minimum a console needs: data with IAC doubled, BINARY and SUPPRESS-GO-AHEAD
// accepted, every other option refused, subnegotiations skipped. No RFC 2217 (COM-port control):
// no maintained npm library implements it (telnet-stream, the one telnet codec, is AGPL and has none).
import { connect, type Socket } from 'node:net';
import { ConsoleUnavailable, type ConsoleLine, type LineEvents, type TcpSpec } from './console-line.js';

/** How long a connect may take before the line counts as down (then the capture retries). */
const CONNECT_TIMEOUT_MS = 10_000;
/** TCP keepalive: a concentrator that vanished without a FIN is noticed, and the line reopened. */
const KEEPALIVE_MS = 30_000;

const IAC = 255;
const DONT = 254;
const DO = 253;
const WONT = 252;
const WILL = 251;
const SB = 250;
const SE = 240;
const BRK = 243;
const OPTION_BINARY = 0;
const OPTION_ECHO = 1;
const OPTION_SGA = 3;

/** Options keel does itself (DO → WILL) and lets the server do (WILL → DO); everything else is refused. */
const LOCAL_OPTIONS = new Set([OPTION_BINARY, OPTION_SGA]);
// The server echoing is what a serial line does anyway; keel never echoes locally.
const REMOTE_OPTIONS = new Set([OPTION_BINARY, OPTION_SGA, OPTION_ECHO]);

/**
 * The telnet side of a connection: decode() strips commands from the server's bytes (answering
 * option requests through `reply`) and returns the data; encode() doubles IAC in keystrokes.
 * Answers only change of state (RFC 854's loop rule): a repeated request is not answered twice.
 */
export class TelnetCodec {
  private state: 'data' | 'iac' | 'option' | 'sub' | 'sub-iac' = 'data';
  private verb = 0;
  private readonly local = new Set<number>();
  private readonly remote = new Set<number>();
  private readonly refused = new Set<string>();

  constructor(private readonly reply: (bytes: Buffer) => void) {}

  decode(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(chunk.length);
    let n = 0;
    for (const byte of chunk) {
      switch (this.state) {
        case 'data':
          if (byte === IAC) this.state = 'iac';
          else out[n++] = byte;
          break;
        case 'iac':
          if (byte === IAC) {
            out[n++] = IAC;
            this.state = 'data';
          } else if (byte >= WILL && byte <= DONT) {
            this.verb = byte;
            this.state = 'option';
          } else {
            // SB starts a subnegotiation; any other command (NOP, GA, DM…) means nothing on a console.
            this.state = byte === SB ? 'sub' : 'data';
          }
          break;
        case 'option':
          this.negotiate(this.verb, byte);
          this.state = 'data';
          break;
        case 'sub':
          if (byte === IAC) this.state = 'sub-iac';
          break;
        case 'sub-iac':
          this.state = byte === SE ? 'data' : 'sub';
          break;
      }
    }
    return out.subarray(0, n);
  }

  encode(bytes: Buffer): Buffer {
    if (!bytes.includes(IAC)) return bytes;
    const out: number[] = [];
    for (const byte of bytes) {
      out.push(byte);
      if (byte === IAC) out.push(IAC);
    }
    return Buffer.from(out);
  }

  private negotiate(verb: number, option: number): void {
    const send = (answer: number) => this.reply(Buffer.from([IAC, answer, option]));
    // A refusal is sent once per request kind: a server that keeps asking gets no reply loop.
    const refuse = (answer: number) => {
      const key = `${answer}:${option}`;
      if (this.refused.has(key)) return;
      this.refused.add(key);
      send(answer);
    };
    switch (verb) {
      case DO:
        if (!LOCAL_OPTIONS.has(option)) return refuse(WONT);
        if (!this.local.has(option)) {
          this.local.add(option);
          send(WILL);
        }
        return;
      case DONT:
        if (this.local.delete(option)) send(WONT);
        return;
      case WILL:
        if (!REMOTE_OPTIONS.has(option)) return refuse(DONT);
        if (!this.remote.has(option)) {
          this.remote.add(option);
          send(DO);
        }
        return;
      case WONT:
        if (this.remote.delete(option)) send(DONT);
        return;
    }
  }
}

export const TELNET_BREAK = Buffer.from([IAC, BRK]);

export async function openTcpLine(spec: TcpSpec, events: LineEvents): Promise<ConsoleLine> {
  const where = `${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
  const socket: Socket = connect({ host: spec.host, port: spec.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${where}: ${err.message}`));
    });
  });
  const telnet = spec.protocol === 'telnet' ? new TelnetCodec((bytes) => socket.write(bytes)) : undefined;
  let closing = false;
  let ended = false;
  const end = (reason: string) => {
    if (closing || ended) return;
    ended = true;
    socket.destroy();
    events.ended(reason);
  };
  socket.on('data', (chunk: Buffer) => {
    const data = telnet ? telnet.decode(chunk) : chunk;
    if (data.length > 0) events.data(data);
  });
  socket.on('error', (err) => end(`${where}: ${err.message}`));
  socket.on('close', () => end(`${where}: connection closed by the terminal server`));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    write: (bytes) => {
      if (!socket.destroyed) socket.write(telnet ? telnet.encode(bytes) : bytes);
    },
    sendBreak: async () => {
      if (!telnet) throw new ConsoleUnavailable(`a raw TCP console cannot carry a BREAK (set console_protocol=telnet if the terminal server speaks telnet)`);
      if (socket.destroyed) throw new Error(`${where}: not connected`);
      socket.write(TELNET_BREAK);
    },
    async close() {
      closing = true;
      socket.destroy();
      await closed;
    },
  };
}
