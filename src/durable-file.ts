// Files that must be whole or absent after a crash (keys, certificates, the CLI's tokens, what keel install lays out): written beside their
// place, synced, renamed over it, and the directory synced so that the rename itself survives
// power loss. A base file: the layers that keep such files (ssh, http, cli) import no layer in common.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Write `text` to `path` with `mode` (the temporary file is created with it: never readable by others meanwhile). */
export function writeFileDurably(path: string, text: string, mode: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', mode);
  try {
    // A temporary file a crash left behind keeps its old mode through open(): set it before writing.
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
