// Content-addressed chunk store: every large file (image content, kernels, initramfs, ISOs, boot
// binaries) is a manifest over chunks keyed by their SHA-256, all in the Store's one LMDB
// environment. Identical chunks are stored once; a chunk's reference count is the number of
// manifests that contain it, so unreferenced chunks are exactly the garbage. Design, the chunk size
// measurement and the read-buffer lifetimes are in docs/chunk-store.md.
import { createHash } from 'node:crypto';
import type { Database } from 'lmdb';
import { loadAddon } from '../native.js';
import type { Store } from './store.js';

/** Chosen by measurement (docs/chunk-store.md, bench/chunks/run.ts). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** How a stored file is put together; `chunks` are hex SHA-256 keys in file order. */
export interface Manifest {
  size: number;
  /** Epoch seconds (as `last_modified`): the client's mtime if it sent one, else upload time. */
  mtime: number;
  sha1: string;
  sha256: string;
  chunkSize: number;
  chunks: string[];
}

export interface PutOptions {
  /** Hex digest the client expects; a mismatch rejects the upload with `ChecksumMismatch`. */
  expectedSha256?: string;
  expectedSha1?: string;
  mtime?: number;
}

export interface UnusedChunk {
  sha256: string;
  size: number;
}

export interface UnusedReport {
  chunks: UnusedChunk[];
  bytes: number;
}

