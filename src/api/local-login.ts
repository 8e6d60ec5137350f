// Local-socket login (spec 001, "Alternate Authentication Methods"): a Unix socket in the data
// directory, mode 0600, so only the user keel runs as (and root) can connect. A client writes one
// JSON line `{"user": "<admin>"}` and reads back `{"secret": "…"}`, a one-time secret that
// POST /login accepts as `{user, secret}` within SECRET_TTL_MS.
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { Logger } from 'pino';

/** The socket's file name in the data directory (`keel serve` listens; `keel init` checks for a running keel). */
export const LOCAL_LOGIN_SOCKET = 'login.sock';

const SECRET_TTL_MS = 60_000;
const MAX_LINE = 1024;

export class LocalLogin {
  private readonly secrets = new Map<string, { user: string; expires: number }>();
  private server?: Server;

  constructor(
    private readonly clock: () => number,
    private readonly log: Logger,
  ) {}

  /** A new one-time secret for `user`. */
  issue(user: string): string {
    const now = this.clock();
    for (const [secret, entry] of this.secrets) if (entry.expires <= now) this.secrets.delete(secret);
    const secret = randomBytes(24).toString('base64url');
    this.secrets.set(secret, { user, expires: now + SECRET_TTL_MS });
    return secret;
  }

  /** Consume a secret: true when it was issued for `user` and has not expired. */
  redeem(secret: string, user: string): boolean {
    const entry = this.secrets.get(secret);
    this.secrets.delete(secret);
    return entry !== undefined && entry.user === user && entry.expires > this.clock();
  }

  async listen(path: string): Promise<void> {
    rmSync(path, { force: true });
    const server = createServer((socket) => {
      let buffered = '';
      socket.setTimeout(5000, () => socket.destroy());
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk) => {
        buffered += chunk.toString('utf8');
        if (buffered.length > MAX_LINE) return void socket.end('{"error":"request too long"}\n');
        const newline = buffered.indexOf('\n');
        if (newline < 0) return;
        let user: unknown;
        try {
          user = (JSON.parse(buffered.slice(0, newline)) as { user?: unknown }).user;
        } catch {
          user = undefined;
        }
        if (typeof user !== 'string' || user === '') return void socket.end('{"error":"send {\\"user\\": \\"<name>\\"}"}\n');
        this.log.info({ user }, 'one-time login secret handed out on the local socket');
        socket.end(JSON.stringify({ secret: this.issue(user) }) + '\n');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The data directory is 0700, so nobody else can reach the socket even before the chmod.
      server.listen(path, () => {
        chmodSync(path, 0o600);
        resolve();
      });
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
