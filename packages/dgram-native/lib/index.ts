// Typed wrapper over the dgram-native addon: IPv4 UDP sockets with interface binding
// (SO_BINDTODEVICE), per-datagram arrival interface and destination (IP_PKTINFO), per-datagram
// source address / outgoing interface on send, SO_REUSEPORT, recvmmsg/sendmmsg batching, UDP GSO
// on send and (opt-in) UDP GRO on receive. Linux only. See docs/dgram-native.md.
import { EventEmitter } from 'node:events';
import { getSystemErrorMap } from 'node:util';
import { formatIPv4, parseIPv4 } from './addresses.js';
import { binding, type NativeHandle } from './binding.js';
import { BatchIndex, META_SLOTS, ReceivedView, type Datagram, type PackedBatch } from './received.js';

export { formatIPv4, interfaceIndex, interfaceName, parseIPv4 } from './addresses.js';
export type { Datagram, PackedBatch, ReceivedView } from './received.js';

/** Receive slot per message with GRO: a coalesced message holds up to 64 KiB of datagrams. */
const GRO_SLOT_SIZE = 65535;
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
  /**
   * SO_REUSEPORT: sockets bound to the same address/port share incoming flows (by 4-tuple hash);
   * a connected member gets all of its peer's datagrams (see connect()). `'after-bind'` sets it
   * once the socket is bound: with port 0 the kernel then picks a port no socket has (set before
   * the bind, the ephemeral search may hand out a port whose reuseport group of the same user the
   * socket then joins), and later sockets may still join this one's port with `reusePort: true`.
   */
  reusePort?: boolean | 'after-bind';
  /** SO_BROADCAST: allow sending to broadcast addresses. */
  broadcast?: boolean;
  /** IP_PKTINFO on receive: report destination address and arrival interface; default true. */
  pktinfo?: boolean;
  /** Requested SO_RCVBUF in bytes (SO_RCVBUFFORCE when permitted); see recvBufferSize for the grant. */
  recvBufferSize?: number;
  /** Requested SO_SNDBUF in bytes (SO_SNDBUFFORCE when permitted); see sendBufferSize for the grant. */
  sendBufferSize?: number;
  /**
   * Messages per recvmmsg call (1..1024); default 32, 8 with `gro`. Receive memory is
   * batchSize x maxDatagramSize, or batchSize x 64 KiB with `gro`.
   */
  batchSize?: number;
  /** Largest datagram received whole (1..65535); longer ones arrive cut, flagged truncated. Default 2048. */
  maxDatagramSize?: number;
  /** Datagrams held in user space while the kernel says EAGAIN; beyond that send fails with EAGAIN. Default 4096. */
  maxQueuedDatagrams?: number;
  /**
   * UDP GSO in sendBatch: a run of equal-size datagrams to one destination (the last may be
   * shorter) goes down the stack once and is cut into datagrams by the kernel (or the NIC). If
   * the kernel refuses it (no GSO on the route, datagram over the MTU, ...) the socket falls back
   * to one message per datagram for good. Default true; receivers see ordinary datagrams.
   */
  gso?: boolean;
  /**
   * UDP GRO on receive: the kernel may hand over several datagrams of one flow as one buffer,
   * which is split again here, so listeners still see single datagrams. Costs 64 KiB of receive
   * memory per batch slot. Default false; see `gro` on the socket for whether the kernel granted it.
   */
  gro?: boolean;
  /**
   * Receive coalescing, like a NIC's interrupt moderation: after a read that emptied the receive
   * queue, wait this many milliseconds before reading again, so that a flood is read in full
   * batches instead of one wakeup per datagram. The first datagram after a quiet period is
   * still read at once; later ones wait up to the window (+1 ms timer granularity), and the
   * receive buffer must hold what arrives meanwhile. For bulk receivers only: a lock-step
   * protocol would wait the window on every exchange. Default 0 (read as soon as readable).
   */
  receiveCoalescingMs?: number;
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

/**
 * What the TFTP send pump starts from (see UdpSocket.startTftpPump): the protocol core's state of
 * a read transfer whose whole window is outstanding.
 */
