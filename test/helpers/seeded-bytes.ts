// Deterministic pseudo-random file content for tests and benchmarks: AES-128-CTR keystream from a
// seed, produced piece by piece so that a large file is never whole in memory.
import { createCipheriv, createHash } from 'node:crypto';

export interface SeededOptions {
  /** Bytes per yielded piece (like a socket read); default 64 KiB. */
  pieceSize?: number;
}

function keystream(seed: number) {
  const key = createHash('sha256').update(`seed:${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
}

export async function* seededBytes(seed: number, size: number, options: SeededOptions = {}): AsyncGenerator<Buffer> {
  const pieceSize = options.pieceSize ?? 64 * 1024;
  const cipher = keystream(seed);
  const zeros = Buffer.alloc(pieceSize);
  for (let produced = 0; produced < size; ) {
    const n = Math.min(pieceSize, size - produced);
    yield cipher.update(zeros.subarray(0, n));
    produced += n;
  }
}

/** `seededBytes(seed, size)` as one buffer, for content small enough to hold in memory. */
export async function seededBuffer(seed: number, size: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of seededBytes(seed, size)) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** The sha256 (hex) of `seededBytes(seed, size)`, computed the same streaming way. */
export async function seededSha256(seed: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of seededBytes(seed, size)) hash.update(piece);
  return hash.digest('hex');
}
