// Splitting a received native batch into datagrams, and PackedBatch, the allocation-light view
// of a batch for the 'packed' event.
//
// The native side writes one metadata entry per received message (META_SLOTS uint32 each, layout
// below, mirroring src/dgram_native.c) and moves all payloads together at the start of the slab.
// A message is one datagram or, with UDP GRO, several datagrams from one source back to back,
// each M_SEGMENT bytes long except the last.
import { memoizedFormatIPv4, interfaceName } from './addresses.js';
import { binding } from './binding.js';

export const { META_SLOTS } = binding;
export const M_LEN = 0;
export const M_FLAGS = 1;
export const M_SRC_ADDR = 2;
export const M_SRC_PORT = 3;
export const M_DST_ADDR = 4;
export const M_LOCAL_ADDR = 5;
export const M_IFINDEX = 6;
export const M_DROPS = 7;
export const M_SEGMENT = 8;
export const FLAG_TRUNCATED = 1;
export const FLAG_PKTINFO = 2;

/** Per datagram in a BatchIndex: payload offset in the slab, kept length, message, truncated (0/1). */
const I_OFFSET = 0;
const I_LENGTH = 1;
const I_MESSAGE = 2;
const I_TRUNCATED = 3;
const INDEX_SLOTS = 4;

export interface Datagram {
  /** Payload; a copy owned by the receiver. */
  data: Buffer;
  /** Source address and port. */
  address: string;
  port: number;
  /** Destination address of the IP header (e.g. 255.255.255.255 for a limited broadcast); needs pktinfo. */
  destinationAddress: string | undefined;
  /** Local address of the arrival interface the kernel would use to reply (ipi_spec_dst); needs pktinfo. */
  localAddress: string | undefined;
  /** Arrival interface; needs pktinfo. */
  ifindex: number | undefined;
  ifname: string | undefined;
  /** The datagram was longer than maxDatagramSize and was cut. */
  truncated: boolean;
}

/** Where each datagram of the current batch is; reused from batch to batch. */
export class BatchIndex {
  /** Datagrams in the batch. */
  count = 0;
  /** Bytes of all payloads at the start of the slab. */
  bytes = 0;
  /** Datagrams that were cut to maxDatagramSize. */
  truncated = 0;
  /** Highest SO_RXQ_OVFL counter seen in the batch. */
  kernelDrops = 0;
  entries = new Uint32Array(64 * INDEX_SLOTS);

  /** Indexes the `messages` messages described by `meta`, cutting datagrams to `maxDatagramSize`. */
  fill(meta: Uint32Array, messages: number, maxDatagramSize: number): void {
    let count = 0;
    let offset = 0;
    let truncated = 0;
    let drops = 0;
    for (let m = 0; m < messages; m++) {
      const o = m * META_SLOTS;
      const length = meta[o + M_LEN]!;
      const segment = meta[o + M_SEGMENT]! || length;
      const cutByKernel = (meta[o + M_FLAGS]! & FLAG_TRUNCATED) !== 0;
      const end = offset + length;
      do {
        if ((count + 1) * INDEX_SLOTS > this.entries.length) {
          const grown = new Uint32Array(this.entries.length * 2);
          grown.set(this.entries);
          this.entries = grown;
        }
        const received = Math.min(segment, end - offset);
        // With GRO the slot is 64 KiB, so maxDatagramSize is applied here rather than by the kernel.
        const kept = Math.min(received, maxDatagramSize);
        const cut = cutByKernel || kept < received;
        const e = count * INDEX_SLOTS;
        this.entries[e + I_OFFSET] = offset;
        this.entries[e + I_LENGTH] = kept;
        this.entries[e + I_MESSAGE] = m;
        this.entries[e + I_TRUNCATED] = cut ? 1 : 0;
        if (cut) truncated++;
        count++;
        offset += received;
      } while (offset < end);
      drops = Math.max(drops, meta[o + M_DROPS]!);
    }
    this.count = count;
    this.bytes = offset;
    this.truncated = truncated;
    this.kernelDrops = drops;
  }

  /** Datagram objects, each payload copied out of the slab into its own Buffer. */
  datagrams(slab: Buffer, meta: Uint32Array): Datagram[] {
    const datagrams: Datagram[] = new Array(this.count);
    const view = new DatagramView(slab, meta, this.entries);
    for (let i = 0; i < this.count; i++) {
      const e = i * INDEX_SLOTS;
      const data = Buffer.allocUnsafe(this.entries[e + I_LENGTH]!);
      slab.copy(data, 0, this.entries[e + I_OFFSET]!, this.entries[e + I_OFFSET]! + data.length);
      datagrams[i] = view.datagram(i, data);
    }
    return datagrams;
  }

  /** A PackedBatch owning copies of the payloads, the index and the metadata. */
  packed(slab: Buffer, meta: Uint32Array, messages: number): PackedBatch {
    const payloads = Buffer.allocUnsafe(this.bytes);
    slab.copy(payloads, 0, 0, this.bytes);
    return new PackedBatch(this.count, payloads, meta.slice(0, messages * META_SLOTS), this.entries.slice(0, this.count * INDEX_SLOTS));
  }
}

