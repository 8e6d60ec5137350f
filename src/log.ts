// Structured logs with pino: JSON lines, or pretty-printed when writing to a terminal; the most
// recent lines are also kept in memory for GET /cluster/head/<uid>/log.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { KeelConfig } from './config.js';

const RECENT_LOG_BYTES = 1024 * 1024;

/** The last log lines (JSON), bounded in bytes; oldest dropped first. */
export class RecentLog {
  private readonly lines: string[] = [];
  private bytes = 0;

  constructor(private readonly limit = RECENT_LOG_BYTES) {}

  /** pino destination: one JSON line per call. */
  write(line: string): void {
    const text = line.endsWith('\n') ? line.slice(0, -1) : line;
    this.lines.push(text);
    this.bytes += text.length;
    while (this.bytes > this.limit && this.lines.length > 1) this.bytes -= this.lines.shift()!.length;
  }

  /** The last `count` entries, oldest first. */
  tail(count: number): unknown[] {
    return this.lines.slice(-count).map((line) => JSON.parse(line) as unknown);
  }
}

export function createLogger(config: KeelConfig['log'], recent: RecentLog): Logger {
  const usePretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true);
  // pino-pretty as a stream in this thread (not a transport worker): works inside the single binary.
  const out = usePretty ? pretty({ colorize: true, destination: 1 }) : pino.destination(1);
  return pino({ level: config.level }, pino.multistream([{ stream: out, level: config.level }, { stream: recent, level: config.level }]));
}
