// The client-facing error types: each carries its HTTP status and the `reason` of the envelope.
// Errors of the layers below (which know no HTTP) become one through a table of error classes and
// statuses that the composition root hands each mount (src/api/errors.ts builds it).
import { STATUS_CODES } from 'node:http';

/** The status line uWS's writeStatus takes, e.g. `502 Bad Gateway`, for any code. */
export function statusLine(status: number): string {
  const text = STATUS_CODES[status];
  return text ? `${status} ${text}` : String(status);
}
export class HttpError extends Error {
  constructor(
    readonly status: number,
    reason: string,
    /** Extra response headers, e.g. `Allow` for 405. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(reason);
  }
}

export const badRequest = (reason: string) => new HttpError(400, reason);
export const unauthorized = (reason: string) => new HttpError(401, reason);
export const forbidden = (reason: string) => new HttpError(403, reason);
export const notFound = (reason: string) => new HttpError(404, reason);
export const methodNotAllowed = (allowed: string[]) =>
  new HttpError(405, `Method not allowed; this path accepts ${allowed.join(', ')}`, { Allow: allowed.join(', ') });
export const payloadTooLarge = (limit: number) => new HttpError(413, `Request body exceeds the limit of ${limit} bytes`);
export const unsupportedMediaType = (type: string) =>
  new HttpError(415, `Unsupported Content-Type ${type}; send JSON (application/json)`);
export const notImplemented = (reason: string) => new HttpError(501, reason);

/** An error class and the status its instances answer with; the message becomes the reason. */
export type ErrorStatus = readonly [kind: abstract new (...args: never[]) => Error, status: number];

/** `err` as an HttpError: itself, or per the first entry of `statuses` it is an instance of. */
export function toHttpError(err: unknown, statuses: readonly ErrorStatus[]): HttpError | undefined {
  if (err instanceof HttpError) return err;
  for (const [kind, status] of statuses) if (err instanceof kind) return new HttpError(status, err.message);
  return undefined;
}
