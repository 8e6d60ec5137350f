/** A write that would break a uniqueness constraint; the message is the client-facing reason. */
export class StoreConflict extends Error {
  override readonly name = 'StoreConflict';
}
