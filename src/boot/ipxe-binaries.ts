// iPXE binaries the boot policy hands out (src/boot/policy.ts), as content-store files `tftp/<name>`
// (served by TFTP as `<name>` and over HTTP as /boot/firmware/<name>). At start, any that is
// missing is imported from Debian's `ipxe` package when it is installed. The others (ARM64: Debian
// ships none) are uploaded through the API (PUT /tftpfile/<name>, src/api/routes/tftpfiles.ts).
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TFTP_FILE_PREFIX } from '../model/files.js';
import type { ChunkStore } from '../store/chunks.js';
import { IpxeBinary } from './policy.js';

/** Where Debian's `ipxe` package installs its images (`dpkg -L ipxe`). */
export const DEBIAN_IPXE_DIR = '/usr/lib/ipxe';
/** The package's network-boot images: BIOS (UNDI, chained from the PXE ROM) and x86-64 UEFI. */
export const DEBIAN_IPXE_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const;

/** Imports each Debian iPXE image the content store does not have yet; returns the names imported. */
export async function importIpxeBinaries(chunks: ChunkStore, log: Logger, dir = DEBIAN_IPXE_DIR): Promise<string[]> {
  const imported: string[] = [];
  for (const name of DEBIAN_IPXE_FILES) {
    const id = `${TFTP_FILE_PREFIX}${name}`;
    const path = join(dir, name);
    if (chunks.stat(id) || !existsSync(path)) continue;
    try {
      await chunks.putFile(id, createReadStream(path), { mtime: statSync(path).mtimeMs / 1000 });
      imported.push(name);
    } catch (error) {
      // A damaged package file must not stop the head: it serves the others, and reports the missing one.
      log.warn({ err: error, path }, 'could not import an iPXE binary');
    }
  }
  if (imported.length > 0) log.info({ from: dir, files: imported }, 'imported iPXE binaries into the content store');
  return imported;
}

/**
 * The policy's iPXE binaries the content store lacks: firmware of those architectures is handed a
 * boot file that does not exist and cannot boot (warned at start, shown by GET /cluster).
 */
export function missingIpxeBinaries(chunks: ChunkStore): string[] {
  return Object.values(IpxeBinary).filter((name) => !chunks.stat(`${TFTP_FILE_PREFIX}${name}`));
}
