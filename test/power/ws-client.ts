// A minimal RFC 6455 WebSocket client for the console tests: Node 20 has no WebSocket client that
// can send an Authorization header, and this one also shows the HTTP answer when the server
// refuses the upgrade. Client frames are masked; server frames are read whole (text, binary,
// close, ping).
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';

export interface Refused {
  upgraded: false;
  status: number;
  body: string;
}

export interface WsConnection {
  upgraded: true;
  /** Everything received in data frames so far. */
  received(): Buffer;
  /** Resolves once the received bytes contain `text`; rejects after `timeoutMs`. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  send(data: string | Buffer): void;
  /** Resolves with the close code once the server closed (or the socket ended: 1006). */
  closed: Promise<number>;
  close(): void;
}

function frame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length])
    : length < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 255])
      : (() => {
        const h = Buffer.alloc(10);
        h[0] = 0x80 | opcode;
        h[1] = 0x80 | 127;
        h.writeBigUInt64BE(BigInt(length), 2);
        return h;
      })();
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

export function connectWs(url: string, headers: Record<string, string> = {}): Promise<Refused | WsConnection> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.hostname, port: target.port, path: target.pathname + target.search,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers },
    });
    req.setTimeout(20_000, () => req.destroy(new Error('WebSocket handshake timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ upgraded: false, status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      let pending = head;
      const data: Buffer[] = [];
      const waiters = new Set<() => void>();
      let resolveClosed!: (code: number) => void;
      const closed = new Promise<number>((r) => (resolveClosed = r));
      const parse = () => {
        for (;;) {
          if (pending.length < 2) return;
          const opcode = pending[0]! & 0x0f;
          let length = pending[1]! & 0x7f;
          let offset = 2;
          if (length === 126) {
            if (pending.length < 4) return;
            length = pending.readUInt16BE(2);
            offset = 4;
          } else if (length === 127) {
            if (pending.length < 10) return;
            length = Number(pending.readBigUInt64BE(2));
            offset = 10;
          }
          if (pending.length < offset + length) return;
          const payload = pending.subarray(offset, offset + length);
          pending = pending.subarray(offset + length);
          if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
            data.push(Buffer.from(payload));
            for (const waiter of waiters) waiter();
          } else if (opcode === 0x8) {
            resolveClosed(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
            socket.end();
          } else if (opcode === 0x9) socket.write(frame(0xa, payload));
        }
      };
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        parse();
      });
      socket.on('close', () => resolveClosed(1006));
      socket.on('error', () => undefined);
      parse();
      const received = () => Buffer.concat(data);
      resolve({
        upgraded: true,
        received,
        waitFor: (text, timeoutMs) => new Promise<void>((ok, fail) => {
          const check = () => {
            if (!received().includes(text)) return;
            waiters.delete(check);
            clearTimeout(timer);
            ok();
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            fail(new Error(`WebSocket did not receive ${JSON.stringify(text)} within ${timeoutMs} ms; got ${JSON.stringify(received().toString())}`));
          }, timeoutMs);
          waiters.add(check);
          check();
        }),
        send: (payload) => socket.write(frame(typeof payload === 'string' ? 0x1 : 0x2, Buffer.from(payload))),
        closed,
        close: () => {
          if (!socket.destroyed) socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
        },
      });
    });
    req.end();
  });
}
