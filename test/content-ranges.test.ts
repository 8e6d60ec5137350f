// The response plan for GET/HEAD of a stored file (RFC 9110 ranges and conditionals), without sockets.
import test from 'ava';
import { parseRange, planFileResponse } from '../src/http/ranges.js';

const file = { size: 1000, sha256: 'ab'.repeat(32), mtime: 1_700_000_000 };
const etag = `"${file.sha256}"`;
/** The plan, with its header lines as a record (one `Name: value` per CRLF-separated line). */
const plan = (headers: Record<string, string>) => {
  const planned = planFileResponse(file, headers, { 'Content-Type': 'application/octet-stream' });
  const lines = planned.headerLines.split('\r\n').map((line) => /^([^:\r\n]+): ([^\r\n]*)$/.exec(line));
  if (lines.some((match) => match === null)) throw new Error(`malformed header lines: ${JSON.stringify(planned.headerLines)}`);
  return { ...planned, headers: Object.fromEntries(lines.map((match) => [match![1]!, match![2]!])) };
};

test('single ranges: first byte, last byte, suffixes, open ends, clamping', (t) => {
  t.deepEqual(parseRange('bytes=0-0', 1000), { start: 0, end: 1 });
  t.deepEqual(parseRange('bytes=999-999', 1000), { start: 999, end: 1000 });
  t.deepEqual(parseRange('bytes=999-', 1000), { start: 999, end: 1000 });
  t.deepEqual(parseRange('bytes=-1', 1000), { start: 999, end: 1000 });
  t.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 1000 }, 'a suffix longer than the file is the whole file');
  t.deepEqual(parseRange('bytes=500-5000', 1000), { start: 500, end: 1000 }, 'last-pos past the end is clamped');
  t.deepEqual(parseRange('BYTES = 1 - 2', 1000), { start: 1, end: 3 });
});

test('unsatisfiable and ignored ranges', (t) => {
  t.is(parseRange('bytes=1000-', 1000), 'unsatisfiable');
  t.is(parseRange('bytes=1000-2000', 1000), 'unsatisfiable');
  t.is(parseRange('bytes=-0', 1000), 'unsatisfiable');
  t.is(parseRange('bytes=0-', 0), 'unsatisfiable');
  for (const malformed of ['bytes=5-2', 'bytes=-', 'bytes=a-b', 'items=0-1', 'bytes=0-1,5-6', 'bytes 0-1', '', 'bytes=99999999999999999999-'])
    t.is(parseRange(malformed, 1000), undefined, malformed);
});

test('plans: 200, 206 with Content-Range, 416 with bytes */size, malformed → 200', (t) => {
  t.like(plan({}), { status: 200, start: 0, end: 1000 });
  t.deepEqual(plan({}).headers, { 'Content-Type': 'application/octet-stream', ETag: etag, 'Last-Modified': 'Tue, 14 Nov 2023 22:13:20 GMT', 'Accept-Ranges': 'bytes' });
  const partial = plan({ range: 'bytes=10-19' });
  t.like(partial, { status: 206, start: 10, end: 20 });
  t.is(partial.headers['Content-Range'], 'bytes 10-19/1000');
  t.is(partial.headers.ETag, etag);
  const past = plan({ range: 'bytes=1000-' });
  t.is(past.status, 416);
  t.is(past.headers['Content-Range'], 'bytes */1000');
  t.like(plan({ range: 'bytes=oops' }), { status: 200, start: 0, end: 1000 });
});

test('conditionals: If-None-Match → 304, If-Range current → 206, stale → 200', (t) => {
  t.is(plan({ 'if-none-match': etag }).status, 304);
  t.is(plan({ 'if-none-match': `"other", W/${etag}` }).status, 304);
  t.is(plan({ 'if-none-match': '*' }).status, 304);
  t.is(plan({ 'if-none-match': '"other"' }).status, 200);
  t.is(plan({ range: 'bytes=0-9', 'if-range': etag }).status, 206);
  t.is(plan({ range: 'bytes=0-9', 'if-range': '"stale"' }).status, 200);
  t.is(plan({ range: 'bytes=0-9', 'if-range': `W/${etag}` }).status, 200, 'If-Range needs a strong match');
  const lastModified = plan({}).headers['Last-Modified']!;
  t.is(plan({ range: 'bytes=0-9', 'if-range': lastModified }).status, 206);
  t.is(plan({ range: 'bytes=0-9', 'if-range': 'Mon, 01 Jan 2001 00:00:00 GMT' }).status, 200);
});
