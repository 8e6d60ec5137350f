// What to send for a GET/HEAD of a stored file, decided from the request headers alone (RFC 9110):
// conditional requests on the ETag (If-None-Match → 304, If-Range), and one byte range (206, or
// 416 when it cannot be satisfied). Pure, so every edge case is unit-tested without sockets.

/** The facts of a stored file that its response depends on. */
export interface FileFacts {
  size: number;
  /** Hex sha256 of the whole file: the strong ETag. */
  sha256: string;
  /** Epoch seconds, for Last-Modified. */
  mtime: number;
}

export interface FilePlan {
  status: 200 | 206 | 304 | 416;
  /** Byte range [start, end) to send; empty for 304/416. */
  start: number;
  end: number;
  /**
   * The response's headers as `Name: value` lines joined by CRLF (no final CRLF): the sender hands
   * status line and headers to uWS in one call (see send-file.ts), so they are built as one string.
   */
  headerLines: string;
}

export const etagOf = (sha256: string): string => `"${sha256}"`;

/**
 * One range of `bytes=…` against a file of `size` bytes: [start, end) if satisfiable, 'unsatisfiable'
 * for a valid range outside the file, undefined for a header to ignore (malformed, another unit, or
 * several ranges — RFC 9110 §14.2 lets a server ignore Range and answer 200 with the whole file).
 */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // Suffix range: the last N bytes. bytes=-0 asks for nothing, which no file can satisfy.
    const length = Number(last);
    if (!Number.isSafeInteger(length)) return undefined;
    if (length === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size };
  }
  const start = Number(first);
  const lastPos = last === '' ? Infinity : Number(last);
  if (!Number.isSafeInteger(start) || (last !== '' && !Number.isSafeInteger(lastPos))) return undefined;
  if (lastPos < start) return undefined; // invalid per RFC 9110 §14.1.1: ignore the header
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(size, lastPos + 1) };
}

/** Whether an If-None-Match / If-Range entity-tag list names `etag` (weak comparison for If-None-Match). */
function etagListMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((item) => item.trim().replace(/^W\//, '') === etag);
}

/** The last date formatted: every response carries its file's Last-Modified, and formatting costs. */
let lastDate = { seconds: NaN, text: '' };

function httpDate(epochSeconds: number): string {
  const seconds = Math.floor(epochSeconds);
  if (seconds !== lastDate.seconds) lastDate = { seconds, text: new Date(seconds * 1000).toUTCString() };
  return lastDate.text;
}

/**
 * The response to GET/HEAD of `file` given the request's (lower-case) headers. `extra` headers
 * (content type, cache policy) go on every status.
 */
export function planFileResponse(file: FileFacts, headers: Readonly<Record<string, string>>, extra: Record<string, string> = {}): FilePlan {
  const etag = etagOf(file.sha256);
  const lastModified = httpDate(file.mtime);
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, etag)) return { status: 304, start: 0, end: 0, headerLines: fileHeaderLines(extra, etag, lastModified) };
  const range = headers.range;
  if (range === undefined) return { status: 200, start: 0, end: file.size, headerLines: fileHeaderLines(extra, etag, lastModified) };
  // If-Range: the range applies only to this exact version (strong ETag, or its Last-Modified date).
  const ifRange = headers['if-range'];
  const parsed = ifRange !== undefined && !ifRangeCurrent(ifRange, etag, lastModified) ? undefined : parseRange(range, file.size);
  if (parsed === undefined) return { status: 200, start: 0, end: file.size, headerLines: fileHeaderLines(extra, etag, lastModified) };
  if (parsed === 'unsatisfiable') return { status: 416, start: 0, end: 0, headerLines: fileHeaderLines(extra, etag, lastModified, `bytes */${file.size}`) };
  return { status: 206, start: parsed.start, end: parsed.end, headerLines: fileHeaderLines(extra, etag, lastModified, `bytes ${parsed.start}-${parsed.end - 1}/${file.size}`) };
}

function ifRangeCurrent(ifRange: string, etag: string, lastModified: string): boolean {
  const value = ifRange.trim();
  return value.startsWith('"') || value.startsWith('W/') ? value === etag : value === lastModified;
}

/** `extra`, then the file's own headers, as CRLF-joined lines. */
function fileHeaderLines(extra: Record<string, string>, etag: string, lastModified: string, contentRange?: string): string {
  let lines = '';
  for (const key in extra) lines += `${key}: ${extra[key]!}\r\n`;
  lines += `ETag: ${etag}\r\nLast-Modified: ${lastModified}\r\nAccept-Ranges: bytes`;
  if (contentRange !== undefined) lines += `\r\nContent-Range: ${contentRange}`;
  return lines;
}
