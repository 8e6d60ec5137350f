// Where the TFTP server's files come from: the content store (files published for TFTP) and a root
// directory on disk. The server asks a TftpFileSource by file name; a source answers with a size
// and a synchronous block reader, or with why not (ERROR 1 / 2). Sources are asked in order by
// CompositeSource.
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync, realpathSync, type Stats } from 'node:fs';
import { TFTP_FILE_PREFIX } from '../../model/files.js';
import type { ChunkStore } from '../../store/chunks.js';

export interface TftpFile {
  size: number;
  /** `length` bytes at `offset` (synchronous); the buffer is used only until the next call. */
  readBlock(offset: number, length: number): Buffer;
  /**
   * Optional: copies `length` bytes at `offset` into `target` at `targetOffset`, returns the
   * number copied (fewer only past the end). The server then reads straight into its DATA packets.
   */
  readInto?(target: Buffer, targetOffset: number, offset: number, length: number): number;
  /**
   * Optional: the bytes from `offset` on that the source holds in memory anyway (a cached chunk),
   * at least `length` where it can (not past the end of the file, nor of a chunk); possibly fewer.
   * Valid until the next call of any read method of this file. The server's send pump sends DATA
   * straight from it.
   */
  bytesAt?(offset: number, length: number): Buffer;
  /**
   * Optional: the open file descriptor of a regular file holding the bytes (valid until close()),
   * which the server's send pump maps and sends from (bytesAt is then not asked).
   */
  fd?: number;
  /**
   * Optional, for files that can change in place (a root directory's): false if the file's size or
   * modification time differ from when it was opened.
   */
  unchanged?(): boolean;
  /** Called exactly once when the transfer ends (or is never started). */
  close(): void;
}

export type TftpOpenError = { error: 'not-found' | 'access-violation'; reason: string };
export type TftpOpenResult = TftpFile | TftpOpenError;

export interface TftpFileSource {
  /** `filename` as the request carried it (latin1, byte for byte). */
  open(filename: string): TftpOpenResult | Promise<TftpOpenResult>;
}

export function isOpenError(result: TftpOpenResult): result is TftpOpenError {
  return 'error' in result;
}

/**
 * The one path rule every source applies: a relative path of non-empty segments without `.` or
 * `..`, no NUL. Absolute paths are refused rather than rewritten so that a client learns at once
 * that `/x` and `x` are not the same request. Returns the path's segments, or why it is refused.
 */
export function checkTftpPath(filename: string): { segments: string[] } | TftpOpenError {
  if (filename.includes('\0')) return { error: 'access-violation', reason: 'file name contains NUL' };
  if (filename.length === 0) return { error: 'access-violation', reason: 'empty file name' };
  if (filename.startsWith('/')) return { error: 'access-violation', reason: 'absolute paths are refused' };
  const segments = filename.split('/');
  if (segments.some((s) => s === '..')) return { error: 'access-violation', reason: 'path contains ".."' };
  // "a//b" and "a/./b" name the same file as "a/b"; normalising them keeps content-store ids canonical.
  return { segments: segments.filter((s) => s !== '' && s !== '.') };
}

/**
 * Files of the content store whose id is `tftp/<path>`. Chunks are read through one cache shared by
 * every transfer, bounded in bytes: in a boot storm hundreds of transfers read the same iPXE binary,
 * and a chunk copy per transfer (FileReader.read caches one 1 MiB chunk per reader) would cost
 * hundreds of MiB. Each open file still holds a FileReader, whose pins keep its chunks safe from GC
 * if the file is replaced mid-transfer.
 */
export class ChunkStoreSource implements TftpFileSource {
  private readonly cache = new Map<string, Buffer>();
  private cachedBytes = 0;

  constructor(
    private readonly chunks: ChunkStore,
    private readonly cacheLimitBytes = 64 * 1024 * 1024,
  ) {}

  open(filename: string): TftpOpenResult {
    const path = checkTftpPath(filename);
    if ('error' in path) return path;
    const id = TFTP_FILE_PREFIX + path.segments.join('/');
    const reader = this.chunks.open(id);
    if (!reader) return { error: 'not-found', reason: `no content-store file ${id}` };
    const { size, chunkSize, chunks } = reader.manifest;
    let assembled: Buffer | undefined;
    const readInto = (target: Buffer, targetOffset: number, offset: number, length: number): number => {
      const end = Math.min(size, offset + length);
      let written = 0;
      for (let index = Math.floor(offset / chunkSize); offset + written < end; index++) {
        const chunk = this.chunk(chunks[index]!);
        const from = offset + written - index * chunkSize;
        written += chunk.copy(target, targetOffset + written, from, Math.min(chunk.length, end - index * chunkSize));
      }
      return written;
    };
    return {
      size,
      readBlock: (offset, length) => {
        const end = Math.min(size, offset + length);
        if (offset >= end) return Buffer.alloc(0);
        const first = Math.floor(offset / chunkSize);
        if (first === Math.floor((end - 1) / chunkSize)) return this.chunk(chunks[first]!).subarray(offset - first * chunkSize, end - first * chunkSize);
        // A block across a chunk boundary: assembled into a buffer reused by this file.
        if (!assembled || assembled.length < end - offset) assembled = Buffer.allocUnsafe(end - offset);
        return assembled.subarray(0, readInto(assembled, 0, offset, end - offset));
      },
      readInto,
      // The rest of the one chunk at offset, whatever length is asked: that is what the cache holds.
      bytesAt: (offset) => {
        if (offset >= size) return Buffer.alloc(0);
        const index = Math.floor(offset / chunkSize);
        return this.chunk(chunks[index]!).subarray(offset - index * chunkSize, Math.min(size, (index + 1) * chunkSize) - index * chunkSize);
      },
      close: () => reader.close(),
    };
  }