/** Reads the fields of datagram i from a payload buffer, message metadata and an index. */
class DatagramView {
  // A batch usually comes from few peers through one interface: format each value once.
  readonly #format = memoizedFormatIPv4();
  #lastIfindex = -1;
  #lastIfname: string | undefined;

  constructor(
    readonly payloads: Buffer,
    readonly meta: Uint32Array,
    readonly entries: Uint32Array,
  ) {}

  metaOf(i: number, slot: number): number {
    return this.meta[this.entries[i * INDEX_SLOTS + I_MESSAGE]! * META_SLOTS + slot]!;
  }

  data(i: number): Buffer {
    const offset = this.entries[i * INDEX_SLOTS + I_OFFSET]!;
    return this.payloads.subarray(offset, offset + this.entries[i * INDEX_SLOTS + I_LENGTH]!);
  }

  address(i: number): string {
    return this.#format(this.metaOf(i, M_SRC_ADDR));
  }

  datagram(i: number, data: Buffer): Datagram {
    const hasPktinfo = (this.metaOf(i, M_FLAGS) & FLAG_PKTINFO) !== 0;
    const ifindex = hasPktinfo ? this.metaOf(i, M_IFINDEX) : undefined;
    if (ifindex !== undefined && ifindex !== this.#lastIfindex) {
      this.#lastIfindex = ifindex;
      this.#lastIfname = interfaceName(ifindex);
    }
    return {
      data,
      address: this.address(i),
      port: this.metaOf(i, M_SRC_PORT),
      destinationAddress: hasPktinfo ? this.#format(this.metaOf(i, M_DST_ADDR)) : undefined,
      localAddress: hasPktinfo ? this.#format(this.metaOf(i, M_LOCAL_ADDR)) : undefined,
      ifindex,
      ifname: ifindex === undefined ? undefined : this.#lastIfname,
      truncated: this.entries[i * INDEX_SLOTS + I_TRUNCATED] === 1,
    };
  }
}

/**
 * All datagrams of one receive batch without an object per datagram: the payloads back to back
 * in one Buffer, fields read by index. The receiver owns it (it may be kept); `data(i)` is a view
 * into `payloads`, so keeping one datagram keeps the whole batch's payloads.
 */
export class PackedBatch {
  readonly #view: DatagramView;

  /** @internal built by the socket */
  constructor(
    /** Number of datagrams. */
    readonly count: number,
    /** All payloads, back to back. */
    readonly payloads: Buffer,
    meta: Uint32Array,
    entries: Uint32Array,
  ) {
    this.#view = new DatagramView(payloads, meta, entries);
  }

  /** Payload of datagram i: a view into `payloads`. */
  data(i: number): Buffer {
    return this.#view.data(i);
  }

  /** Byte length of datagram i. */
  length(i: number): number {
    return this.#view.entries[i * INDEX_SLOTS + I_LENGTH]!;
  }

  /** Source address of datagram i. */
  address(i: number): string {
    return this.#view.address(i);
  }

  /** Source port of datagram i. */
  port(i: number): number {
    return this.#view.metaOf(i, M_SRC_PORT);
  }

  /** Datagram i as the object 'message' delivers (its data a view into `payloads`). */
  datagram(i: number): Datagram {
    return this.#view.datagram(i, this.#view.data(i));
  }
}

/**
 * The datagrams of the socket's last receive, read in place in its receive slab (no copy, no
 * object per datagram): what the 'view' event hands over. Valid only during the listener (the
 * socket's next receive overwrites the slab); `data(i)` is a view into the slab, so copy what
 * must be kept.
 */
export class ReceivedView {
  /** Datagrams in the view. */
  count = 0;
  readonly #slab: Buffer;
  readonly #meta: Uint32Array;
  readonly #index: BatchIndex;
  readonly #format = memoizedFormatIPv4();

  /** @internal built by the socket */
  constructor(slab: Buffer, meta: Uint32Array, index: BatchIndex) {
    this.#slab = slab;
    this.#meta = meta;
    this.#index = index;
  }

  /** Payload of datagram i: a view into the receive slab. */
  data(i: number): Buffer {
    const offset = this.#index.entries[i * INDEX_SLOTS + I_OFFSET]!;
    return this.#slab.subarray(offset, offset + this.#index.entries[i * INDEX_SLOTS + I_LENGTH]!);
  }

  /** Byte length of datagram i. */
  length(i: number): number {
    return this.#index.entries[i * INDEX_SLOTS + I_LENGTH]!;
  }

  /** Source address of datagram i as a host-order uint32 (parseIPv4's form): compare without formatting. */
  addressValue(i: number): number {
    return this.#metaOf(i, M_SRC_ADDR);
  }

  /** Source address of datagram i. */
  address(i: number): string {
    return this.#format(this.#metaOf(i, M_SRC_ADDR));
  }

  /** Source port of datagram i. */
  port(i: number): number {
    return this.#metaOf(i, M_SRC_PORT);
  }

  /** Datagram i was longer than maxDatagramSize and was cut. */
  truncated(i: number): boolean {
    return this.#index.entries[i * INDEX_SLOTS + I_TRUNCATED] === 1;
  }

  #metaOf(i: number, slot: number): number {
    return this.#meta[this.#index.entries[i * INDEX_SLOTS + I_MESSAGE]! * META_SLOTS + slot]!;
  }
}