export interface TftpPumpStart {
  /** The client's address and port (its TID): only its datagrams are answered. */
  address: string;
  port: number;
  /** Negotiated blksize (1..65464): every block the pump sends is exactly this long. */
  blockSize: number;
  /** Negotiated windowsize (1..64): the pump sends a window per ACK of the previous window's last block. */
  windowSize: number;
  /** Wire number (mod 65536) of the next block to send; the window up to the block before is outstanding. */
  nextBlock: number;
  /**
   * The file's bytes from block nextBlock on: in memory, or `length` bytes of an open regular
   * file at `offset`, which the pump maps read-only (its own mapping: `fd` may be closed
   * meanwhile) and sends from. The pump sends only whole windows of whole blocks from them.
   */
  data: Buffer | TftpPumpFile;
}

/** Bytes of a file the pump reads itself: `length` of them at `offset` of `fd`. */
export interface TftpPumpFile {
  fd: number;
  offset: number;
  length: number;
}

/** What the pump did between start and stop, for the protocol core to catch up on. */
export interface TftpPumpProgress {
  /** ACKs of a window's last block answered, each with the next window: the last window sent is outstanding. */
  windows: number;
  /** Round trip of the last window the pump both sent and saw acknowledged; undefined if none. */
  lastRttMs: number | undefined;
  /** Since the pump sent its last window (0 if windows is 0). */
  msSinceLastSend: number;
  /** Windows the kernel took only in part (the rest is lost, as on the wire: the core's timer resends). */
  shortSends: number;
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
  /** Datagrams received (after splitting GRO messages). */
  received: number;
  truncated: number;
  /** Datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL counter). */
  kernelDrops: number;
  /** Datagrams waiting in the send queue. */
  queued: number;
  /** sendBatch currently uses GSO (false if disabled by option, unsupported, or after a refusal). */
  gso: boolean;
  /** GSO messages the kernel accepted (each carried several datagrams). */
  gsoSends: number;
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
  /**
   * The same datagrams as 'batch', before it, without an object and a Buffer per datagram
   * (payloads in one Buffer, fields read by index): the cheap way to receive floods.
   */
  packed: [PackedBatch];
  /**
   * The same datagrams again, after every other event, read in place in the receive slab: no
   * copy, no object per datagram. The view is valid only during the listener (the socket's next
   * receive overwrites the slab).
   */
  view: [ReceivedView];
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
  /** UDP GRO is on: asked for with `gro` and supported by the kernel. */
  readonly gro: boolean;

  #handle: NativeHandle | undefined;
  readonly #slab: Buffer;
  readonly #meta: Uint32Array;
  readonly #maxDatagramSize: number;
  readonly #maxQueued: number;
  #local: { address: string; port: number };
  #queue: QueuedDatagram[] = [];
  #closed: Promise<void> | undefined;
  #received = 0;
  #truncated = 0;
  #kernelDrops = 0;
  #gsoSendsAtClose = 0;
  readonly #index = new BatchIndex();
  readonly #view: ReceivedView;

