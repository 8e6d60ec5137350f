// Typed wrapper over the dgram-native addon: IPv4 UDP sockets with interface binding
// (SO_BINDTODEVICE), per-datagram arrival interface and destination (IP_PKTINFO), per-datagram
// source address / outgoing interface on send, SO_REUSEPORT, and recvmmsg/sendmmsg batching.
// Linux only. See docs/dgram-native.md.
import { EventEmitter } from 'node:events';
import { getSystemErrorMap } from 'node:util';
import { binding, type NativeHandle } from './binding.js';

const { META_SLOTS } = binding;
// Metadata slots per received datagram; mirrors the enum in src/dgram_native.c.
const M_LEN = 0;
const M_FLAGS = 1;
const M_SRC_ADDR = 2;
const M_SRC_PORT = 3;
const M_DST_ADDR = 4;
const M_LOCAL_ADDR = 5;
const M_IFINDEX = 6;
const M_DROPS = 7;
const FLAG_TRUNCATED = 1;
const FLAG_PKTINFO = 2;
const SEND_SLOTS = 4;
const EV_BATCH = 0;
const EV_WRITABLE = 1;
const EAGAIN = 11;
const EBADF = 9;

export interface SocketOptions {
  /** Local IPv4 address to bind; default 0.0.0.0 (needed to receive broadcasts). */
  bindAddress?: string;
  /** Local port; default 0 (ephemeral, read it back with address()). */
  port?: number;
  /** Interface name for SO_BINDTODEVICE: receive from and send through this interface only. */
  interface?: string;
  reuseAddr?: boolean;
  /** SO_REUSEPORT: sockets bound to the same address/port share incoming flows (by 4-tuple hash). */
  reusePort?: boolean;
  /** SO_BROADCAST: allow sending to broadcast addresses. */
  broadcast?: boolean;
  /** IP_PKTINFO on receive: report destination address and arrival interface; default true. */
  pktinfo?: boolean;
  /** Requested SO_RCVBUF in bytes (SO_RCVBUFFORCE when permitted); see recvBufferSize for the grant. */
  recvBufferSize?: number;
  /** Requested SO_SNDBUF in bytes (SO_SNDBUFFORCE when permitted); see sendBufferSize for the grant. */
  sendBufferSize?: number;
  /** Datagrams per recvmmsg call (1..1024); default 32. Receive memory is batchSize x maxDatagramSize. */
  batchSize?: number;
  /** Largest datagram received whole (1..65535); longer ones arrive cut, flagged truncated. Default 2048. */
  maxDatagramSize?: number;
  /** Datagrams held in user space while the kernel says EAGAIN; beyond that send fails with EAGAIN. Default 4096. */
  maxQueuedDatagrams?: number;
}

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

export interface SendOptions {
  /** Source address for this datagram (IP_PKTINFO ipi_spec_dst); must be local. */
  sourceAddress?: string;
  /** Outgoing interface for this datagram (IP_PKTINFO ipi_ifindex), e.g. a received Datagram's ifindex. */
  ifindex?: number;
}

export interface OutgoingDatagram extends SendOptions {
  data: Uint8Array;
  port: number;
  address: string;
}

export interface SendBatchResult {
  /** Handed to the kernel now. */
  sent: number;
  /** Held in the send queue because the kernel said EAGAIN; sent on 'drain'. */
  queued: number;
  /** Rejected by the kernel (e.g. ENETUNREACH), by index into the batch. */
  failed: { index: number; error: DgramNativeError }[];
}

export interface SocketStats {
  received: number;
  truncated: number;
  /** Datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL counter). */
  kernelDrops: number;
  /** Datagrams waiting in the send queue. */
  queued: number;
}

const systemErrors = getSystemErrorMap();

/** A failed socket operation: `code` is the errno name (ENODEV, EADDRINUSE, ...) or ERR_SOCKET_CLOSED. */
export class DgramNativeError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(syscall: string, errno: number, detail?: string, code?: string) {
    const [name, description] = systemErrors.get(-errno) ?? [`errno ${errno}`, 'unknown error'];
    const resolvedCode = code ?? name;
    super(`${syscall} ${resolvedCode}${code ? '' : ` (${description})`}${detail ? `: ${detail}` : ''}`);
    this.name = 'DgramNativeError';
    this.code = resolvedCode;
    this.errno = errno;
    this.syscall = syscall;
  }
}

function socketClosedError(syscall: string): DgramNativeError {
  return new DgramNativeError(syscall, EBADF, 'socket is closed', 'ERR_SOCKET_CLOSED');
}

