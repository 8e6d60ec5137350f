/** A write that would break a uniqueness constraint; the message is the client-facing reason. */
export class StoreConflict extends Error {
  override readonly name = 'StoreConflict';
}

/**
 * The data directory has no room for a write: refused before writing (below the free-space floor)
 * or after LMDB's commit failed on a (nearly) full file system. Nothing of the write was stored;
 * the message is the client-facing reason.
 */
export class StoreOutOfSpace extends Error {
  override readonly name = 'StoreOutOfSpace';
}