  /** Opens, configures and binds the socket; throws DgramNativeError (e.g. ENODEV, EADDRINUSE). */
  constructor(options: SocketOptions = {}) {
    super();
    const gro = options.gro ?? false;
    const batchSize = checkRange('batchSize', options.batchSize ?? (gro ? 8 : 32), 1, 1024);
    this.#maxDatagramSize = checkRange('maxDatagramSize', options.maxDatagramSize ?? 2048, 1, 65535);
    this.#maxQueued = checkRange('maxQueuedDatagrams', options.maxQueuedDatagrams ?? 4096, 0, 2 ** 31);
    const slotSize = gro ? GRO_SLOT_SIZE : this.#maxDatagramSize;
    this.#slab = Buffer.allocUnsafeSlow(batchSize * slotSize);
    this.#meta = new Uint32Array(batchSize * META_SLOTS);
    this.#view = new ReceivedView(this.#slab, this.#meta, this.#index);
    const result = binding.open(
      {
        bindAddress: parseIPv4(options.bindAddress ?? '0.0.0.0'),
        port: checkPort(options.port ?? 0),
        interface: options.interface,
        reuseAddr: options.reuseAddr ?? false,
        reusePort: options.reusePort === 'after-bind' ? 2 : options.reusePort ? 1 : 0,
        broadcast: options.broadcast ?? false,
        pktinfo: options.pktinfo ?? true,
        recvBufferSize: checkRange('recvBufferSize', options.recvBufferSize ?? 0, 0, 2 ** 31 - 1),
        sendBufferSize: checkRange('sendBufferSize', options.sendBufferSize ?? 0, 0, 2 ** 31 - 1),
        batchSize,
        slotSize,
        gso: options.gso ?? true,
        gro,
        receiveCoalescingMs: checkRange('receiveCoalescingMs', options.receiveCoalescingMs ?? 0, 0, 1000),
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
    this.gro = info[4] === 1;
  }

  /** Bound local address and port. */
  address(): { address: string; port: number } {
    return { ...this.#local };
  }

  /**
   * Connects the socket to one peer (connect(2); calling it again changes the peer): the kernel then
   * delivers only that peer's datagrams to it, and datagrams to the peer (any send or sendBatch
   * addressed to it) go without a destination address, so the
   * kernel uses the socket's cached route instead of looking one up per send. Sending to other
   * addresses still works. In a reuseport group the connected member gets all of its peer's
   * datagrams and the unconnected members everyone else's. ICMP errors about the peer (e.g. port
   * unreachable) then come back as 'error' events (ECONNREFUSED). Throws DgramNativeError
   * (ENETUNREACH, ...) or ERR_SOCKET_CLOSED.
   */
  connect(address: string, port: number): void {
    const handle = this.#openHandle('connect');
    if (port === 0) throw Object.assign(new RangeError('cannot connect to port 0'), { code: 'ERR_SOCKET_BAD_PORT' });
    const result = binding.connect(handle, parseIPv4(address), checkPort(port));
    if (result < 0) throw new DgramNativeError('connect', -result, `${address}:${port}`);
    // A socket bound to 0.0.0.0 now has the route's source address.
    const info = binding.info(handle);
    if (typeof info !== 'number') this.#local = { address: formatIPv4(info[0]), port: info[1] };
  }

  stats(): SocketStats {
    const [gso, gsoSends] = this.#handle ? binding.sendStats(this.#handle) : [0, this.#gsoSendsAtClose];
    return { received: this.#received, truncated: this.#truncated, kernelDrops: this.#kernelDrops, queued: this.#queue.length, gso: gso === 1, gsoSends };
  }

  /**
   * Sends one datagram. Returns true if the kernel took it, false if it was queued because the
   * kernel said EAGAIN (wait for 'drain' before sending more). Throws DgramNativeError when the
   * kernel rejects it (ENETUNREACH, EACCES for a broadcast without `broadcast`, ...), when the
   * queue is full (EAGAIN) or when the socket is closed (ERR_SOCKET_CLOSED). `data` may be
   * reused once this returns (the send queue keeps a copy).
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
   * The buffers may be reused once this returns (the send queue keeps copies).
   */
  sendBatch(datagrams: readonly OutgoingDatagram[]): SendBatchResult {
    const handle = this.#openHandle('sendmmsg');
    const count = datagrams.length;
    if (sendMeta.length < count * SEND_SLOTS) sendMeta = new Uint32Array(count * SEND_SLOTS * 2);
    // A batch usually goes to one destination: parse each distinct address string once.
    let lastAddress: string | undefined;
    let lastAddressValue = 0;
    for (let i = 0; i < count; i++) {
      const d = datagrams[i]!;
      const o = i * SEND_SLOTS;
      if (d.address !== lastAddress) {
        lastAddressValue = parseIPv4(d.address);
        lastAddress = d.address;
      }
      sendMeta[o] = lastAddressValue;
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
        result.failed.push({ index: i, error: new DgramNativeError('sendmmsg', EAGAIN, `send queue full (maxQueuedDatagrams ${this.#maxQueued})`) });
      } else {
        this.#queue.push({ ...datagram, data: new Uint8Array(datagram.data) }); // see #enqueue
        result.queued++;
      }
    }
    if (result.queued > 0) binding.watchWritable(handle, true);
    sendBuffers.length = 0; // do not keep the caller's buffers alive
    return result;
  }

  /**
   * Arms the TFTP send pump on this (transfer) socket: while armed, the addon reads the socket
   * itself and answers the client's ACK of the outstanding window's last block with the next
   * window of DATA (4-byte header + blockSize bytes of `data`, GSO runs for windows), without a
   * call into JS, up to 64 rounds per wakeup with a read right after each send. Everything else —
   * another source, an ERROR, a duplicate, partial or old ACK, garbage, the end of `data` (the
   * last, short block is never the pump's), a file that cannot give a whole window (a read error,
   * a file that shrank), a send the kernel refuses — disarms the pump and is
   * delivered by the usual events ('view', 'message', ...), together with the rest of its batch.
   * Call stopTftpPump() before acting on any of it. Returns false (pump not armed) while sends are
   * queued after EAGAIN, so that order is kept. Throws for a closed socket, invalid arguments or a
   * GRO socket.
   */
  startTftpPump(start: TftpPumpStart): boolean {
    const handle = this.#openHandle('tftpPumpStart');
    if (this.#queue.length > 0) return false;
    checkRange('blockSize', start.blockSize, 1, 65464);
    checkRange('windowSize', start.windowSize, 1, 64);
    checkRange('nextBlock', start.nextBlock, 0, 65535);
    const { data } = start;
    const result = Buffer.isBuffer(data)
      ? binding.tftpPumpStart(handle, data, parseIPv4(start.address), checkPort(start.port), start.blockSize, start.windowSize, start.nextBlock)
      : binding.tftpPumpStartFile(handle, data.fd, data.offset, data.length, parseIPv4(start.address), checkPort(start.port), start.blockSize, start.windowSize, start.nextBlock);
    if (result < 0) throw new DgramNativeError('tftpPumpStart', -result, this.gro ? 'not on a GRO socket' : undefined);
    return true;
  }

  /** Disarms the TFTP send pump (if armed) and returns what it did since the last stop. */
  stopTftpPump(): TftpPumpProgress {
    if (this.#handle === undefined) return { windows: 0, lastRttMs: undefined, msSinceLastSend: 0, shortSends: 0 };
    const [windows, lastRttMs, msSinceLastSend, shortSends] = binding.tftpPumpStop(this.#handle);
    return { windows, lastRttMs: lastRttMs < 0 ? undefined : lastRttMs, msSinceLastSend, shortSends };
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
    if (handle) this.#gsoSendsAtClose = binding.sendStats(handle)[1];
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
    if (this.#queue.length >= this.#maxQueued) throw new DgramNativeError(syscall, EAGAIN, `send queue full (maxQueuedDatagrams ${this.#maxQueued})`);
    // A copy: the caller may reuse its buffer once send() returns, as when the kernel took it.
    this.#queue.push({ ...datagram, data: new Uint8Array(datagram.data) });
    if (this.#queue.length === 1) binding.watchWritable(this.#handle!, true);
    return false;
  }

  #onNativeEvent(event: number, value: number): void {
    if (event === EV_BATCH) this.#deliver(value);
    else if (event === EV_WRITABLE) this.#flushQueue();
    else this.emit('error', new DgramNativeError('recvmmsg', -value));
  }

  #deliver(messages: number): void {
    const index = this.#index;
    index.fill(this.#meta, messages, this.#maxDatagramSize);
    this.#received += index.count;
    this.#truncated += index.truncated;
    if (index.kernelDrops > this.#kernelDrops) this.#kernelDrops = index.kernelDrops;
    // Payloads are copied out only in the form some listener takes.
    if (this.listenerCount('packed') > 0) this.emit('packed', index.packed(this.#slab, this.#meta, messages));
    const wantsBatch = this.listenerCount('batch') > 0;
    const wantsMessages = this.listenerCount('message') > 0;
    if (this.#handle !== undefined && (wantsBatch || wantsMessages)) {
      const datagrams = index.datagrams(this.#slab, this.#meta);
      if (wantsBatch) this.emit('batch', datagrams);
      for (let i = 0; wantsMessages && i < datagrams.length && this.#handle !== undefined; i++) this.emit('message', datagrams[i]!);
    }
    if (this.#handle !== undefined && this.listenerCount('view') > 0) {
      this.#view.count = index.count;
      this.emit('view', this.#view);
    }
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
