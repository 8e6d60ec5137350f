// The CLI's client of a running keel's REST API (`keel image import`, `keel bootconfig create`):
// where the API is, logging in with a password, JSON calls, and file uploads streamed from disk
// with a progress bar (bytes, rate, ETA) on a terminal and plain progress lines otherwise.
import { SingleBar } from 'cli-progress';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import https, { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, setGlobalDispatcher } from 'undici';
import type { KeelConfig } from '../config.js';
import { pemCertificates } from '../http/tls.js';

/** Environment variable the CLI reads the password from (else stdin when it is not a terminal). */
export const PASSWORD_ENV = 'KEEL_PASSWORD';

/** Environment variable naming a PEM file of CA certificates the CLI trusts for https:// heads (as `--ca` does). */
export const CA_ENV = 'KEEL_CA';

/**
 * Trust the CA certificates in the PEM file `file` (a head's GET /cluster/cabundle `pem`, or its
 * <data-dir>/tls/ca.pem) for https:// heads, besides the system's, for the rest of this process: a
 * command talks to one head. Both ways the client reaches a head get them: fetch (Node's fetch is
 * undici, whose global dispatcher this replaces) and node:https (uploads, its global agent).
 */
export function trustCaFile(file: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--ca ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const certificates = pemCertificates(text);
  if (certificates.length === 0) throw new Error(`--ca ${file}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  const ca = [...rootCertificates, ...certificates];
  setGlobalDispatcher(new Agent({ connect: { ca } }));
  https.globalAgent = new https.Agent({ ca });
}

/** A refusal from the API: its status and reason. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, reason: string) {
    super(reason);
  }
}

/** The API's base URL: `--url` (with or without /api/v1), else this host's keel as configured. */
export function apiBase(config: KeelConfig, url: string | undefined): string {
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`--url ${url}: not a URL (e.g. http://boot1:8080)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`--url ${url}: must be http:// or https://`);
    return parsed.href.replace(/\/+$/, '').replace(/(\/api\/v1)?$/, '/api/v1');
  }
  const bind = config.server.bind;
  const host = bind === '0.0.0.0' || bind === '::' ? 'localhost' : bind.includes(':') ? `[${bind}]` : bind;
  return `http://${host}:${config.http.port}/api/v1`;
}

/** The password: $KEEL_PASSWORD, else the first line of stdin when it is not a terminal. */
export async function readLoginPassword(): Promise<string> {
  const fromEnv = process.env[PASSWORD_ENV];
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const password = Buffer.concat(chunks).toString('utf8').split('\n')[0]!;
    if (password) return password;
  }
  throw new Error(`No password: set ${PASSWORD_ENV} or pipe it on stdin`);
}

interface Envelope {
  success: boolean;
  data?: unknown;
  reason?: string;
}

function unwrap(status: number, text: string): unknown {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(text) as Envelope;
  } catch {
    throw new ApiError(status, `HTTP ${status}: not a keel API answer (${JSON.stringify(text.slice(0, 100))})`);
  }
  if (!envelope.success || status >= 400) throw new ApiError(status, envelope.reason ?? `HTTP ${status}`);
  return envelope.data;
}

/** An authenticated session with one keel API. */
export class ApiClient {
  /** `refreshToken` is kept from a login, for a caller that stores the session (src/cli/session.ts). */
  constructor(readonly base: string, readonly token: string, readonly refreshToken?: string) {}

  static async login(base: string, user: string, password: string): Promise<ApiClient> {
    const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, pass: password }) })
      .catch((err: unknown) => {
        throw new Error(`Cannot reach keel at ${base}: ${(err as { cause?: Error }).cause?.message ?? String(err)}`);
      });
    const data = unwrap(res.status, await res.text()) as { token: { access_token: string; refresh_token: string } };
    return new ApiClient(base, data.token.access_token, data.token.refresh_token);
  }

  /** A JSON call; resolves to the envelope's data, throws ApiError with the reason on a refusal. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return unwrap(res.status, await res.text());
  }

  /**
   * PUT a file as the raw request body (the API's file upload: GET/PUT /<class>/<id>/<slot>),
   * streamed from disk with backpressure, reporting progress as bytes leave. The file's mtime goes
   * along (?mtime=). Resolves to the API's data (size, mtime, chksum).
   */
  async upload(path: string, file: string, progress: Progress): Promise<unknown> {
    const { size, mtimeMs } = statSync(file);
    const url = new URL(`${this.base}${path}?mtime=${mtimeMs / 1000}`);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    progress.start(basename(file), size);
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        progress.update(sent);
        done(null, chunk);
      },
    });
    // A refusal can come before the whole body is sent (e.g. a frozen image): then the send fails
    // too, and the answer is what to report.
    const sending = pipeline(createReadStream(file), counter, req);
    let res: IncomingMessage;
    try {
      res = await answered;
    } catch (err) {
      await sending.catch(() => {});
      progress.stop();
      throw new Error(`Upload of ${file} to ${url.origin} failed: ${(err as Error).message}`);
    }
    await sending.catch(() => {});
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    progress.stop();
    return unwrap(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
  }
}

/** What an upload reports to: a bar on a terminal, lines otherwise. */
export interface Progress {
  start(label: string, total: number): void;
  update(done: number): void;
  stop(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** 75 → "1m15s"; 3725 → "1h02m". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A cli-progress bar on `stream` (stderr: stdout carries results). On a terminal it redraws in
 * place; otherwise (a pipe, a log) it writes a plain line every `lineEveryMs` and one at the end.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, lineEveryMs = 1000): Progress {
  const tty = stream.isTTY === true;
  const bar = new SingleBar({
    stream,
    format: tty
      ? '{label} [{bar}] {percentage}% {done}/{size} {rate}/s ETA {eta}'
      : '{label}: {done} of {size} ({percentage}%), {rate}/s, ETA {eta}',
    barsize: 30,
    hideCursor: tty,
    noTTYOutput: true,
    notTTYSchedule: lineEveryMs,
    barCompleteChar: '#',
    barIncompleteChar: '-',
  });
  let started = 0;
  let size = 0;
  // Rate and ETA over the whole upload so far: a steady figure, not one that jumps with each chunk.
  const payload = (done: number) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    return { done: formatBytes(done), rate: formatBytes(Math.round(rate)), eta: rate > 0 ? formatDuration((size - done) / rate) : '?' };
  };
  return {
    start(label, total) {
      started = Date.now();
      size = total;
      bar.start(total, 0, { label, size: formatBytes(total), ...payload(0) });
    },
    update(done) {
      bar.update(done, payload(done));
    },
    stop() {
      bar.stop();
    },
  };
}
