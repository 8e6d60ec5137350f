// The console log of each node: a ring of raw bytes in the store's LMDB environment, bounded in
// bytes per node. Output is appended as segments (key `<uid>:<seq>`, value the bytes); when a
// node's total passes its bound, the oldest segments are deleted and the oldest survivor is cut to
// its tail, so exactly the newest `bound` bytes stay. Every append is one store write transaction
// (lmdb-js batches concurrent ones into one commit) and resolves once it is durable.
import type { Database } from 'lmdb';
import type { Store } from '../store/store.js';

const CONSOLE_DB = '_console';

/** Bytes per stored segment: larger appends are split, so trimming never rewrites much. */
export const SEGMENT_BYTES = 16 * 1024;

interface Segment {
  seq: number;
  size: number;
}

interface NodeRing {
  segments: Segment[];
  total: number;
  nextSeq: number;
}

const key = (uid: string, seq: number) => `${uid}:${String(seq).padStart(12, '0')}`;

export class ConsoleRing {
  private readonly db: Database<Buffer, string>;
  /** Segment sizes per node, loaded from the database on first use (values stay on disk). */
  private readonly rings = new Map<string, NodeRing>();

  constructor(private readonly store: Store) {
    // Opened here, outside any transaction (see docs/cluster.md on LMDB and aborted transactions).
    this.db = store.openDatabase<Buffer, string>(CONSOLE_DB, { encoding: 'binary' });
  }

  private range(uid: string) {
    // ':' < ';': every key of this uid and nothing else.
    return this.db.getRange({ start: `${uid}:`, end: `${uid};` });
  }

  private ring(uid: string): NodeRing {
    let ring = this.rings.get(uid);
    if (!ring) {
      ring = { segments: [], total: 0, nextSeq: 1 };
      for (const { key: k, value } of this.range(uid)) {
        const seq = Number(k.slice(uid.length + 1));
        ring.segments.push({ seq, size: value.length });
        ring.total += value.length;
        ring.nextSeq = seq + 1;
      }
      this.rings.set(uid, ring);
    }
    return ring;
  }

  /** Append `bytes` to the node's log, keeping at most `bound` bytes; resolves once durable. */
  async append(uid: string, bytes: Buffer, bound: number): Promise<void> {
    if (bytes.length === 0) return;
    try {
      await this.store.write('console', () => {
        // Inside the transaction: callbacks run one at a time, and reads see this transaction's writes.
        const ring = this.ring(uid);
        // Bytes that would be trimmed at once are not written at all.
        const kept = bytes.length > bound ? bytes.subarray(bytes.length - bound) : bytes;
        for (let offset = 0; offset < kept.length; offset += SEGMENT_BYTES) {
          const part = kept.subarray(offset, offset + SEGMENT_BYTES);
          const seq = ring.nextSeq++;
          this.db.putSync(key(uid, seq), Buffer.from(part));
          ring.segments.push({ seq, size: part.length });
          ring.total += part.length;
        }
        while (ring.total > bound) {
          const oldest = ring.segments[0]!;
          const excess = ring.total - bound;
          if (excess >= oldest.size) {
            this.db.removeSync(key(uid, oldest.seq));
            ring.segments.shift();
            ring.total -= oldest.size;
          } else {
            const value = this.db.get(key(uid, oldest.seq))!;
            this.db.putSync(key(uid, oldest.seq), Buffer.from(value.subarray(excess)));
            oldest.size -= excess;
            ring.total -= excess;
          }
        }
      });
    } catch (err) {
      // The transaction did not commit: forget the in-memory sizes, reload them from disk.
      this.rings.delete(uid);
      throw err;
    }
  }

  /** The newest `maxBytes` bytes of the node's log (committed appends only). */
  tail(uid: string, maxBytes: number): Buffer {
    const parts: Buffer[] = [];
    let size = 0;
    for (const { value } of this.db.getRange({ start: `${uid};`, end: `${uid}:`, reverse: true })) {
      parts.push(value);
      size += value.length;
      if (size >= maxBytes) break;
    }
    const all = Buffer.concat(parts.reverse(), size);
    return size > maxBytes ? all.subarray(size - maxBytes) : all;
  }

  /** Bytes stored for the node. */
  size(uid: string): number {
    return this.ring(uid).total;
  }

  /** Delete the node's log (node deleted). Resolves once durable. */
  async clear(uid: string): Promise<void> {
    await this.store.write('console', () => {
      for (const k of Array.from(this.range(uid).map(({ key: k }) => k))) this.db.removeSync(k);
      this.rings.delete(uid);
    });
  }
}
