// `keel console NODE`: the node's live serial console over the API's WebSocket
// (GET /node/<id>/console with an upgrade; src/api/routes/console.ts). The terminal is put in raw
// mode, so every key (Ctrl-C too) goes to the node; an ssh-style escape after a newline talks to
// keel instead: `~.` detaches, `~B` sends a serial BREAK, `~~` sends one `~`, `~?` lists them.
import type { Command } from 'commander';
import https from 'node:https';
import WebSocket from 'ws';
import { ApiError } from '../client.js';
import { clientCommand, seg, sessionFor, type ClientOptions } from './common.js';

// Messages end lines with \n alone: Node's raw mode (libuv) keeps the terminal's ONLCR, which adds the \r.
export const ESCAPE_HELP = [
  'Supported escape sequences (after a newline):',
  '  ~.  detach from the console',
  '  ~B  send a serial BREAK (Magic SysRq on Linux)',
  '  ~~  send ~',
  '  ~?  this help',
].join('\n');

const TILDE = 0x7e;

/** What the escape reader makes of typed bytes: bytes for the node, and keel's own actions. */
export type ConsoleInput = { send: Buffer } | { detach: true } | { sendBreak: true } | { help: true };

/**
 * The ssh escape rule: `~` right after a newline (or as the very first key) starts an escape; the
 * next key says what it is. Anything else goes to the node as typed.
 */
export class EscapeReader {
  private atLineStart = true;
  private afterTilde = false;

  read(chunk: Buffer): ConsoleInput[] {
    const out: ConsoleInput[] = [];
    let pending: number[] = [];
    const flush = () => {
      if (pending.length > 0) out.push({ send: Buffer.from(pending) });
      pending = [];
    };
    for (const byte of chunk) {
      if (this.afterTilde) {
        this.afterTilde = false;
        const key = String.fromCharCode(byte);
        if (key === '.' || key === 'B' || key === '?') {
          flush();
          out.push(key === '.' ? { detach: true } : key === 'B' ? { sendBreak: true } : { help: true });
          if (key === '.') return out;
          continue;
        }
        // `~~` is one `~`; `~` before any other key is sent as typed.
        pending.push(TILDE);
        if (byte !== TILDE) pending.push(byte);
      } else if (this.atLineStart && byte === TILDE) {
        this.afterTilde = true;
        continue;
      } else {
        pending.push(byte);
      }
      this.atLineStart = byte === 0x0d || byte === 0x0a;
    }
    flush();
    return out;
  }
}

/** Opens the WebSocket; a refusal (401, 403, 404, 409: no console capture) rejects with the API's reason. */
function openConsole(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // wss: through https's global agent, which carries the CA certificates --ca adds (ws alone would connect without them).
    const agent = url.startsWith('wss:') ? https.globalAgent : undefined;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 20_000, agent });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let reason = `HTTP ${res.statusCode}`;
        try {
          reason = (JSON.parse(text) as { reason?: string }).reason ?? reason;
        } catch {
          // Not the API's envelope: the status says it.
        }
        reject(new ApiError(res.statusCode ?? 0, reason));
      });
    });
    ws.once('error', (err) => reject(new Error(`Cannot open the console at ${url}: ${err.message}`)));
  });
}

export function registerConsoleCommand(program: Command): void {
  clientCommand(program.command('console <node>').description("attach to a node's serial console (detach with ~. after a newline; ~? lists the escapes)"))
    .action(async (node: string, options: ClientOptions) => {
      const session = await sessionFor(options);
      const client = await session.fresh();
      const url = `${client.base.replace(/^http/, 'ws')}/node/${seg(node)}/console`;
      const ws = await openConsole(url, client.token);
      const stdin = process.stdin;
      const raw = stdin.isTTY === true;
      if (raw) stdin.setRawMode(true);
      process.stderr.write(`[attached to ${node}; ~. to detach, ~? for help]\n`);
      const escapes = new EscapeReader();
      let detached = false;
      const ended = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) process.stdout.write(data);
        else {
          // Control replies (text): what became of a BREAK.
          const reply = JSON.parse(data.toString()) as { type: string; ok: boolean; reason?: string };
          process.stderr.write(`\n[${reply.type}: ${reply.ok ? 'sent' : `refused: ${reply.reason}`}]\n`);
        }
      });
      const onInput = (chunk: Buffer) => {
        for (const input of escapes.read(chunk)) {
          if ('send' in input) ws.send(input.send, { binary: true });
          else if ('sendBreak' in input) ws.send(JSON.stringify({ type: 'break' }), { binary: false });
          else if ('help' in input) process.stderr.write(`\n${ESCAPE_HELP}\n`);
          else {
            detached = true;
            ws.close(1000, 'detached');
          }
        }
      };
      stdin.on('data', onInput);
      // Input that ends (a pipe) leaves the console attached, as ssh -T does: output keeps coming until ~. or the head closes.
      stdin.resume();
      const { code, reason } = await ended;
      stdin.off('data', onInput);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      if (detached) {
        process.stderr.write(`\n[detached from ${node}]\n`);
        return;
      }
      process.stderr.write(`\n[console closed by the head: ${code}${reason ? ` ${reason}` : ''}]\n`);
      process.exitCode = 1;
    });
}