/** Parses a dotted-quad IPv4 address to a host-order uint32; throws TypeError otherwise. */
export function parseIPv4(address: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let valid = address.length <= 15;
  for (let i = 0; valid && i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // no leading zeros: inet_aton would read them as octal
      valid = !(digits === 1 && octet === 0);
      octet = octet * 10 + (c - 48);
      digits++;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      valid = false;
    }
    valid &&= octet <= 255;
  }
  if (!valid || dots !== 3 || digits === 0) {
    throw Object.assign(new TypeError(`not an IPv4 address: ${JSON.stringify(address)}`), { code: 'ERR_INVALID_IP_ADDRESS' });
  }
  return (value * 256 + octet) >>> 0;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** formatIPv4 remembering the last few values (addresses repeat within a receive batch). */
function memoizedFormatIPv4(): (value: number) => string {
  const values = [-1, -1, -1];
  const strings = ['', '', ''];
  let next = 0;
  return (value) => {
    for (let i = 0; i < 3; i++) if (values[i] === value) return strings[i]!;
    const text = formatIPv4(value);
    values[next] = value;
    strings[next] = text;
    next = (next + 1) % 3;
    return text;
  };
}

// Interface names are looked up per index once per interval, not per datagram (an ioctl each).
const IFNAME_CACHE_MS = 10_000;
const ifnameCache = new Map<number, string | undefined>();
let ifnameCacheSince = 0;

/** Name of the interface with this index (undefined if none). */
export function interfaceName(ifindex: number): string | undefined {
  const now = Date.now();
  if (now - ifnameCacheSince > IFNAME_CACHE_MS) {
    ifnameCache.clear();
    ifnameCacheSince = now;
  }
  if (ifnameCache.has(ifindex)) return ifnameCache.get(ifindex);
  const name = binding.interfaceName(ifindex) ?? undefined;
  ifnameCache.set(ifindex, name);
  return name;
}

/** Index of the named interface (undefined if none). */
export function interfaceIndex(name: string): number | undefined {
  return binding.interfaceIndex(name) || undefined;
}

