// A reply that is raw bytes, not the JSON envelope: a stored file (kernel, image content, ISO, a
// chunk) or a small generated text (a kickstart, a manifest). Handlers return one; the HTTP server
// sends it with Range, conditional requests and backpressure (src/boot/send-file.ts).
import { createHash } from 'node:crypto';
import type { FileReader } from '../store/chunks.js';
import type { FileFacts } from './ranges.js';

/** Bytes of a reply, read in slices on demand. */
export interface ReplyContent extends FileFacts {
  /**
   * The bytes of [start, end) in order. Unless `stable`, a slice is valid only until the next
   * slice is pulled or any other LMDB read happens (docs/chunk-store.md).
   */
  slices(start: number, end: number): Iterable<Buffer>;
  /** Slices stay valid indefinitely (no copy needed to keep an unsent remainder). */
  readonly stable: boolean;
  /** Release what the content holds (e.g. a reader's chunk pins); called exactly once. */
  close(): void;
}

export class FileReply {
  constructor(
    readonly content: ReplyContent,
    /** Content-Type, Cache-Control, Content-Disposition… sent with every status. */
    readonly headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' },
  ) {}
}

/** A stored file, as one reader opened it: its chunks stay pinned until the reply is done. */
class StoredContent implements ReplyContent {
  readonly size: number;
  readonly sha256: string;
  readonly mtime: number;
  readonly stable = false;

  constructor(private readonly reader: FileReader) {
    ({ size: this.size, sha256: this.sha256, mtime: this.mtime } = reader.manifest);
  }

  slices(start: number, end: number): Iterable<Buffer> {
    return this.reader.slices(start, end);
  }

  close(): void {
    this.reader.close();
  }
}

export function storedContent(reader: FileReader): ReplyContent {
  return new StoredContent(reader);
}

/** Bytes already in memory (a rendered text, one chunk read with its own buffer). */
export function bufferContent(bytes: Buffer, mtime: number, sha256 = createHash('sha256').update(bytes).digest('hex')): ReplyContent {
  return { size: bytes.length, sha256, mtime, stable: true, slices: (start, end) => [bytes.subarray(start, end)], close: () => {} };
}

export function textReply(text: string, contentType = 'text/plain; charset=utf-8', mtime = Date.now() / 1000): FileReply {
  return new FileReply(bufferContent(Buffer.from(text, 'utf8'), mtime), { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
}
