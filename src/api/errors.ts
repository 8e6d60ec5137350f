// Domain errors as HTTP, decided once: the server answers a DomainError (src/model/errors.ts) with
// the status below and its message as the envelope's `reason`. Duplicates answer 400, not 409, as
// the spec's own examples do ("Admin with name=x already exists.").
import type { ErrorStatus } from '../http/errors.js';
import { Conflict, Invalid, NotFound } from '../model/errors.js';
import { StoreOutOfSpace } from '../store/errors.js';

export const DOMAIN_ERROR_STATUSES: readonly ErrorStatus[] = [
  [NotFound, 404],
  [Invalid, 400],
  [Conflict, 400],
  // A full data directory refuses the write, not the request: the client may retry once space is freed.
  [StoreOutOfSpace, 507],
];
