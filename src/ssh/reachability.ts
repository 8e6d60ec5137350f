// The background re-check of localnodes' `pingable` (spec 004): every interval, a TCP connection
// to each localnode's SSH port (what PUT /localnodes/<id>/script needs; an ICMP echo would need
// raw sockets), at most PROBE_CONCURRENCY at a time, each bounded by a timeout. A record is written
// only when the answer changes. Made, started and closed by src/serve.ts. docs/registries.md.
import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { ObjectStore } from '../model/object-store.js';

export const PROBE_INTERVAL_MS = 60_000;
export const PROBE_TIMEOUT_MS = 3_000;
const PROBE_CONCURRENCY = 16;
/** The actor the changes are recorded under (`last_modified_by`). */
const ACTOR = 'keel';

/** Whether a TCP connection to host:port opens within `timeoutMs`. */
export function tcpReachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reachable: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reachable);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class LocalnodeProbe {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly localnodes: ObjectStore,
    private readonly log: Logger,
    private readonly options: { intervalMs: number; timeoutMs: number } = { intervalMs: PROBE_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      // One round at a time: a slow round delays the next instead of piling up.
      this.running ??= this.probeAll().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Check every localnode once; resolves when all are checked and changes written. */
  async probeAll(): Promise<void> {
    const queue = this.localnodes.collection.list();
    const worker = async () => {
      for (let record = queue.shift(); record && !this.closed; record = queue.shift()) {
        const reachable = await tcpReachable(record.ip as string, (record.ssh_port as number | undefined) ?? 22, this.options.timeoutMs);
        if (reachable === record.pingable || this.closed) continue;
        try {
          // The record as it is now: it may have changed (or gone) while the probe ran.
          await this.localnodes.modify(ACTOR, record.uid, (current) => ({ ...current, pingable: reachable }));
          this.log.info({ localnode: record.name, ip: record.ip, pingable: reachable }, 'localnode reachability changed');
        } catch (err) {
          this.log.debug({ err, localnode: record.uid }, 'localnode reachability not recorded');
        }
      }
    };
    await Promise.all(Array.from({ length: PROBE_CONCURRENCY }, worker));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