/** The upload's content does not match the checksum the client sent; nothing was committed. */
export class ChecksumMismatch extends Error {
  override readonly name = 'ChecksumMismatch';
  constructor(
    readonly algorithm: 'sha1' | 'sha256',
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${algorithm} mismatch: expected ${expected}, received content has ${actual}`);
  }
}

const FILES_DB = '_files';
const CHUNKS_DB = '_chunks';
const REFS_DB = '_chunk_refs';
/**
 * Bytes of chunk writes in flight per upload before it stops reading its input: bounds an
 * upload's memory while letting lmdb-js batch several chunks into each commit (and fsync).
 */
export const MAX_PENDING_WRITE_BYTES = 8 * 1024 * 1024;
/** `_settings` key of the last garbage collection that freed something: `{ time, chunks, bytes }`. */
const LAST_COLLECTION_SETTING = 'chunks.last_collection';
/** Chunks deleted per GC transaction, so GC never holds the writer for long. */
const GC_BATCH = 64;
/**
 * Map views kept (`ChunkStore.peekChunk`): 4 GiB of 1 MiB chunks. A view costs a JS object; its
 * bytes are LMDB's file pages, which the kernel pages in and out like any page cache.
 */
export const MAX_CHUNK_VIEWS = 4096;

/**
 * The lmdb-js native export behind `mapView`, undocumented: an external Buffer over the value's
 * bytes in the memory map, found in the environment's current read transaction, for the key that
 * the environment's last lmdb-js read left in its key buffer.
 */
interface LmdbNative {
  getSharedByBinary(dbAddress: number, keyLength: number): Buffer | undefined;
}

/** Undeclared properties of an lmdb-js database that `mapView` needs. */
interface LmdbDatabaseInternals {
  /** The native database handle. */
  dbAddress: number;
  /** Set while a write transaction's callback runs. */
  env: { writeTxn?: unknown };
}

const key = (sha256: string): Buffer => Buffer.from(sha256, 'hex');

/**
 * Chunks an upload has written (or found already present) and pinned, plus the whole-file facts;
 * becomes a file only when linked inside a write transaction. Always `release()` it.
 */
export class StagedFile {
  private released = false;

  constructor(
    private readonly owner: ChunkStore,
    readonly manifest: Manifest,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.unpin(this.manifest.chunks);
  }
}

/**
 * Random access to one file as it was when opened. Its chunks stay pinned (safe from GC even if
 * the file is replaced or deleted meanwhile) until `close()`: the reader pins its manifest, which
 * costs the same for a 64 KiB range as for a 4 GiB file (see `ChunkStore.open`).
 */
export class FileReader {
  private cachedIndex = -1;
  private cached: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly owner: ChunkStore,
    readonly manifest: Manifest,
  ) {}

  /**
   * `length` bytes from `offset` (fewer at the end of the file), e.g. one TFTP block. The result
   * stays valid indefinitely; it may be a view of the reader's current chunk, which is cached so
   * that sequential small reads copy each chunk out of LMDB once. Do not modify it.
   */
  read(offset: number, length: number): Buffer {
    const { size, chunkSize } = this.manifest;
    const end = Math.min(size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / chunkSize);
    const last = Math.floor((end - 1) / chunkSize);
    if (first === last) return this.chunkAt(first).subarray(offset - first * chunkSize, end - first * chunkSize);
    const out = Buffer.allocUnsafe(end - offset);
    let written = 0;
    for (let index = first; index <= last; index++) {
      const chunk = this.chunkAt(index);
      const from = index === first ? offset - first * chunkSize : 0;
      const to = index === last ? end - last * chunkSize : chunk.length;
      written += chunk.copy(out, written, from, to);
    }
    return out;
  }

  /**
   * The bytes from `start` (< end, < size) to `end` or the end of the chunk holding `start`,
   * whichever comes first: a view of LMDB's memory map, valid as `slices` says.
   */
  piece(start: number, end: number): Buffer {
    const { chunkSize, chunks } = this.manifest;
    const index = Math.floor(start / chunkSize);
    const hash = chunks[index];
    if (hash === undefined) throw new RangeError(`offset ${start} is past the end of a ${this.manifest.size}-byte file`);
    const bytes = this.owner.peekChunk(hash);
    if (!bytes) throw new Error(`chunk ${hash} of a committed file is missing`);
    const base = index * chunkSize;
    return bytes.subarray(start - base, Math.min(end, base + bytes.length) - base);
  }

  /**
   * The bytes of [start, end) as one slice per chunk, each a view of LMDB's memory map (no copy;
   * `ChunkStore.peekChunk`). A slice is valid only in the current synchronous run (the read
   * transaction that protects it ends at the next turn of the event loop): write it out (e.g. uWS
   * `tryEnd`, which sends what it can) or copy what is left before returning to the event loop.
   */
  *slices(start = 0, end = this.manifest.size): Generator<Buffer> {
    const stop = Math.min(end, this.manifest.size);
    for (let at = start; at < stop;) {
      const piece = this.piece(at, stop);
      yield piece;
      at += piece.length;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cached = undefined;
    this.owner.unpinManifest(this.manifest);
  }

  private chunkAt(index: number): Buffer {
    if (index !== this.cachedIndex) {
      const bytes = this.owner.readChunk(this.manifest.chunks[index]!);
      if (!bytes) throw new Error(`chunk ${this.manifest.chunks[index]} of a committed file is missing`);
      this.cached = bytes;
      this.cachedIndex = index;
    }
    return this.cached!;
  }
}

export class ChunkStore {
  readonly chunkSize: number;
  private readonly files: Database<Manifest, string>;
  /** sha256 (raw 32 bytes) → chunk bytes, stored as is (no encoding). */
  private readonly chunks: Database<Buffer, Buffer>;
  /** sha256 (raw) → number of manifests containing the chunk; absent means 0. */
  private readonly refs: Database<number, Buffer>;
  /** Chunks in use by uploads not yet committed (and single pinned chunks): GC leaves them alone. */
  private readonly pins = new Map<string, number>();
  /**
   * Manifests open by readers, with their reader counts: GC leaves their chunks alone too. One map
   * operation per reader instead of one per chunk (a range request on a 1 GiB file would otherwise
   * pin and unpin 1024 chunks); GC, which is rare, expands them into `readerChunks`.
   */
  private readonly openManifests = new Map<Manifest, number>();
  /** The chunks of `openManifests`, built when GC needs it; undefined once that set changed. */
  private readerChunks: Set<string> | undefined;
  /** Chunk writes in flight, so concurrent uploads of the same chunk write it once. */
  private readonly writing = new Map<string, Promise<unknown>>();
  /** Chunks a GC transaction is deleting but has not committed yet (see `storeChunk`). */
  private readonly deleting = new Set<string>();
  /** Views of chunks in LMDB's memory map by hex sha256, oldest first (see `peekChunk`). */
  private readonly views = new Map<string, Buffer>();
  private readonly lmdbNative = lmdbNativeExports();
  private readonly chunksInternals: LmdbDatabaseInternals;
  private collecting: Promise<UnusedReport> | undefined;

  constructor(
    private readonly store: Store,
    options: { chunkSize?: number } = {},
  ) {
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    // Cached decoded manifests (lmdb-js invalidates an entry on every write through this handle):
    // a 4 GiB file's manifest is 4096 hashes, too much to decode for every range request.
    this.files = store.openDatabase<Manifest, string>(FILES_DB, { encoding: 'msgpack', cache: true });
    this.chunks = store.openDatabase<Buffer, Buffer>(CHUNKS_DB, { keyEncoding: 'binary', encoding: 'binary' });
    this.refs = store.openDatabase<number, Buffer>(REFS_DB, { keyEncoding: 'binary', encoding: 'msgpack' });
    this.chunksInternals = this.chunks as unknown as LmdbDatabaseInternals;
  }

  /**
   * Store `input` as file `id`, replacing any previous version atomically: until the manifest
   * commits, readers see the old file; if the input fails, the checksum does not match or the
   * process dies, the old file stays and the chunks written so far are garbage for GC.
   */
  async putFile(id: string, input: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<Manifest> {
    const staged = await this.stage(input, options);
    try {
      await this.store.write('chunks', () => this.linkInTx(id, staged));
      return staged.manifest;
    } finally {
      staged.release();
    }
  }

  /**
   * Stream `input` into chunks (memory bounded by a few chunks), hashing the whole file on the
   * way, and verify the expected checksums. The chunks are durable and pinned but unreferenced:
   * link them with `linkInTx` inside a `store.write` (together with any record that names the
   * file), then `release()`.
   */
  async stage(input: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<StagedFile> {
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    const hashes: string[] = [];
    const pending: Promise<unknown>[] = [];
    const chunkSize = this.chunkSize;
    const maxPending = Math.max(1, Math.floor(MAX_PENDING_WRITE_BYTES / chunkSize));
    this.store.refuseIfLowOnSpace();
    let size = 0;
    let chunk = Buffer.allocUnsafe(chunkSize);
    let fill = 0;
    const flush = async (bytes: Buffer): Promise<void> => {
      // Before each chunk, not only at the start: a large upload stops at the floor instead of
      // filling the disk that reads, leases and status writes also need.
      this.store.refuseIfLowOnSpace();
      const write = this.storeChunk(bytes, hashes);
      if (write) pending.push(write);
      while (pending.length > maxPending) await pending.shift();
    };
    try {
      for await (const piece of input) {
        if (!(piece instanceof Uint8Array)) throw new TypeError('upload input must yield bytes');
        sha1.update(piece);
        sha256.update(piece);
        size += piece.length;
        for (let offset = 0; offset < piece.length; ) {
          const n = Math.min(chunkSize - fill, piece.length - offset);
          chunk.set(piece.subarray(offset, offset + n), fill);
          fill += n;
          offset += n;
          if (fill === chunkSize) {
            // A fresh buffer per chunk: lmdb-js writes from the caller's buffer asynchronously.
            const full = chunk;
            chunk = Buffer.allocUnsafe(chunkSize);
            fill = 0;
            await flush(full);
          }
        }
      }
      if (fill > 0) await flush(chunk.subarray(0, fill));
      await Promise.all(pending);
    } catch (err) {
      // Let in-flight writes land before unpinning, so what they leave is visible to GC at once.
      await Promise.allSettled(pending);
      this.unpin(hashes);
      throw this.store.writeFailure(err);
    }
    const manifest: Manifest = {
      size,
      mtime: options.mtime ?? this.store.now(),
      sha1: sha1.digest('hex'),
      sha256: sha256.digest('hex'),
      chunkSize,
      chunks: hashes,
    };
    const mismatch = checksumMismatch(manifest, options);
    if (mismatch) {
      this.unpin(hashes);
      throw mismatch;
    }
    return new StagedFile(this, manifest);
  }

  /** Inside a `store.write` callback: make `staged` the content of `id`, adjusting refcounts. */
  linkInTx(id: string, staged: StagedFile): void {
    const manifest = staged.manifest;
    for (const hash of new Set(manifest.chunks)) {
      // Pinning makes this impossible; checked because a manifest over a missing chunk is
      // unrecoverable while a failed upload is merely retried.
      if (!this.chunks.doesExist(key(hash))) throw new Error(`chunk ${hash} vanished before commit`);
      this.addRef(hash, 1);
    }
    this.unlinkInTx(id);
    this.files.putSync(id, manifest);
  }

  /** Inside a `store.write` callback: forget file `id`; its chunks lose a reference. */
  unlinkInTx(id: string): boolean {
    const previous = this.files.get(id);
    if (!previous) return false;
    for (const hash of new Set(previous.chunks)) this.addRef(hash, -1);
    this.files.removeSync(id);
    return true;
  }

  async deleteFile(id: string): Promise<boolean> {
    return this.store.write('chunks', () => this.unlinkInTx(id));
  }

  stat(id: string): Manifest | undefined {
    return this.files.get(id);
  }

  /** File ids starting with `prefix`, in key order. */
  list(prefix = ''): string[] {
    const ids: string[] = [];
    for (const id of this.files.getKeys({ start: prefix })) {
      if (!id.startsWith(prefix)) break;
      ids.push(id);
    }
    return ids;
  }

  /** A reader over the committed content of `id`, or undefined if there is none. */
  open(id: string): FileReader | undefined {
    const manifest = this.files.get(id);
    if (!manifest) return undefined;
    // Pinned in the same synchronous step that read the manifest: no GC transaction can run
    // between the two, so every chunk it names exists and stays until the reader closes.
    const readers = this.openManifests.get(manifest) ?? 0;
    this.openManifests.set(manifest, readers + 1);
    if (readers === 0) this.readerChunks = undefined;
    return new FileReader(this, manifest);
  }

  /** One chunk in a Buffer of its own (one copy out of LMDB); valid indefinitely. */
  readChunk(sha256: string): Buffer | undefined {
    return this.chunks.getBinary(key(sha256));
  }

  /**
   * One chunk without copying it: a view of its pages in LMDB's memory map. Valid only in the
   * current synchronous run: the read transaction that keeps a deleted chunk's pages from being
   * reused ends at the next turn of the event loop. Read pinned chunks only (a reader's, an
   * upload's, `pin`), or chunks some file references now.
   */
  peekChunk(sha256: string): Buffer | undefined {
    // Inside a write transaction a value may live in a dirty page outside the map: copy it.
    if (this.chunksInternals.env.writeTxn) return this.copyOut(key(sha256));
    const kept = this.views.get(sha256);
    if (kept) {
      // A kept view points into the map, which close() unmaps: never hand one out from then on.
      if (!this.store.isOpen()) throw new Error('the store is closed');
      return kept;
    }
    const view = this.mapView(key(sha256));
    // A view made while GC runs may show a chunk GC is deleting (its commit may land in the
    // middle of this read transaction): use it now, keep it only when no GC is running.
    if (view && this.collecting === undefined) {
      if (this.views.size >= MAX_CHUNK_VIEWS) this.views.delete(this.views.keys().next().value!);
      this.views.set(sha256, view);
    }
    return view;
  }

  refcount(sha256: string): number {
    return this.refs.get(key(sha256)) ?? 0;
  }

  /** Stored chunks that no manifest references and no upload or reader pins. */
  unused(): UnusedReport {
    const chunks: UnusedChunk[] = [];
    let bytes = 0;
    for (const hash of this.unreferenced()) {
      const size = this.chunkLength(hash);
      chunks.push({ sha256: hash, size });
      bytes += size;
    }
    return { chunks, bytes };
  }

  /** Delete exactly the chunks `unused()` lists, `GC_BATCH` per transaction; reports what was freed. */
  collectGarbage(): Promise<UnusedReport> {
    // One collection at a time; a second caller shares the running one's result.
    this.collecting ??= this.collect().finally(() => (this.collecting = undefined));
    return this.collecting;
  }

  private async collect(): Promise<UnusedReport> {
    const freed: UnusedChunk[] = [];
    let bytes = 0;
    let after: string | undefined;
    for (;;) {
      const batch = this.unreferenced(GC_BATCH, after);
      if (batch.length === 0) break;
      after = batch[batch.length - 1];
      try {
        await this.store.write('chunks', () => {
          for (const hash of batch) {
            const raw = key(hash);
            // Re-checked inside the transaction: an upload may have linked or pinned it since.
            if (this.refs.doesExist(raw) || this.isPinned(hash)) continue;
            const size = this.chunkLength(hash);
            this.chunks.removeSync(raw);
            this.views.delete(hash);
            this.deleting.add(hash);
            freed.push({ sha256: hash, size });
            bytes += size;
          }
        });
      } finally {
        // The next read must see the deletes: a read transaction begun before the commit would
        // still find the deleted chunks (and `peekChunk` could keep views of their freed pages).
        this.chunks.resetReadTxn();
        this.deleting.clear();
      }
    }
    // LMDB reuses the pages a transaction freed only once a later write transaction has committed
    // (measured: on a full disk, uploads after a GC kept failing until some other write landed).
    // Recording the collection is that write, so the space is usable as soon as this returns.
    if (freed.length > 0) await this.store.putSetting(LAST_COLLECTION_SETTING, { time: this.store.now(), chunks: freed.length, bytes });
    return { chunks: freed, bytes };
  }

  /**
   * Integrity check: every manifest is well-formed and its chunks exist, and every refcount
   * equals the number of manifests containing the chunk. With `verify`, also re-hash every chunk
   * against its key and every file against its manifest (reads all data). Returns the problems.
   */
  check(options: { verify?: boolean } = {}): string[] {
    const problems: string[] = [];
    const expected = new Map<string, number>();
    for (const { key: id, value: manifest } of this.files.getRange()) {
      const chunkCount = manifest.size === 0 ? 0 : Math.ceil(manifest.size / manifest.chunkSize);
      if (manifest.chunks.length !== chunkCount)
        problems.push(`file ${id}: ${manifest.chunks.length} chunks for ${manifest.size} bytes`);
      for (const hash of new Set(manifest.chunks)) {
        expected.set(hash, (expected.get(hash) ?? 0) + 1);
        if (!this.chunks.doesExist(key(hash))) problems.push(`file ${id}: chunk ${hash} missing`);
      }
      if (options.verify) problems.push(...this.verifyFile(id, manifest));
    }
    for (const { key: raw, value: count } of this.refs.getRange()) {
      const hash = raw.toString('hex');
      if (count !== expected.get(hash)) problems.push(`chunk ${hash}: refcount ${count}, referenced by ${expected.get(hash) ?? 0} files`);
      expected.delete(hash);
    }
    for (const [hash, count] of expected) problems.push(`chunk ${hash}: no refcount, referenced by ${count} files`);
    if (options.verify) {
      for (const raw of this.chunks.getKeys()) {
        const bytes = this.chunks.getBinaryFast(raw)!;
        const actual = createHash('sha256').update(bytes.subarray(0, bytes.length)).digest();
        if (!actual.equals(raw)) problems.push(`chunk ${raw.toString('hex')}: content hashes to ${actual.toString('hex')}`);
      }
    }
    return problems;
  }

  /** Facts for status pages and benchmarks. */
  stats(): { files: number; chunks: number; referencedChunks: number } {
    return { files: this.files.getCount(), chunks: this.chunks.getCount(), referencedChunks: this.refs.getCount() };
  }

  /** For `FileReader.close`. */
  unpinManifest(manifest: Manifest): void {
    const readers = this.openManifests.get(manifest) ?? 0;
    if (readers > 1) return void this.openManifests.set(manifest, readers - 1);
    this.openManifests.delete(manifest);
    this.readerChunks = undefined;
  }

  pin(hashes: readonly string[]): void {
    for (const hash of hashes) this.pins.set(hash, (this.pins.get(hash) ?? 0) + 1);
  }

  unpin(hashes: readonly string[]): void {
    for (const hash of hashes) {
      const count = this.pins.get(hash) ?? 0;
      if (count <= 1) this.pins.delete(hash);
      else this.pins.set(hash, count - 1);
    }
  }

  /**
   * Pin one chunk of an upload and start writing it unless it is already stored (dedup) or being
   * written by another upload. Returns the write to wait for, if any.
   */
  private storeChunk(bytes: Buffer, hashes: string[]): Promise<unknown> | undefined {
    const raw = createHash('sha256').update(bytes).digest();
    const hash = raw.toString('hex');
    // Pin before looking: from here on GC will not delete it.
    this.pin([hash]);
    hashes.push(hash);
    const inFlight = this.writing.get(hash);
    if (inFlight) return inFlight;
    // A chunk a GC transaction is deleting still "exists" until that commits: write it again.
    // The put is queued after the GC transaction, so it lands after the delete.
    if (!this.deleting.has(hash) && this.chunks.doesExist(raw)) return undefined;
    const write = this.chunks.put(raw, bytes).finally(() => this.writing.delete(hash));
    // Awaited later (or settled on abort); this only stops it (and, when its commit failed, the
    // LMDB error behind it) counting as unhandled meanwhile.
    write.catch((err: unknown) => this.store.writeFailure(err));
    this.writing.set(hash, write);
    return write;
  }

  /** Whether an upload, a single-chunk pin or an open reader holds the chunk. */
  private isPinned(hash: string): boolean {
    if (this.pins.has(hash)) return true;
    if (!this.readerChunks) {
      this.readerChunks = new Set();
      for (const manifest of this.openManifests.keys()) for (const chunk of manifest.chunks) this.readerChunks.add(chunk);
    }
    return this.readerChunks.has(hash);
  }

  private addRef(hash: string, delta: number): void {
    const raw = key(hash);
    const count = (this.refs.get(raw) ?? 0) + delta;
    if (count > 0) this.refs.putSync(raw, count);
    else this.refs.removeSync(raw);
  }

  /** Unreferenced, unpinned chunks in key order: up to `limit`, starting after key `after`. */
  private unreferenced(limit = Infinity, after?: string): string[] {
    const found: string[] = [];
    const start = after === undefined ? undefined : key(after);
    for (const raw of this.chunks.getKeys(start && { start })) {
      const hash = raw.toString('hex');
      if (hash === after || this.refs.doesExist(raw) || this.isPinned(hash)) continue;
      found.push(hash);
      if (found.length >= limit) break;
    }
    return found;
  }

  /**
   * Zero-copy read of one chunk. lmdb-js 3.5.6 has no public zero-copy read below 16 MiB values
   * (getBinaryFast copies into a shared buffer), and its asynchronous getBFAsync, which would
   * return a map view, crashes the process for values over 4 KiB (its libuv worker thread
   * dereferences the thread_local buffer table only the main thread sets up). Its native
   * getSharedByBinary does return a view of the map, but creating one costs more than the copy
   * (V8 counts the 1 MiB as external memory and collects garbage for it: 47 vs 23 µs per MiB
   * measured), so `peekChunk` keeps the views it makes. A kept view stays right while its chunk
   * exists: LMDB's copy-on-write copies B-tree pages, never a value's overflow pages, which change
   * only when that key is written or deleted; a stored chunk is never written again (uploads skip
   * existing chunks) and is deleted only by GC, which drops its view; lmdb-js never unmaps a map it
   * grows (old maps stay for lingering readers). test/chunks.test.ts pins this behaviour.
   */
  private mapView(raw: Buffer): Buffer | undefined {
    // Any lmdb-js read renews the environment's read transaction and leaves its key in the
    // environment's key buffer, which is where getSharedByBinary takes the key from; refs and
    // chunks share the environment and the raw 32-byte key encoding.
    this.refs.getBinaryFast(raw);
    return this.lmdbNative.getSharedByBinary(this.chunksInternals.dbAddress, raw.length);
  }

  /** One copy out of LMDB into lmdb-js's shared buffer; valid until the next LMDB read. */
  private copyOut(raw: Buffer): Buffer | undefined {
    const bytes = this.chunks.getBinaryFast(raw);
    // The shared buffer's `length` is patched to the value size but its storage is larger: hand
    // out a real view so that byteLength and every consumer agree.
    return bytes?.subarray(0, bytes.length);
  }

  private chunkLength(hash: string): number {
    // LMDB keeps no value length apart from the value: read it (one memcpy, no allocation).
    return this.chunks.getBinaryFast(key(hash))?.length ?? 0;
  }

  private verifyFile(id: string, manifest: Manifest): string[] {
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    let size = 0;
    for (const [index, hash] of manifest.chunks.entries()) {
      const bytes = this.peekChunk(hash);
      if (!bytes) return [];
      if (index < manifest.chunks.length - 1 && bytes.length !== manifest.chunkSize)
        return [`file ${id}: chunk ${index} is ${bytes.length} bytes, not ${manifest.chunkSize}`];
      sha1.update(bytes);
      sha256.update(bytes);
      size += bytes.length;
    }
    const problems: string[] = [];
    if (size !== manifest.size) problems.push(`file ${id}: chunks hold ${size} bytes, manifest says ${manifest.size}`);
    if (sha256.digest('hex') !== manifest.sha256) problems.push(`file ${id}: content does not match sha256`);
    if (sha1.digest('hex') !== manifest.sha1) problems.push(`file ${id}: content does not match sha1`);
    return problems;
  }
}

function lmdbNativeExports(): LmdbNative {
  const exports = loadAddon('lmdb') as Partial<LmdbNative>;
  if (typeof exports.getSharedByBinary !== 'function') throw new Error('lmdb addon has no getSharedByBinary: chunk reads need it (docs/chunk-store.md)');
  return exports as LmdbNative;
}

function checksumMismatch(manifest: Manifest, options: PutOptions): ChecksumMismatch | undefined {
  if (options.expectedSha256 !== undefined && options.expectedSha256.toLowerCase() !== manifest.sha256)
    return new ChecksumMismatch('sha256', options.expectedSha256, manifest.sha256);
  if (options.expectedSha1 !== undefined && options.expectedSha1.toLowerCase() !== manifest.sha1)
    return new ChecksumMismatch('sha1', options.expectedSha1, manifest.sha1);
  return undefined;
}