  /** Least-recently-used cache: Map keeps insertion order, a hit moves the chunk to the end. */
  private chunk(sha256: string): Buffer {
    const hit = this.cache.get(sha256);
    if (hit) {
      this.cache.delete(sha256);
      this.cache.set(sha256, hit);
      return hit;
    }
    const bytes = this.chunks.readChunk(sha256);
    if (!bytes) throw new Error(`chunk ${sha256} of a committed file is missing`);
    this.cache.set(sha256, bytes);
    this.cachedBytes += bytes.length;
    for (const [key, value] of this.cache) {
      if (this.cachedBytes <= this.cacheLimitBytes || key === sha256) break;
      this.cache.delete(key);
      this.cachedBytes -= value.length;
    }
    return bytes;
  }
}

/**
 * Regular files under a root directory. The file is opened first and its real path is then read
 * from /proc/self/fd, so the containment check applies to the file actually opened: a symlink
 * (or a directory swapped for one meanwhile) that leads out of the root is refused, race-free.
 */
export class RootDirectorySource implements TftpFileSource {
  private readonly root: string;

  /** Throws if `root` does not exist. */
  constructor(root: string) {
    this.root = realpathSync(root);
  }

  open(filename: string): TftpOpenResult {
    const path = checkTftpPath(filename);
    if ('error' in path) return path;
    if (path.segments.length === 0) return { error: 'access-violation', reason: 'not a regular file' };
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO must not block the server.
      fd = openSync(`${this.root}/${path.segments.join('/')}`, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { error: 'not-found', reason: `no file ${filename} under ${this.root}` };
      return { error: 'access-violation', reason: `cannot open ${filename}: ${code ?? (error as Error).message}` };
    }
    try {
      const real = readlinkSync(`/proc/self/fd/${fd}`);
      if (!real.startsWith(`${this.root}/`)) {
        closeSync(fd);
        return { error: 'access-violation', reason: `${filename} resolves to ${real}, outside the root ${this.root}` };
      }
      const stat = fstatSync(fd);
      if (!stat.isFile()) {
        closeSync(fd);
        return { error: 'access-violation', reason: `${filename} is not a regular file` };
      }
      return fileReader(fd, stat);
    } catch (error) {
      closeSync(fd);
      return { error: 'access-violation', reason: `cannot read ${filename}: ${(error as Error).message}` };
    }
  }
}

/**
 * A root-directory file. The core reads only what the send pump does not send from its mapping of
 * the file (the first window, resends, the last block, netascii): a pread each, straight into the
 * packet. (A 256 KiB read-ahead per open file, from when the pump sent from it, cost an allocation
 * per transfer that kept V8's major GC busy with small files: bench/RESULTS.md, TFTP eighth round.)
 */
function fileReader(fd: number, opened: Stats): TftpFile {
  const { size } = opened;
  /** readBlock's buffer, reused: allocated at the first call's length (the block size). */
  let buffer = Buffer.alloc(0);
  let closed = false;
  /** Reads until `length` bytes or the end of the file (readSync may return less than asked; 0 is the end). */
  const readFully = (target: Buffer, targetOffset: number, offset: number, length: number): number => {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, target, targetOffset + done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  };
  return {
    size,
    fd,
    readBlock(offset, length) {
      if (buffer.length < length) buffer = Buffer.allocUnsafe(length);
      return buffer.subarray(0, readFully(buffer, 0, offset, length));
    },
    readInto: readFully,
    unchanged() {
      let now: Stats;
      try {
        now = fstatSync(fd);
      } catch {
        return false; // cannot tell: not sent as complete
      }
      // Any write moves mtime (milliseconds as doubles keep a fraction down to about a microsecond).
      // Not ctime: replacing the file by rename unlinks the one being sent, which moves its ctime.
      return now.size === size && now.mtimeMs === opened.mtimeMs;
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

/**
 * Asks each source in order; the first that has the file serves it. An access violation ends the
 * search (a refused path is refused whatever a later source holds).
 */
export class CompositeSource implements TftpFileSource {
  constructor(private readonly sources: readonly TftpFileSource[]) {}

  async open(filename: string): Promise<TftpOpenResult> {
    const reasons: string[] = [];
    for (const source of this.sources) {
      const result = await source.open(filename);
      if (!isOpenError(result) || result.error === 'access-violation') return result;
      reasons.push(result.reason);
    }
    return { error: 'not-found', reason: reasons.join('; ') || 'no file source configured' };
  }
}
