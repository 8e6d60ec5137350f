// The layout of keel's shared state in etcd (docs/multihead.md, "Keys"): every key under one
// prefix, so that one watch mirrors all of it into a head's replica.
//
//   <prefix>obj/<class>/<uid>            → the record, JSON
//   <prefix>idx/<class>/<index>/<key>    → uid of the record holding that unique key
//   <prefix>head/<uid>                   → a head's registration, JSON
//   <prefix>alive/<uid>                  → empty, bound to the head's etcd lease: there while it lives

/** The prefix of keel's keys unless configured otherwise. */
export const DEFAULT_PREFIX = '/keel/';

export const objectKey = (prefix: string, className: string, uid: string): string => `${prefix}obj/${className}/${uid}`;

export const indexKey = (prefix: string, className: string, index: string, key: string): string => `${prefix}idx/${className}/${index}/${key}`;

export const headKey = (prefix: string, uid: string): string => `${prefix}head/${uid}`;

export const aliveKey = (prefix: string, uid: string): string => `${prefix}alive/${uid}`;

/**
 * The end of the key range holding every key that starts with `prefix` (etcd's range_end): the
 * prefix with its last byte incremented, dropping trailing 0xff bytes (all-0xff: to the end).
 */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
