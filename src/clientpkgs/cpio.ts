// The cpio archive inside an RPM payload: the "new ASCII" format (newc, magic 070701, or 070702
// with checksums), read as a stream — each member's data handed on in pieces, never held whole.
// A name that would leave the package (absolute, or with a `..` segment) is a PackageError, as is
// any malformed header; rpm's "stripped" cpio (07070X, for files of 4 GiB and more) is refused.
import { PackageError } from './rpm.js';

const HEADER_BYTES = 110;
const TRAILER = 'TRAILER!!!';
const MAX_NAME_BYTES = 4096;

export interface CpioMember {
  /** Relative, normalised: no leading `./` or `/`, no `.` or `..` segments. */
  name: string;
  ino: number;
  /** st_mode: file type and permission bits. */
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevmajor: number;
  rdevminor: number;
  /** The member's bytes; read them (or not) before asking for the next member. */
  data: AsyncIterable<Buffer>;
}

/** Exact byte counts from a stream of pieces. */
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

  async exact(n: number, what: string): Promise<Buffer> {
    if (!(await this.fill(n))) throw new PackageError(`Truncated RPM payload: the cpio archive ends inside ${what}`);
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.buffered);
    this.pending = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  async *pieces(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) throw new PackageError(`Truncated RPM payload: the cpio archive ends inside ${what}`);
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

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** `raw` as a safe relative name, or undefined for the archive's root (`.`). */
export function safeMemberName(raw: string): string | undefined {
  if (raw.startsWith('/')) throw new PackageError(`Hostile RPM payload: cpio member '${raw}' has an absolute path`);
  const segments = raw.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) throw new PackageError(`Hostile RPM payload: cpio member '${raw}' has a '..' segment`);
  return segments.length === 0 ? undefined : segments.join('/');
}

/** The members of the newc cpio archive `input`, in order, up to its trailer. */
export async function* readCpio(input: AsyncIterable<Buffer>): AsyncGenerator<CpioMember> {
  const reader = new ByteReader(input[Symbol.asyncIterator]());
  for (;;) {
    const header = (await reader.exact(HEADER_BYTES, 'a member header')).toString('latin1');
    const magic = header.slice(0, 6);
    if (magic === '07070X') throw new PackageError('Unsupported RPM payload: rpm\'s stripped cpio format (files of 4 GiB or more)');
    if (magic !== '070701' && magic !== '070702') throw new PackageError(`Corrupt RPM payload: no cpio newc magic (found ${JSON.stringify(magic)})`);
    const field = (n: number) => {
      const text = header.slice(6 + n * 8, 14 + n * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new PackageError(`Corrupt RPM payload: malformed cpio header field ${JSON.stringify(text)}`);
      return parseInt(text, 16);
    };
    const [ino, mode, , , nlink, mtime, size, , , rdevmajor, rdevminor, nameBytes] = Array.from({ length: 12 }, (_, n) => field(n)) as number[];
    if (nameBytes! < 1 || nameBytes! > MAX_NAME_BYTES) throw new PackageError(`Corrupt RPM payload: a cpio name of ${nameBytes} bytes`);
    const nameField = await reader.exact(nameBytes! + pad4(HEADER_BYTES + nameBytes!), 'a member name');
    const raw = nameField.toString('utf8', 0, nameBytes! - 1);
    if (raw === TRAILER) return;
    const name = safeMemberName(raw);
    let consumed = false;
    const what = `member ${raw}`;
    const data = (async function* () {
      consumed = true;
      yield* reader.pieces(size!, what);
    })();
    if (name !== undefined) yield { name, ino: ino!, mode: mode!, nlink: nlink!, mtime: mtime!, size: size!, rdevmajor: rdevmajor!, rdevminor: rdevminor!, data };
    if (!consumed) for await (const piece of reader.pieces(size!, what)) void piece;
    if (pad4(size!)) await reader.exact(pad4(size!), what);
  }
}
