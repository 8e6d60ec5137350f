// Git's smart HTTP protocol, served by git itself: `git http-backend` run as a CGI per request
// (what git's own documentation sets up behind Apache or nginx). It speaks both protocol versions,
// inflates gzipped requests and runs upload-pack / receive-pack; keel decides who may call it and
// carries the bytes. Request and response bodies stream through pipes with backpressure, so a push
// or clone of any size holds only what the pipes and sockets hold.
import { spawn } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { gitEnvironment, killGroup } from './run.js';

/** The three paths of the smart protocol under a repository's URL. */
export const GIT_HTTP_PATHS = ['info/refs', 'git-upload-pack', 'git-receive-pack'] as const;
export type GitHttpPath = (typeof GIT_HTTP_PATHS)[number];

export interface GitHttpRequest {
  method: 'GET' | 'POST';
  path: GitHttpPath;
  /** `service=git-upload-pack` for info/refs. */
  query: string;
  /** Lower-case request headers. */
  headers: Readonly<Record<string, string>>;
  /** Who pushes (receive-pack refuses anonymous pushes); undefined for anonymous fetches. */
  remoteUser?: string;
  remoteAddress: string;
  body?: AsyncIterable<Buffer>;
}

export interface GitHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: AsyncIterable<Buffer>;
  /** Kill git (the client went away). */
  cancel(): void;
}

/** Headers of git's CGI reply that keel passes on; the length is the transport's business. */
const PASSED_HEADERS = new Set(['content-type', 'cache-control', 'expires', 'pragma']);
/** git's CGI headers are a few hundred bytes; more means something else is talking. */
const MAX_HEADER_BYTES = 16_384;

/** Run `git http-backend` for one request on bare repository `repoDir`; resolves once git has sent its headers. */
export async function gitHttpBackend(repoDir: string, request: GitHttpRequest, timeoutMs = 3_600_000): Promise<GitHttpResponse> {
  const env: Record<string, string> = {
    GIT_PROJECT_ROOT: dirname(repoDir),
    PATH_INFO: `/${basename(repoDir)}/${request.path}`,
    REQUEST_METHOD: request.method,
    QUERY_STRING: request.query,
    CONTENT_TYPE: request.headers['content-type'] ?? '',
    REMOTE_ADDR: request.remoteAddress,
    // keel has already decided who may read this repository.
    GIT_HTTP_EXPORT_ALL: '1',
  };
  if (request.remoteUser !== undefined) env.REMOTE_USER = request.remoteUser;
  if (request.headers['content-length'] !== undefined) env.CONTENT_LENGTH = request.headers['content-length'];
  if (request.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = request.headers['content-encoding'];
  if (request.headers['git-protocol'] !== undefined) env.GIT_PROTOCOL = request.headers['git-protocol'];
  // A process group of its own: upload-pack and pack-objects run under http-backend, and killing
  // only http-backend would leave them blocked on a pipe nobody reads.
  const child = spawn('git', ['http-backend'], { env: gitEnvironment(env), stdio: [request.body ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
  const cancel = () => {
    if (child.exitCode === null && child.signalCode === null) killGroup(child.pid);
    child.stdout?.destroy();
  };
  const timer = setTimeout(cancel, timeoutMs);
  timer.unref();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => {
    clearTimeout(timer);
    resolve();
  }));
  child.on('error', cancel);
  if (request.body) void feed(request.body, child.stdin!, cancel);
  const output = child.stdout![Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let end = -1;
  while (end < 0) {
    const next = await output.next();
    if (next.done) {
      await exited;
      throw new Error(`git http-backend ended without a reply: ${stderr.trim() || 'no message'}`);
    }
    head = Buffer.concat([head, next.value]);
    end = head.indexOf('\r\n\r\n');
    if (end < 0 && head.length > MAX_HEADER_BYTES) {
      cancel();
      throw new Error('git http-backend sent no end of headers');
    }
  }
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'status') status = Number.parseInt(value, 10) || 500;
    else if (PASSED_HEADERS.has(key)) headers[key] = value;
  }
  const rest = head.subarray(end + 4);
  return { status, headers, body: remainder(rest, output), cancel };
}

async function* remainder(first: Buffer, output: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (first.length > 0) yield first;
  for (;;) {
    const next = await output.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Copy the request body into git's stdin, waiting for the pipe to drain; a client abort kills git. */
async function feed(body: AsyncIterable<Buffer>, stdin: NodeJS.WritableStream & { destroyed?: boolean }, cancel: () => void): Promise<void> {
  stdin.on('error', () => {}); // git may exit before reading everything (a refusal): not an error of keel's
  try {
    for await (const piece of body) {
      if (stdin.destroyed) return;
      if (!stdin.write(piece)) await new Promise<void>((resolve) => {
        const resume = () => {
          stdin.removeListener('drain', resume);
          stdin.removeListener('close', resume);
          resolve();
        };
        stdin.on('drain', resume);
        stdin.on('close', resume);
      });
    }
    stdin.end();
  } catch {
    cancel();
  }
}

