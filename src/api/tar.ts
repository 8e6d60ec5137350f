// The little of POSIX ustar that boot config export/import needs: regular files with short names,
// written as header + data + padding (so an archive's size is known before it is sent: tar-stream's
// packer is a stream, and its header encoder is not exported), and read back with tar-stream as a
// stream, each member's data handed on as an AsyncIterable without holding it whole.
import { Readable } from 'node:stream';
import { extract as tarExtract, type Extract } from 'tar-stream';
import { badRequest } from '../http/errors.js';

type Entry = Extract extends AsyncIterable<infer E> ? E : never;

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
  /** The member's bytes; read them (or not) before asking for the next member. */
  data: AsyncIterable<Buffer>;
}

/** A member's bytes, a stream cut short (the archive ends inside it) reported as a 400. */
async function* memberData(entry: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* entry;
  } catch {
    throw badRequest('Archive ends in the middle of a member');
  }
}

/** The regular files of a ustar stream, in order (read by tar-stream); malformed archives are 400s. */
export async function* readTar(input: AsyncIterable<Buffer>): AsyncGenerator<TarMember> {
  const extract = tarExtract();
  const source = Readable.from(input);
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as NodeJS.WritableStream);
  const entries = extract[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Entry>;
      try {
        next = await entries.next();
      } catch (err) {
        throw badRequest(`Malformed archive: ${(err as Error).message} (send the file GET …/export produced)`);
      }
      if (next.done) return;
      const entry = next.value;
      const { name, size, mtime, type } = entry.header;
      if (type === 'file' || type === 'contiguous-file') yield { name, size, mtime: Math.floor(mtime.getTime() / 1000), data: memberData(entry as unknown as AsyncIterable<Buffer>) };
      // What the caller left unread is skipped.
      entry.resume();
    }
  } finally {
    source.destroy();
    extract.destroy();
  }
}
