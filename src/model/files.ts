// Where the model's files live in the chunk store, and what is reported about them. A record's
// file (an image's content, a boot config's kernel, a repo's ISO) is `<class>/<uid>/<slot>`; a file
// served by TFTP and as /boot/firmware (iPXE binaries) is `tftp/<name>`.
import type { ChunkStore, Manifest } from '../store/chunks.js';
import { detectFormat } from './formats.js';

export const fileId = (className: string, uid: string, slot: string): string => `${className}/${uid}/${slot}`;

/** Prefix of content-store file ids published for TFTP: `tftp/<path>` is served as `<path>`. */
export const TFTP_FILE_PREFIX = 'tftp/';

/** The file's facts as the API reports them. */
export function fileStat(manifest: Manifest): { size: number; mtime: number } {
  return { size: manifest.size, mtime: manifest.mtime };
}

/** What a record's view shows about one of its files. */
export function fileSummary(chunks: ChunkStore, manifest: Manifest): { size: number; mtime: number; chksum: string; fmt: string } {
  return { ...fileStat(manifest), chksum: `sha1:${manifest.sha1}`, fmt: formatOf(chunks, manifest) };
}

/** `/content/info`: the summary plus how many stored files have this exact content. */
export function fileInfo(chunks: ChunkStore, manifest: Manifest): { size: number; mtime: number; chksum: string; refcnt: number; fmt: string } {
  let refcnt = 0;
  for (const id of chunks.list()) if (chunks.stat(id)?.sha256 === manifest.sha256) refcnt++;
  const { fmt, ...summary } = fileSummary(chunks, manifest);
  return { ...summary, refcnt, fmt };
}

/**
 * Detected formats by first chunk: detection reads a chunk, and a chunk's bytes never change (its
 * name is their hash), so this memo is right for every store.
 */
const formatByFirstChunk = new Map<string, string>();

function formatOf(chunks: ChunkStore, manifest: Manifest): string {
  const first = manifest.chunks[0];
  if (first === undefined) return detectFormat(Buffer.alloc(0));
  let fmt = formatByFirstChunk.get(first);
  if (fmt === undefined) {
    const bytes = chunks.peekChunk(first);
    fmt = detectFormat(bytes ?? Buffer.alloc(0));
    if (formatByFirstChunk.size > 4096) formatByFirstChunk.clear();
    formatByFirstChunk.set(first, fmt);
  }
  return fmt;
}