interface QueuedDatagram {
  data: Uint8Array;
  address: number;
  port: number;
  sourceAddress: number;
  ifindex: number;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw Object.assign(new RangeError(`invalid port: ${port}`), { code: 'ERR_SOCKET_BAD_PORT' });
  }
  return port;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw Object.assign(new RangeError(`${name} must be an integer in ${min}..${max}, got ${value}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  return value;
}

// Shared across sockets: sendBatch packs into these instead of allocating per call (JS is
// single-threaded and the native call copies everything it needs before returning).
let sendMeta = new Uint32Array(64 * SEND_SLOTS);
const sendBuffers: Uint8Array[] = [];

export interface UdpSocketEvents {
  /** One received datagram. */
  message: [Datagram];
  /** All datagrams of one recvmmsg call, before their 'message' events. */
  batch: [Datagram[]];
  /** The send queue emptied after backpressure. */
  drain: [];
  /** An asynchronous failure: receive error, or a queued datagram the kernel rejected. */
  error: [DgramNativeError];
  close: [];
}

export class UdpSocket extends EventEmitter<UdpSocketEvents> {
  /** Granted SO_RCVBUF as reported by the kernel (which doubles the request for bookkeeping). */
  readonly recvBufferSize: number;
  /** Granted SO_SNDBUF as reported by the kernel. */
  readonly sendBufferSize: number;

  #handle: NativeHandle | undefined;
  readonly #slab: Buffer;
  readonly #meta: Uint32Array;
  readonly #maxDatagramSize: number;
  readonly #maxQueued: number;
  readonly #local: { address: string; port: number };
  #queue: QueuedDatagram[] = [];
  #closed: Promise<void> | undefined;
  #received = 0;
  #truncated = 0;
  #kernelDrops = 0;

  /** Opens, configures and binds the socket; throws DgramNativeError (e.g. ENODEV, EADDRINUSE). */
  constructor(options: SocketOptions = {}) {
    super();
    const batchSize = checkRange('batchSize', options.batchSize ?? 32, 1, 1024);
    this.#maxDatagramSize = checkRange('maxDatagramSize', options.maxDatagramSize ?? 2048, 1, 65535);
    this.#maxQueued = checkRange('maxQueuedDatagrams', options.maxQueuedDatagrams ?? 4096, 0, 2 ** 31);
    this.#slab = Buffer.allocUnsafeSlow(batchSize * this.#maxDatagramSize);
    this.#meta = new Uint32Array(batchSize * META_SLOTS);
    const result = binding.open(
      {
        bindAddress: parseIPv4(options.bindAddress ?? '0.0.0.0'),
        port: checkPort(options.port ?? 0),
        interface: options.interface,
        reuseAddr: options.reuseAddr ?? false,
        reusePort: options.reusePort ?? false,
        broadcast: options.broadcast ?? false,
        pktinfo: options.pktinfo ?? true,
        recvBufferSize: checkRange('recvBufferSize', options.recvBufferSize ?? 0, 0, 2 ** 31 - 1),
        sendBufferSize: checkRange('sendBufferSize', options.sendBufferSize ?? 0, 0, 2 ** 31 - 1),
        batchSize,
        maxDatagramSize: this.#maxDatagramSize,
      },
      this.#slab,
      this.#meta,
      (event, value) => this.#onNativeEvent(event, value),
    );
    if (!('handle' in result)) {
      const detail =
        result.syscall === 'setsockopt(SO_BINDTODEVICE)'
          ? `interface ${JSON.stringify(options.interface)}`
          : result.syscall === 'bind'
            ? `${options.bindAddress ?? '0.0.0.0'}:${options.port ?? 0}`
            : undefined;
      throw new DgramNativeError(result.syscall, result.errno, detail);
    }
    this.#handle = result.handle;
    const info = binding.info(this.#handle);
    if (typeof info === 'number') throw new DgramNativeError('getsockname', -info);
    this.#local = { address: formatIPv4(info[0]), port: info[1] };
    this.recvBufferSize = info[2];
    this.sendBufferSize = info[3];
  }

  /** Bound local address and port. */
  address(): { address: string; port: number } {
    return { ...this.#local };
  }

  stats(): SocketStats {
    return { received: this.#received, truncated: this.#truncated, kernelDrops: this.#kernelDrops, queued: this.#queue.length };
  }

  /**
   * Sends one datagram. Returns true if the kernel took it, false if it was queued because the
   * kernel said EAGAIN (wait for 'drain' before sending more). Throws DgramNativeError when the
   * kernel rejects it (ENETUNREACH, EACCES for a broadcast without `broadcast`, ...), when the
   * queue is full (EAGAIN) or when the socket is closed (ERR_SOCKET_CLOSED).
   */
  send(data: Uint8Array, port: number, address: string, options?: SendOptions): boolean {
    const handle = this.#openHandle('sendmsg');
    const datagram: QueuedDatagram = {
      data,
      address: parseIPv4(address),
      port: checkPort(port),
      sourceAddress: options?.sourceAddress === undefined ? 0 : parseIPv4(options.sourceAddress),
      ifindex: options?.ifindex ?? 0,
    };
    if (this.#queue.length > 0) return this.#enqueue(datagram, 'sendmsg');
    const result = binding.send(handle, data, datagram.address, datagram.port, datagram.sourceAddress, datagram.ifindex);
    if (result >= 0) return true;
    if (result === -EAGAIN) return this.#enqueue(datagram, 'sendmsg');
    throw new DgramNativeError('sendmsg', -result, `${address}:${port}`);
  }

  /**
   * Sends many datagrams with sendmmsg (one syscall per 64). A datagram the kernel rejects does
   * not stop the others; see SendBatchResult. Throws only for invalid arguments or a closed socket.
   */
  sendBatch(datagrams: readonly OutgoingDatagram[]): SendBatchResult {
    const handle = this.#openHandle('sendmmsg');
    const count = datagrams.length;
    if (sendMeta.length < count * SEND_SLOTS) sendMeta = new Uint32Array(count * SEND_SLOTS * 2);
    for (let i = 0; i < count; i++) {
      const d = datagrams[i]!;
      const o = i * SEND_SLOTS;
      sendMeta[o] = parseIPv4(d.address);
      sendMeta[o + 1] = checkPort(d.port);
      sendMeta[o + 2] = d.sourceAddress === undefined ? 0 : parseIPv4(d.sourceAddress);
      sendMeta[o + 3] = d.ifindex ?? 0;
      sendBuffers[i] = d.data;
    }
    const result: SendBatchResult = { sent: 0, queued: 0, failed: [] };
    let start = 0;
    if (this.#queue.length === 0) {
      while (start < count) {
        const n = binding.sendBatch(handle, sendBuffers, sendMeta, start, count - start);
        if (n > 0) {
          result.sent += n;
          start += n;
        } else if (n === -EAGAIN) {
          break;
        } else {
          const d = datagrams[start]!;
          result.failed.push({ index: start, error: new DgramNativeError('sendmmsg', -n, `${d.address}:${d.port}`) });
          start++;
        }
      }
    }
    for (let i = start; i < count; i++) {
      const o = i * SEND_SLOTS;
      const datagram = { data: sendBuffers[i]!, address: sendMeta[o]!, port: sendMeta[o + 1]!, sourceAddress: sendMeta[o + 2]!, ifindex: sendMeta[o + 3]! };
      if (this.#queue.length >= this.#maxQueued) {
        result.failed.push({ index: i, error: new DgramNativeError('sendmmsg', EAGAIN, 'send queue full') });
      } else {
        this.#queue.push(datagram);
        result.queued++;
      }
    }
    if (result.queued > 0) binding.watchWritable(handle, true);
    sendBuffers.length = 0; // do not keep the caller's buffers alive
    return result;
  }

  /** Whether the open socket keeps the process alive (default true), as for node:dgram. */
  ref(): this {
    if (this.#handle) binding.setRef(this.#handle, true);
    return this;
  }

  unref(): this {
    if (this.#handle) binding.setRef(this.#handle, false);
    return this;
  }

  /**
   * Stops receiving at once (no 'message' after this call, even within the current batch) and
   * discards queued datagrams; the fd is closed on the next loop turn, then 'close' is emitted
   * and the promise resolves. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    const handle = this.#handle;
    this.#handle = undefined;
    this.#queue = [];
    this.#closed = new Promise((resolve) => {
      binding.close(handle!, () => {
        this.emit('close');
        resolve();
      });
    });
    return this.#closed;
  }

  #openHandle(syscall: string): NativeHandle {
    if (this.#handle === undefined) throw socketClosedError(syscall);
    return this.#handle;
  }

  #enqueue(datagram: QueuedDatagram, syscall: string): boolean {
    if (this.#queue.length >= this.#maxQueued) throw new DgramNativeError(syscall, EAGAIN, 'send queue full');
    this.#queue.push(datagram);
    if (this.#queue.length === 1) binding.watchWritable(this.#handle!, true);
    return false;
  }

  #onNativeEvent(event: number, value: number): void {
    if (event === EV_BATCH) this.#deliver(value);
    else if (event === EV_WRITABLE) this.#flushQueue();
    else this.emit('error', new DgramNativeError('recvmmsg', -value));
  }

  #deliver(count: number): void {
    const meta = this.#meta;
    const datagrams: Datagram[] = new Array(count);
    // A batch usually comes from few peers through one interface: format each distinct value once.
    const format = memoizedFormatIPv4();
    let lastIfindex = -1;
    let lastIfname: string | undefined;
    for (let i = 0; i < count; i++) {
      const o = i * META_SLOTS;
      const length = meta[o + M_LEN]!;
      const flags = meta[o + M_FLAGS]!;
      const data = Buffer.allocUnsafe(length);
      const start = i * this.#maxDatagramSize;
      this.#slab.copy(data, 0, start, start + length);
      const hasPktinfo = (flags & FLAG_PKTINFO) !== 0;
      const ifindex = hasPktinfo ? meta[o + M_IFINDEX]! : undefined;
      if (ifindex !== undefined && ifindex !== lastIfindex) {
        lastIfindex = ifindex;
        lastIfname = interfaceName(ifindex);
      }
      datagrams[i] = {
        data,
        address: format(meta[o + M_SRC_ADDR]!),
        port: meta[o + M_SRC_PORT]!,
        destinationAddress: hasPktinfo ? format(meta[o + M_DST_ADDR]!) : undefined,
        localAddress: hasPktinfo ? format(meta[o + M_LOCAL_ADDR]!) : undefined,
        ifindex,
        ifname: ifindex === undefined ? undefined : lastIfname,
        truncated: (flags & FLAG_TRUNCATED) !== 0,
      };
      if (flags & FLAG_TRUNCATED) this.#truncated++;
      const drops = meta[o + M_DROPS]!;
      if (drops > this.#kernelDrops) this.#kernelDrops = drops;
    }
    this.#received += count;
    if (this.listenerCount('batch') > 0) this.emit('batch', datagrams);
    if (this.listenerCount('message') === 0) return;
    for (let i = 0; i < count && this.#handle !== undefined; i++) this.emit('message', datagrams[i]!);
  }

  #flushQueue(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const result = binding.send(handle, head.data, head.address, head.port, head.sourceAddress, head.ifindex);
      if (result === -EAGAIN) return; // still full: stay subscribed to writability
      this.#queue.shift();
      if (result < 0) this.emit('error', new DgramNativeError('sendmsg', -result, `${formatIPv4(head.address)}:${head.port}`));
    }
    binding.watchWritable(handle, false);
    this.emit('drain');
  }
}

/** Opens a socket; see SocketOptions. Throws DgramNativeError on failure. */
export function createSocket(options: SocketOptions = {}): UdpSocket {
  return new UdpSocket(options);
}
