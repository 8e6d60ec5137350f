// Structured logs with pino: JSON lines, or pretty-printed when writing to a terminal.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { KeelConfig } from './config.js';

export function createLogger(config: KeelConfig['log']): Logger {
  const usePretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true);
  // pino-pretty as a stream in this thread (not a transport worker): works inside the single binary.
  return usePretty ? pino({ level: config.level }, pretty({ colorize: true, destination: 1 })) : pino({ level: config.level });
}
