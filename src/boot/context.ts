// What the boot routes (/boot) are handed: the model, where the head listens (for the URLs in
// scripts), the log. Made by the composition root (src/serve.ts).
import type { Logger } from 'pino';
import type { KeelConfig } from '../config.js';
import type { Route } from '../http/route.js';
import type { Model } from '../model/model.js';

export interface BootContext {
  model: Model;
  config: KeelConfig;
  log: Logger;
}

/** A boot route: public, no body. */
export type BootRoute = Route<BootContext, never, never>;
