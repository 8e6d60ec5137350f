// What the boot routes (/boot) are handed: the model, where the head listens (for the URLs in
// scripts), the log, and where they report what they served (the boot timelines and /metrics).
// Made by the composition root (src/serve.ts).
import type { Logger } from 'pino';
import type { KeelConfig } from '../config.js';
import type { Route } from '../http/route.js';
import type { Model } from '../model/model.js';
import type { ServedReply } from './timeline.js';

/** What the /boot routes report (docs/boot-timeline.md); src/serve.ts hands it to the timelines and the metrics. */
export interface BootPathEvents {
  /** Epoch ms, the clock of the timelines. */
  now(): number;
  /** A /boot reply is done: sent whole, cut short by the client, or refused. */
  served(reply: ServedReply): void;
  /** The iPXE script of `mac` went to `from`; `problem` when it was a retry script. */
  scriptServed(mac: string, from: string, problem: string | undefined): void;
}

export interface BootContext {
  model: Model;
  config: KeelConfig;
  log: Logger;
  bootPath: BootPathEvents;
}

/** A boot route: public, no body. */
export type BootRoute = Route<BootContext, never, never>;
