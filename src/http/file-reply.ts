// A reply that is raw bytes, not the JSON envelope: a stored file (kernel, image content, ISO, a
// chunk) or a small generated text (a kickstart, a manifest). Handlers return one; the HTTP server
// sends it with Range, conditional requests and backpressure (send-file.ts).
import { createHash } from 'node:crypto';
import type { FileFacts } from './ranges.js';

/** Bytes of a reply, read piece by piece on demand. */
export interface ReplyContent extends FileFacts {
  /**
   * Bytes from `start` (< end) up to `end` or the end of the stored piece holding `start` (a chunk),
   * whichever comes first; never empty. Unless `stable`, the piece is valid only in the current
   * synchronous run (docs/chunk-store.md). One call per piece, no iterator: the boot path asks for
   * one piece per 64 KiB range request.
   */
  piece(start: number, end: number): Buffer;
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

/**
 * What a stored file's reader offers (the chunk store's FileReader is one): described here, so that
 * the HTTP layer needs nothing from the store.
 */
export interface PieceReader {
  readonly manifest: FileFacts;
  piece(start: number, end: number): Buffer;
  close(): void;
}

/** A stored file, as one reader opened it: its chunks stay pinned until the reply is done. */
class StoredContent implements ReplyContent {
  readonly size: number;
  readonly sha256: string;
  readonly mtime: number;
  readonly stable = false;

  constructor(private readonly reader: PieceReader) {
    ({ size: this.size, sha256: this.sha256, mtime: this.mtime } = reader.manifest);
  }

  piece(start: number, end: number): Buffer {
    return this.reader.piece(start, end);
  }

  close(): void {
    this.reader.close();
  }
}

export function storedContent(reader: PieceReader): ReplyContent {
  return new StoredContent(reader);
}

/** Bytes already in memory (a rendered text, one chunk read with its own buffer). */
export function bufferContent(bytes: Buffer, mtime: number, sha256 = createHash('sha256').update(bytes).digest('hex')): ReplyContent {
  return { size: bytes.length, sha256, mtime, stable: true, piece: (start, end) => bytes.subarray(start, end), close: () => {} };
}

export function textReply(text: string, contentType = 'text/plain; charset=utf-8', mtime = Date.now() / 1000): FileReply {
  return new FileReply(bufferContent(Buffer.from(text, 'utf8'), mtime), { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
}
