// The little of POSIX ustar that boot config export/import needs: regular files with short names,
// written as header + data + padding (so an archive's size is known before it is sent) and read
// back as a stream, each member's data handed on as an AsyncIterable without holding it whole.
import { badRequest } from '../http/errors.js';

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** The 512-byte ustar header of a regular file. */
export function tarHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar member name too long: ${name}`);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  header.write(octal(size, 12), 124, 'latin1');
  header.write(octal(Math.floor(mtime), 12), 136, 'latin1');
  header.write('        ', 148, 'latin1'); // checksum field counts as spaces while summing
  header.write('0', 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + ' ', 148, 'latin1');
  return header;
}

export const tarPadding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;
/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

export interface TarMember {
  name: string;
  size: number;
  /** Epoch seconds (whole: ustar keeps no fraction). */
  mtime: number;
  /** The member's bytes; must be consumed (or `skip`ped) before the next member is read. */
  data: AsyncIterable<Buffer>;
}

/** Buffered reading of exact byte counts from a stream. */
class ByteReader {
  private pending: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      const next = await this.source.next();
      if (next.done) return false;
      this.pending.push(next.value);
      this.buffered += next.value.length;
    }
    return true;
  }

  /** Exactly n bytes, or undefined at the end of the stream. */
  async exact(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.buffered);
    this.pending = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  /** The next n bytes as pieces, without holding them all. */
  async *piece(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) throw badRequest('Archive ends in the middle of a member');
      const head = this.pending[0]!;
      const take = Math.min(left, head.length);
      yield head.subarray(0, take);
      if (take === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(take);
      this.buffered -= take;
      left -= take;
    }
  }
}

/** The regular files of a ustar stream, in order; malformed archives are 400s. */
export async function* readTar(input: AsyncIterable<Buffer>): AsyncGenerator<TarMember> {
  const reader = new ByteReader(input[Symbol.asyncIterator]());
  for (;;) {
    const header = await reader.exact(BLOCK);
    if (!header) throw badRequest('Archive ends without its end-of-archive marker');
    if (header.every((b) => b === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    const stored = parseInt(header.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
    if (stored !== sum) throw badRequest('Malformed archive: a tar header checksum does not match (send the file GET …/export produced)');
    const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
    const mtime = parseInt(header.toString('latin1', 136, 148).replace(/\0.*$/, '').trim() || '0', 8);
    const type = header.toString('latin1', 156, 157);
    if (!Number.isSafeInteger(size) || size < 0) throw badRequest(`Malformed archive: member ${name} has a bad size`);
    let consumed = false;
    const data = (async function* () {
      consumed = true;
      yield* reader.piece(size);
    })();
    if (type === '0' || type === '\0') yield { name, size, mtime, data };
    if (!consumed) for await (const piece of reader.piece(size)) void piece;
    const padding = tarPadding(size);
    if (padding && !(await reader.exact(padding))) throw badRequest('Archive ends in the middle of a member');
  }
}
