// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message framed by a two-byte length. A resolver
// comes here when a UDP answer had TC set; without a TCP listener that retry meets a refused
// connection and the name does not resolve. Queries on one connection are answered in order;
// every connection is bounded in count, idle time, unread input and unsent output.
import { createServer, type Server, type Socket } from 'node:net';

/** Answers one query (the message without its length); undefined closes the connection (malformed input). */
export type TcpAnswer = (request: Buffer, localAddress: string) => Promise<Buffer | undefined>;

export interface DnsTcpLimits {
  /** Connections open at once; more are closed at once. */
  maxConnections: number;
  /** A connection with no complete query for this long is closed (RFC 7766 §6.2.3: seconds, not minutes). */
  idleMs: number;
}

export const DEFAULT_TCP_LIMITS: DnsTcpLimits = { maxConnections: 128, idleMs: 10_000 };
/** Pipelined input not yet answered: two largest messages. */
const MAX_UNREAD_BYTES = 2 * (2 + 0xffff);
/** Answers the client has not read: a client that only sends is cut off here. */
const MAX_UNSENT_BYTES = 4 * (2 + 0xffff);

export class DnsTcpListener {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly listening: Promise<void>;

  constructor(bindAddress: string, port: number, private readonly answer: TcpAnswer, private readonly limits: DnsTcpLimits, private readonly refused: () => void) {
    this.server = createServer((socket) => this.accept(socket));
    this.listening = new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: bindAddress, port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    // Told to whoever awaits ready(); not an unhandled rejection when nobody does.
    this.listening.catch(() => {});
  }

  /** Resolves once listening; rejects when the port cannot be bound (taken, or privileged). */
  ready(): Promise<void> {
    return this.listening;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.sockets.size >= this.limits.maxConnections) {
      this.refused();
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.limits.idleMs, () => socket.destroy());
    socket.setNoDelay(true);
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; keel's own A record wants a.b.c.d.
    const localAddress = (socket.localAddress ?? '').replace(/^::ffff:/, '');
    let unread: Buffer = Buffer.alloc(0);
    let answering = false;
    const answerAll = async () => {
      if (answering) return;
      answering = true;
      try {
        while (unread.length >= 2 && unread.length >= 2 + unread.readUInt16BE(0)) {
          const length = unread.readUInt16BE(0);
          const request = Buffer.from(unread.subarray(2, 2 + length));
          unread = unread.subarray(2 + length);
          const reply = await this.answer(request, localAddress);
          if (socket.destroyed) return;
          if (reply === undefined || socket.writableLength > MAX_UNSENT_BYTES) {
            socket.destroy();
            return;
          }
          const frame = Buffer.allocUnsafe(2 + reply.length);
          frame.writeUInt16BE(reply.length, 0);
          reply.copy(frame, 2);
          socket.write(frame);
        }
      } finally {
        answering = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      unread = unread.length === 0 ? chunk : Buffer.concat([unread, chunk]);
      if (unread.length > MAX_UNREAD_BYTES) {
        socket.destroy();
        return;
      }
      void answerAll();
    });
  }
}
