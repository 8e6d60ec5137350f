// Raw HTTP for content tests: streamed uploads from seeded bytes (never whole in memory), downloads
// as bytes with headers, and an upload the client abandons half-way.
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { seededBytes } from './seeded-bytes.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function rawRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: AsyncIterable<Buffer> | Buffer } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (body === undefined) return req.end();
    if (Buffer.isBuffer(body)) return req.end(body);
    void (async () => {
      try {
        for await (const piece of body) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

/** PUT `size` seeded bytes to `url` with a bearer token; resolves to the parsed JSON reply. */
export async function upload(url: string, token: string, seed: number, size: number, headers: Record<string, string> = {}): Promise<{ status: number; json: { success: boolean; reason?: string; data?: unknown } }> {
  const res = await rawRequest(url, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-length': String(size), 'content-type': 'application/octet-stream', ...headers },
    body: seededBytes(seed, size),
  });
  return { status: res.status, json: JSON.parse(res.body.toString()) };
}

/** Send `sent` of `size` declared bytes, then drop the connection; resolves once it is closed. */
export function abortedUpload(url: string, token: string, seed: number, size: number, sent: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-length': String(size) } });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    void (async () => {
      for await (const piece of seededBytes(seed, sent)) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
      // Give the server time to take in what was sent before the connection goes away.
      await new Promise((r) => setTimeout(r, 200));
      req.destroy();
    })();
  });
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
