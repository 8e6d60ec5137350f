// The payloads of a transfer's DATA blocks, produced in order from the caller's readBlock. The
// transfer asks for each block once and keeps the unacknowledged ones itself, so reads are strictly
// sequential and a stream transformation (netascii) needs no random access.

/**
 * Reads `length` bytes at `offset` of the file; synchronous (LMDB reads are). The returned buffer is
 * used only until the next call, so a source may hand out a reused buffer.
 */
export type ReadBlock = (offset: number, length: number) => Buffer;

/**
 * Copies `length` bytes at `offset` of the file into `target` at `targetOffset` and returns the
 * number copied (fewer only at the end of the file): lets a source read straight into the DATA
 * packet instead of handing out a buffer to copy from.
 */
export type ReadBlockInto = (target: Buffer, targetOffset: number, offset: number, length: number) => number;

/** The source did not deliver what its announced size promised (or threw). */
export class SourceError extends Error {
  override name = 'SourceError';
}

export interface BlockProducer {
  /**
   * Writes the next payload into `target` at `offset` (room for blockSize bytes) and returns its
   * length: exactly blockSize, or fewer (possibly 0) for the last block.
   */
  fill(target: Buffer, offset: number): number;
}

/** A read of exactly `length` bytes: a short read means the file shrank under us, a long one is cut. */
function readExactly(readBlock: ReadBlock, offset: number, length: number): Buffer {
  let data: Buffer;
  try {
    data = readBlock(offset, length);
  } catch (error) {
    throw new SourceError(`reading ${length} bytes at offset ${offset} failed: ${(error as Error).message}`);
  }
  if (data.length < length) {
    throw new SourceError(`source returned ${data.length} bytes at offset ${offset} where ${length} were expected: it is shorter than its announced size`);
  }
  return data.length === length ? data : data.subarray(0, length);
}

/** octet mode's producer: blocks map to file offsets, so blocks sent by someone else can be skipped. */
export interface OctetProducer extends BlockProducer {
  /** Moves past `bytes` of the file without reading them (blocks sent from elsewhere: the server's send pump). */
  skip(bytes: number): void;
}

/** octet mode: the file's bytes as they are, read straight into the packet when the source can. */
export function octetBlocks(fileSize: number, readBlock: ReadBlock, blockSize: number, readBlockInto?: ReadBlockInto): OctetProducer {
  let offset = 0;
  return {
    skip(bytes) {
      offset = Math.min(fileSize, offset + bytes);
    },
    fill(target, at) {
      const length = Math.min(blockSize, fileSize - offset);
      if (length <= 0) return 0;
      if (readBlockInto) {
        let copied: number;
        try {
          copied = readBlockInto(target, at, offset, length);
        } catch (error) {
          throw new SourceError(`reading ${length} bytes at offset ${offset} failed: ${(error as Error).message}`);
        }
        if (copied < length) {
          throw new SourceError(`source returned ${copied} bytes at offset ${offset} where ${length} were expected: it is shorter than its announced size`);
        }
      } else {
        readExactly(readBlock, offset, length).copy(target, at);
      }
      offset += length;
      return length;
    },
  };
}

/**
 * netascii (RFC 764 as RFC 1350 uses it): LF becomes CR LF and CR becomes CR NUL, so a receiver
 * decoding netascii gets the stored bytes back. The size on the wire is only known at the end.
 */
export function encodeNetascii(raw: Buffer): Buffer {
  let extra = 0;
  for (const byte of raw) if (byte === 0x0a || byte === 0x0d) extra++;
  if (extra === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + extra);
  let at = 0;
  for (const byte of raw) {
    if (byte === 0x0a) {
      out[at++] = 0x0d;
      out[at++] = 0x0a;
    } else if (byte === 0x0d) {
      out[at++] = 0x0d;
      out[at++] = 0x00;
    } else {
      out[at++] = byte;
    }
  }
  return out;
}

export function netasciiBlocks(fileSize: number, readBlock: ReadBlock, blockSize: number): BlockProducer {
  let offset = 0;
  // Encoded bytes not yet handed out: less than 3 blocks' worth at any time.
  let pending: Buffer = Buffer.alloc(0);
  return {
    fill(target, at) {
      while (pending.length < blockSize && offset < fileSize) {
        const length = Math.min(blockSize, fileSize - offset);
        const encoded = encodeNetascii(readExactly(readBlock, offset, length));
        offset += length;
        // concat copies, so nothing refers to the source's buffer after this call (see ReadBlock).
        pending = Buffer.concat([pending, encoded]);
      }
      const take = pending.copy(target, at, 0, Math.min(blockSize, pending.length));
      pending = pending.subarray(take);
      return take;
    },
  };
}
