// What kind of file an upload is, from its first bytes (the first chunk, 1 MiB, is always enough).
// Reported as `fmt` of a record's files (files.ts); the formats are listed in docs/content.md.

interface Signature {
  fmt: string;
  offset: number;
  magic: Buffer;
}

const sig = (fmt: string, offset: number, magic: string | number[]): Signature => ({
  fmt,
  offset,
  magic: typeof magic === 'string' ? Buffer.from(magic, 'latin1') : Buffer.from(magic),
});

/** Checked in order; the first match wins. */
const SIGNATURES: readonly Signature[] = [
  sig('squashfs', 0, 'hsqs'), // squashfs superblock, little-endian (what mksquashfs writes)
  sig('squashfs', 0, 'sqsh'), // big-endian squashfs
  sig('erofs', 1024, [0xe2, 0xe1, 0xf5, 0xe0]),
  sig('qcow2', 0, 'QFI\xfb'),
  sig('iso9660', 0x8001, 'CD001'),
  sig('ext', 0x438, [0x53, 0xef]), // ext2/3/4 superblock magic 0xEF53
  sig('cpio', 0, '070701'), // newc, what initramfs images are
  sig('cpio', 0, '070702'),
  sig('gzip', 0, [0x1f, 0x8b]),
  sig('xz', 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
  sig('zstd', 0, [0x28, 0xb5, 0x2f, 0xfd]),
  sig('bzip2', 0, 'BZh'),
  sig('lz4', 0, [0x04, 0x22, 0x4d, 0x18]),
  sig('tar', 257, 'ustar'),
  sig('linux-kernel', 0x202, 'HdrS'), // x86 bzImage boot protocol header
  sig('efi', 0, 'MZ'), // PE/COFF: EFI binaries, arm64 Image with EFI stub
  sig('elf', 0, '\x7fELF'),
];

/** Every `fmt` detectFormat can answer, in the order checked (GET /cluster lists them). */
export const FORMAT_NAMES: readonly string[] = [...new Set(SIGNATURES.map((s) => s.fmt)), 'empty', 'raw'];

export function detectFormat(head: Buffer): string {
  if (head.length === 0) return 'empty';
  for (const { fmt, offset, magic } of SIGNATURES) {
    if (head.length >= offset + magic.length && head.subarray(offset, offset + magic.length).equals(magic)) return fmt;
  }
  return 'raw';
}
