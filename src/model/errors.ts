// The domain's refusals. Model code throws these and knows nothing of HTTP; src/api/errors.ts maps
// each to a status once, at the edge, and the message becomes the envelope's `reason` as it is.

/** Base of the refusals below; `withPrefix` keeps the kind when a message gains context. */
export abstract class DomainError extends Error {
  /** The same refusal with `prefix` before its message (e.g. `Item 3: ` in a bulk create). */
  withPrefix(prefix: string): DomainError {
    const Kind = this.constructor as new (message: string) => DomainError;
    return new Kind(`${prefix}${this.message}`);
  }
}

/** The object, file or record a request names does not exist. */
export class NotFound extends DomainError {
  override readonly name = 'NotFound';
}

/** The request's values break a rule of the model (a bad field, a dangling reference, a frozen record). */
export class Invalid extends DomainError {
  override readonly name = 'Invalid';
}

/** The change collides with what is stored (a unique name, MAC or address already taken). */
export class Conflict extends DomainError {
  override readonly name = 'Conflict';
}
