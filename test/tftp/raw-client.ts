// A scripted TFTP peer on node:dgram for what real clients cannot send (NUL in a name, a WRQ with
// a chosen mode, an ACK from a stranger's port) and for asserting exact error codes and OACKs.
import { createSocket, type Socket } from 'node:dgram';
import { parseTftp, serializeAck, serializeError, serializeRequest, type TftpOption, type TftpPacket } from '../../src/net/tftp/packets.js';

export interface Reply {
  packet: TftpPacket;
  port: number;
}

export class RawClient {
  private closed = false;
  readonly socket: Socket;
  private readonly queue: Reply[] = [];
  private waiter: ((reply: Reply) => void) | undefined;

  private constructor(socket: Socket, readonly serverPort: number, readonly host: string) {
    this.socket = socket;
    socket.on('message', (data, rinfo) => {
      const parsed = parseTftp(data);
      const reply = { packet: parsed.ok ? parsed.packet : ({ type: 'error', code: -1, message: parsed.reason } as TftpPacket), port: rinfo.port };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(reply);
      } else {
        this.queue.push(reply);
      }
    });
  }

  static async open(serverPort: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return new RawClient(socket, serverPort, host);
  }

  send(data: Buffer, port = this.serverPort): void {
    this.socket.send(data, port, this.host);
  }

  rrq(filename: string, options: TftpOption[] = [], mode = 'octet'): void {
    this.send(serializeRequest({ filename, mode, options }));
  }

  wrq(filename: string): void {
    this.send(serializeRequest({ type: 'wrq', filename, mode: 'octet', options: [] }));
  }

  ack(block: number, port: number): void {
    this.send(serializeAck(block), port);
  }

  error(code: number, message: string, port: number): void {
    this.send(serializeError(code, message), port);
  }

  /** The next datagram from the server, or undefined after `ms`. */
  next(ms = 2000): Promise<Reply | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, ms);
      this.waiter = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
    });
  }

  /** Lock-step download after the first reply (DATA 1, or an OACK to acknowledge): returns the file. */
  async download(first: Reply, blockSize: number): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let expected = 1;
    let reply: Reply | undefined = first;
    if (first.packet.type === 'oack') {
      this.ack(0, first.port);
      reply = await this.next();
    }
    for (;;) {
      if (!reply) throw new Error(`no DATA ${expected}`);
      // A retransmitted OACK (our ACK 0 crossed it): acknowledge again, as a client does.
      if (reply.packet.type === 'oack' && expected === 1) {
        this.ack(0, reply.port);
        reply = await this.next();
        continue;
      }
      if (reply.packet.type !== 'data') throw new Error(`unexpected ${reply.packet.type} waiting for DATA ${expected}`);
      if (reply.packet.block === (expected & 0xffff)) {
        pieces.push(reply.packet.payload);
        this.ack(reply.packet.block, reply.port);
        expected++;
        if (reply.packet.payload.length < blockSize) return Buffer.concat(pieces);
      }
      reply = await this.next();
    }
  }

  /** Closes the socket; again is a no-op (a test may close it early, its teardown again). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
