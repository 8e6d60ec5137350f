// An RPM payload's decompression, chosen by the payload's own magic bytes (the header's
// PAYLOADCOMPRESSOR is only a claim): gzip with node:zlib, zstd with fzstd (pure JS: Node 20's
// zlib has no zstd), bzip2 with unbzip2-stream (pure JS), xz with the `xz` program (see xz()).
// No native addon: the single binary carries them as they are. Every decoder is
// streamed and pulled as the converter consumes it, and the bytes it yields are counted: past
// `maxBytes` (a decompression bomb) the payload is refused.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import unbzip2 from 'unbzip2-stream';
import { PackageError } from './rpm.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

/** The compression `head` (the payload's first bytes) starts with; a cpio archive is 'none'. */
export function compressionOf(head: Buffer): Compression | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.toString('latin1', 0, 5) === '07070') return 'none';
  return undefined;
}

// fzstd turns one input piece into all its output at once: it is fed slices small enough that one
// slice cannot expand past a few tens of MiB before the count sees it.
const ZSTD_SLICE = 2048;

async function* sliced(input: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  for await (const chunk of input) for (let at = 0; at < chunk.length; at += size) yield chunk.subarray(at, at + size);
}

async function* zstd(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  const decoder = new ZstdDecompress((data) => {
    if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  for await (const slice of sliced(input, ZSTD_SLICE)) {
    decoder.push(slice);
    yield* out.splice(0);
  }
  decoder.push(new Uint8Array(0), true);
  yield* out.splice(0);
}

/**
 * xz through the `xz` program (xz-utils): the JS and WebAssembly decoders on npm either refuse the
 * SHA-256 check rpm always writes (xz-decompress: xz-embedded) or are LGPL with a broken inline
 * build (node-liblzma); a native addon would have to be embedded in the single binary.
 */
async function* xz(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const child = spawn('xz', ['--decompress', '--stdout', '--memlimit-decompress=512MiB'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(child, 'exit').catch((err: Error) => [err]);
  let stderr = '';
  child.stderr.on('data', (piece: Buffer) => {
    if (stderr.length < 1000) stderr += piece.toString('utf8');
  });
  // xz may stop reading (corrupt input): its stdin's EPIPE is reported by its exit status.
  child.stdin.on('error', () => {});
  Readable.from(input).pipe(child.stdin);
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    const [code] = await exited;
    if (code instanceof Error) throw new PackageError(`Cannot run xz to decompress the RPM payload (install xz-utils): ${code.message}`);
    if (code !== 0) throw new PackageError(`Corrupt RPM payload (xz): ${stderr.trim() || `xz exited with ${String(code)}`}`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

async function* decoded(kind: Compression, input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  switch (kind) {
    case 'none':
      yield* input;
      return;
    case 'gzip':
      yield* Readable.from(input).pipe(createGunzip()) as AsyncIterable<Buffer>;
      return;
    case 'bzip2': {
      // A classic (through) stream: its output goes through a PassThrough, pausing it while that is full.
      const decoder = unbzip2() as unknown as NodeJS.ReadWriteStream;
      const output = new PassThrough();
      decoder.on('data', (piece: Buffer) => {
        if (!output.write(piece)) {
          decoder.pause();
          output.once('drain', () => decoder.resume());
        }
      });
      decoder.on('end', () => output.end());
      decoder.on('error', (err: Error) => output.destroy(err));
      Readable.from(input).pipe(decoder);
      yield* output as AsyncIterable<Buffer>;
      return;
    }
    case 'xz':
      yield* xz(input);
      return;
    case 'zstd':
      yield* zstd(input);
  }
}

/**
 * `input` (a payload compressed as `kind`) decompressed, at most `maxBytes` of it: a corrupt stream
 * or a bigger one is a PackageError. Stopping the iteration stops the decoder.
 */
export async function* decompress(kind: Compression, input: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Buffer> {
  let total = 0;
  const pieces = decoded(kind, input);
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await pieces.next();
    } catch (err) {
      if (err instanceof PackageError) throw err;
      throw new PackageError(`Corrupt RPM payload (${kind}): ${(err as Error).message ?? String(err)}`);
    }
    if (next.done) return;
    total += next.value.length;
    if (total > maxBytes) {
      await pieces.return(undefined);
      throw new PackageError(`The RPM payload expands to more than ${maxBytes} bytes (install.max_expanded_bytes): refused as a decompression bomb`);
    }
    yield next.value;
  }
}
