// The parts of an RPM file keel reads to convert it (docs/install.md): the lead, the signature
// header and the header (rpm's "header structure": index entries over a data store), and where the
// payload starts. Everything is checked against the file's size before it is read: a truncated or
// corrupt package is a PackageError naming what is wrong, never a read past the end.
import type { FileHandle } from 'node:fs/promises';

/** A package keel cannot convert: the file is truncated, corrupt, hostile or of a kind not supported. */
export class PackageError extends Error {
  override name = 'PackageError';
}

const LEAD_BYTES = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
// rpm's own limits for one header (hdrchkTags, hdrchkData in lib/header_internal.h).
const MAX_INDEX_ENTRIES = 0xffff;
const MAX_DATA_BYTES = 0x0fffffff;

const TYPE_STRING = 6;
const TYPE_INT32 = 4;
const TYPE_STRING_ARRAY = 8;
const TYPE_I18NSTRING = 9;

/** The header tags keel reads (rpm's lib/rpmtag.h). */
export const TAG = {
  name: 1000, version: 1001, release: 1002, vendor: 1011, arch: 1022,
  prein: 1023, postin: 1024, preun: 1025, postun: 1026,
  triggerScripts: 1065, triggerName: 1066, triggerVersion: 1067, triggerFlags: 1068, triggerIndex: 1069,
  preinProg: 1085, postinProg: 1086, preunProg: 1087, postunProg: 1088, triggerScriptProg: 1092,
  payloadFormat: 1124, payloadCompressor: 1125,
  pretrans: 1151, posttrans: 1152, pretransProg: 1153, posttransProg: 1154,
} as const;

type Value = string | string[] | number[];

/** One header: its tags' values (strings, string arrays and int32 arrays; other types are skipped). */
export class RpmHeader {
  constructor(private readonly values: ReadonlyMap<number, Value>) {}

  string(tag: number): string | undefined {
    const value = this.values.get(tag);
    if (typeof value === 'string') return value;
    // An interpreter (…PROG) may be a string array: the program and its arguments.
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(' ');
    return undefined;
  }

  strings(tag: number): string[] {
    const value = this.values.get(tag);
    if (typeof value === 'string') return [value];
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : [];
  }

  numbers(tag: number): number[] {
    const value = this.values.get(tag);
    return Array.isArray(value) && value.every((v) => typeof v === 'number') ? (value as number[]) : [];
  }
}

export interface RpmLayout {
  header: RpmHeader;
  /** Offset of the compressed payload in the file. */
  payloadOffset: number;
}

async function readAt(file: FileHandle, offset: number, length: number, size: number, what: string): Promise<Buffer> {
  if (offset + length > size) throw new PackageError(`Truncated RPM: the ${what} needs bytes ${offset}..${offset + length} of a ${size}-byte file`);
  const bytes = Buffer.alloc(length);
  const { bytesRead } = await file.read(bytes, 0, length, offset);
  if (bytesRead !== length) throw new PackageError(`Truncated RPM: short read of the ${what}`);
  return bytes;
}

/** Reads one header structure at `offset`; returns it and the offset just past it. */
async function readHeader(file: FileHandle, offset: number, size: number, what: string): Promise<{ header: RpmHeader; end: number }> {
  const intro = await readAt(file, offset, 16, size, what);
  if (!intro.subarray(0, 4).equals(HEADER_MAGIC)) throw new PackageError(`Corrupt RPM: the ${what} has no header magic at offset ${offset}`);
  const entries = intro.readUInt32BE(8);
  const dataBytes = intro.readUInt32BE(12);
  if (entries < 1 || entries > MAX_INDEX_ENTRIES) throw new PackageError(`Corrupt RPM: the ${what} claims ${entries} index entries`);
  if (dataBytes > MAX_DATA_BYTES) throw new PackageError(`Corrupt RPM: the ${what} claims ${dataBytes} bytes of data`);
  const index = await readAt(file, offset + 16, entries * 16, size, what);
  const data = await readAt(file, offset + 16 + entries * 16, dataBytes, size, what);
  const values = new Map<number, Value>();
  for (let i = 0; i < entries; i++) {
    const tag = index.readUInt32BE(i * 16);
    const type = index.readUInt32BE(i * 16 + 4);
    const at = index.readInt32BE(i * 16 + 8);
    const count = index.readUInt32BE(i * 16 + 12);
    if (at < 0 || at > dataBytes) throw new PackageError(`Corrupt RPM: tag ${tag} of the ${what} points outside its data`);
    if (type === TYPE_STRING || type === TYPE_STRING_ARRAY || type === TYPE_I18NSTRING) {
      const strings: string[] = [];
      let from = at;
      // A STRING has one value whatever its count says; an I18N string's first value is the C locale's.
      const wanted = type === TYPE_STRING ? 1 : count;
      for (let n = 0; n < wanted; n++) {
        const nul = data.indexOf(0, from);
        if (nul < 0) throw new PackageError(`Corrupt RPM: string tag ${tag} of the ${what} runs past its data`);
        strings.push(data.toString('utf8', from, nul));
        from = nul + 1;
      }
      values.set(tag, type === TYPE_STRING || type === TYPE_I18NSTRING ? strings[0]! : strings);
    } else if (type === TYPE_INT32) {
      if (at + count * 4 > dataBytes) throw new PackageError(`Corrupt RPM: int32 tag ${tag} of the ${what} runs past its data`);
      values.set(tag, Array.from({ length: count }, (_, n) => data.readInt32BE(at + n * 4)));
    }
  }
  return { header: new RpmHeader(values), end: offset + 16 + entries * 16 + dataBytes };
}

/** The lead, signature and header of the RPM open as `file` (`size` bytes), and where its payload starts. */
export async function readRpm(file: FileHandle, size: number): Promise<RpmLayout> {
  const lead = await readAt(file, 0, LEAD_BYTES, size, 'lead');
  if (lead.readUInt32BE(0) !== LEAD_MAGIC) throw new PackageError('Not an RPM: the file does not start with the RPM lead magic (ed ab ee db)');
  const signature = await readHeader(file, LEAD_BYTES, size, 'signature header');
  // The signature is padded to a multiple of 8 bytes; the header follows.
  const headerAt = signature.end + ((8 - (signature.end % 8)) % 8);
  const main = await readHeader(file, headerAt, size, 'header');
  if (main.header.string(TAG.name) === undefined) throw new PackageError('Corrupt RPM: the header has no package name');
  const format = main.header.string(TAG.payloadFormat) ?? 'cpio';
  if (format !== 'cpio') throw new PackageError(`Unsupported RPM payload format '${format}' (keel reads cpio payloads)`);
  return { header: main.header, payloadOffset: main.end };
}
