// The TFTP server: owns the server-port socket, one ephemeral port per transfer (its TID, as
// RFC 1350 says; two sockets, see openTransferSockets), the retransmission timers and the
// transfers' lifecycle. Every protocol decision is the pure core's (request.ts, transfer.ts);
// files come from a TftpFileSource.
import type { Logger } from 'pino';
import type { TftpTransferEvent } from '../../boot/timeline.js';
import { createSocket, parseIPv4, type Datagram, type DgramNativeError, type ReceivedView, type TftpPumpStart, type UdpSocket } from 'dgram-native';
import { DEFAULT_BLOCK_SIZE, DEFAULT_LIMITS, negotiateOptions, type TftpLimits } from './options.js';
import { ErrorCode, Opcode, serializeError } from './packets.js';
import { classifyRequest, type ReadRequest } from './request.js';
import { isOpenError, type TftpFile, type TftpFileSource } from './sources.js';
import { Transfer, type RetransmitPolicy, type TransferOutcome, type TransferResult, type TransferStep } from './transfer.js';

export interface TftpServerOptions {
  /** Address of the server port; default 0.0.0.0. Transfers reply from the address the request came to. */
  bindAddress?: string;
  /** Server port (69); 0 = ephemeral, read it back with address(). */
  port: number;
  source: TftpFileSource;
  log: Logger;
  limits?: Partial<TftpLimits>;
  retransmit?: Partial<RetransmitPolicy>;
  /**
   * Transfers at once; requests beyond are dropped unanswered (the client retries its RRQ) rather
   * than refused, so that a boot storm delays clients instead of failing their boot. With the
   * default limits a transfer holds at most one window (blockSize × windowSize) plus ≈ 2 KiB.
   */
  maxTransfers?: number;
  /**
   * Transfers at once from one client address (`tftp.max_transfers_per_source`): requests beyond
   * are dropped like those beyond maxTransfers, so that one address cannot take every slot.
   */
  maxTransfersPerSource?: number;
  /**
   * Bytes all transfers may hold in their send windows (`tftp.window_memory_bytes`): a request
   * that would go beyond gets a smaller window, then a smaller block, down to lock-step 512-byte
   * blocks when nothing is left (so the budget is overrun by at most maxTransfers × 516 bytes).
   */
  windowMemoryBytes?: number;
  /** The same budget for the transfers of one client address (`tftp.window_memory_per_source_bytes`). */
  windowMemoryPerSourceBytes?: number;
  /** Told of every transfer that ended and every file refused (the boot timelines, src/boot/timeline.ts). */
  bootEvents?: { tftpTransferEnded(transfer: TftpTransferEvent): void };
}

/** Defaults of the admission limits (docs/security.md lists them with their config keys). */
export const DEFAULT_ADMISSION = {
  maxTransfers: 4096,
  maxTransfersPerSource: 64,
  windowMemoryBytes: 128 * 1024 * 1024,
  windowMemoryPerSourceBytes: 16 * 1024 * 1024,
} as const;

export interface TftpServerStats {
  /** Read requests looked up (the file source was asked). */
  readRequests: number;
  /** Write requests refused with ERROR 2. */
  writeRequestsRefused: number;
  /** Malformed datagrams, unsupported modes and non-requests on the server port: ERROR 4. */
  illegalRequests: number;
  /** ERRORs and truncated datagrams on the server port, never answered. */
  ignoredDatagrams: number;
  notFound: number;
  accessViolations: number;
  /** The file source threw, or no transfer socket could be opened: ERROR 0. */
  serverErrors: number;
  /** Requests dropped because maxTransfers were running. */
  busyDrops: number;
  /** Requests dropped because their address already ran maxTransfersPerSource transfers. */
  sourceBusyDrops: number;
  /** Transfers admitted with a smaller window or block than they would have had, to stay within the window memory budget. */
  windowsShrunk: number;
  /** Datagrams on a transfer's port from someone other than its client: ERROR 5. */
  unknownTransferIds: number;
  /** Datagrams the kernel refused to send (routes, full send queue); the timer retransmits. */
  sendErrors: number;
  activeTransfers: number;
  /** Ended transfers by outcome. */
  outcomes: Record<TransferOutcome, number>;
  blocksSent: number;
  blocksResent: number;
  bytesSent: number;
  timeouts: number;
  /** Of blocksSent, those dgram-native's send pump sent in answer to in-order ACKs, without a call into JS. */
  pumpedBlocks: number;
}

const OUTCOMES: readonly TransferOutcome[] = [
  'complete', 'aborted-after-oack', 'aborted-by-client', 'negotiation-refused', 'timeout',
  'end-unconfirmed', 'protocol-error', 'source-error', 'cancelled',
];

/** Kernel accounting per datagram beyond its payload (sk_buff and shared info, rounded up). */
const DATAGRAM_OVERHEAD_BYTES = 1024;
/** ACKs are 4 bytes and ERRORs at most a few hundred: one small receive slab per transfer. */
const TRANSFER_RECEIVE_BATCH = 4;
const TRANSFER_MAX_DATAGRAM = 516;
/** The largest window dgram-native's TFTP send pump takes; larger windows go through the core only. */
const PUMP_MAX_WINDOW = 64;

interface TftpPeer {
  address: string;
  port: number;
}

/** What one client address holds: its transfers (running or opening) and their window bytes. */
interface SourceUsage {
  transfers: number;
  windowBytes: number;
}

/** A request's place: counted against its address and the window budget until released. */
interface Admission {
  source: number;
  usage: SourceUsage;
  windowBytes: number;
  /** The limits the transfer negotiates under: the server's, shrunk to the window granted. */
  limits: TftpLimits;
  /** A transfer runs on it (and releases it when it finishes). */
  running: boolean;
  released: boolean;
}

interface ActiveTransfer {
  peer: TftpPeer;
  /** peer.address as parseIPv4 gives it: received datagrams are matched without formatting theirs. */
  peerAddress: number;
  admission: Admission;
  request: ReadRequest;
  transfer: Transfer;
  file: TftpFile;
  /** Connected to the client: its datagrams arrive here, and the transfer's DATA leaves from here. */
  socket: UdpSocket | undefined;
  /** Unconnected, on the same port: everyone else's datagrams (ERROR 5). */
  strangers: UdpSocket | undefined;
  timer: NodeJS.Timeout | undefined;
  /** performance.now() at which `timer` fires. */
  timerAt: number;
  /** dgram-native's send pump is armed on the socket: the core must catch up (syncPump) before it acts. */
  pumping: boolean;
  /** The pump refused to start (e.g. the file could not be mapped: out of memory or of mappings): the core sends every block. */
  pumpRefused: boolean;
}

export class TftpServer {
  private readonly options: TftpServerOptions;
  private readonly limits: TftpLimits;
  private readonly log: Logger;
  private readonly socket: UdpSocket;
  private readonly active = new Set<ActiveTransfer>();
  /** By client address (parseIPv4): what each holds, for the per-source caps. */
  private readonly sources = new Map<number, SourceUsage>();
  /** The admission limits in force (options or DEFAULT_ADMISSION). */
  private readonly caps: Required<Pick<TftpServerOptions, 'maxTransfers' | 'maxTransfersPerSource' | 'windowMemoryBytes' | 'windowMemoryPerSourceBytes'>>;
  /** Bytes of send windows the admitted transfers may hold, against caps.windowMemoryBytes. */
  private windowBytes = 0;
  /** Requests between arrival and their transfer's start (the file source may be asynchronous). */
  private opening = 0;
  private closing = false;
  private readonly counters: Omit<TftpServerStats, 'activeTransfers' | 'outcomes'> = {
    readRequests: 0, writeRequestsRefused: 0, illegalRequests: 0, ignoredDatagrams: 0, notFound: 0,
    accessViolations: 0, serverErrors: 0, busyDrops: 0, sourceBusyDrops: 0, windowsShrunk: 0, unknownTransferIds: 0, sendErrors: 0,
    blocksSent: 0, blocksResent: 0, bytesSent: 0, timeouts: 0, pumpedBlocks: 0,
  };
  private readonly outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<TransferOutcome, number>;

  /** Binds the server port; throws DgramNativeError (EADDRINUSE, EACCES for port 69 without privilege). */
  constructor(options: TftpServerOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.caps = {
      maxTransfers: options.maxTransfers ?? DEFAULT_ADMISSION.maxTransfers,
      maxTransfersPerSource: options.maxTransfersPerSource ?? DEFAULT_ADMISSION.maxTransfersPerSource,
      windowMemoryBytes: options.windowMemoryBytes ?? DEFAULT_ADMISSION.windowMemoryBytes,
      windowMemoryPerSourceBytes: options.windowMemoryPerSourceBytes ?? DEFAULT_ADMISSION.windowMemoryPerSourceBytes,
    };
    this.log = options.log;
    this.socket = createSocket({
      bindAddress: options.bindAddress ?? '0.0.0.0',
      port: options.port,
      pktinfo: true,
      // A boot storm is a burst of requests: room for a few thousand before the kernel drops any.
      recvBufferSize: 1 << 20,
    });
    this.socket.on('message', (datagram) => this.onRequest(datagram));
    this.socket.on('error', (error) => this.log.warn({ err: error }, 'tftp server socket error'));
  }

  address(): { address: string; port: number } {
    return this.socket.address();
  }

  stats(): TftpServerStats {
    return { ...this.counters, activeTransfers: this.active.size, outcomes: { ...this.outcomes } };
  }

  /** Stops taking requests, cancels running transfers (their clients get ERROR 0) and closes every socket. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed: Promise<void>[] = [this.socket.close()];
    for (const active of [...this.active]) {
      const { socket, strangers } = active;
      if (this.syncPump(active)) this.apply(active, active.transfer.cancel('server shutting down'));
      if (socket) closed.push(socket.close());
      if (strangers) closed.push(strangers.close());
    }
    await Promise.all(closed);
  }

  private onRequest(datagram: Datagram): void {
    const peer = { address: datagram.address, port: datagram.port };
    if (datagram.truncated) {
      this.counters.ignoredDatagrams++;
      this.log.info({ peer: `${peer.address}:${peer.port}` }, 'tftp: oversized datagram on the server port ignored');
      return;
    }
    const decision = classifyRequest(datagram.data);
    if (decision.kind === 'ignore') {
      this.counters.ignoredDatagrams++;
      this.log.info({ peer: `${peer.address}:${peer.port}`, reason: decision.reason }, 'tftp: datagram ignored');
      return;
    }
    if (decision.kind === 'refuse') {
      if (decision.code === ErrorCode.accessViolation) this.counters.writeRequestsRefused++;
      else this.counters.illegalRequests++;
      this.log.info({ peer: `${peer.address}:${peer.port}`, code: decision.code, reason: decision.reason }, 'tftp: request refused');
      this.sendFromServerPort(decision.reply, peer);
      return;
    }
    const admission = this.admit(decision.request, peer);
    if (admission === undefined) return;
    this.counters.readRequests++;
    // With a wildcard bind, the transfer answers from the address the client sent to (multi-homed hosts).
    const localAddress = this.options.bindAddress && this.options.bindAddress !== '0.0.0.0' ? this.options.bindAddress : (datagram.localAddress ?? '0.0.0.0');
    this.opening++;
    void this.openAndStart(decision.request, peer, localAddress, admission).finally(() => {
      this.opening--;
      // Refused, not found or failed before it ran (a running transfer releases in finish).
      if (!admission.running) this.release(admission);
    });
  }

  /**
   * A place for a read request, or undefined if it is dropped (unanswered: the client retries):
   * every slot taken, or its address at its cap. A request whose window does not fit in what is
   * left of the window budget (global, or its address's) is admitted with a smaller window, or a
   * single smaller block, rather than refused: a slower boot beats a failed one. Addresses are
   * counted apart, so a flood from one address runs into its own caps and leaves the slots and
   * the memory to the others.
   */
  private admit(request: ReadRequest, peer: TftpPeer): Admission | undefined {
    if (this.active.size + this.opening >= this.caps.maxTransfers) {
      this.counters.busyDrops++;
      this.log.debug({ peer: `${peer.address}:${peer.port}`, file: request.filename }, 'tftp: busy, request dropped');
      return undefined;
    }
    const source = parseIPv4(peer.address);
    const usage = this.sources.get(source) ?? { transfers: 0, windowBytes: 0 };
    if (usage.transfers >= this.caps.maxTransfersPerSource) {
      this.counters.sourceBusyDrops++;
      this.log.debug({ peer: `${peer.address}:${peer.port}`, file: request.filename }, 'tftp: address at its transfer cap, request dropped');
      return undefined;
    }
    // What the client would get without the budget (the transfer negotiates again, under `limits`).
    const wanted = negotiateOptions(request.options, this.limits, undefined);
    const blockSize = wanted.ok ? wanted.negotiated.blockSize : DEFAULT_BLOCK_SIZE;
    const windowSize = wanted.ok ? wanted.negotiated.windowSize : 1;
    const left = Math.min(this.caps.windowMemoryBytes - this.windowBytes, this.caps.windowMemoryPerSourceBytes - usage.windowBytes);
    let limits = this.limits;
    let windowBytes = (blockSize + 4) * windowSize;
    if (windowBytes > left) {
      const fittingWindow = Math.floor(left / (blockSize + 4));
      if (fittingWindow >= 1) {
        limits = { ...this.limits, maxWindowSize: fittingWindow };
        windowBytes = (blockSize + 4) * fittingWindow;
      } else {
        // Lock-step with what is left, and at worst RFC 1350's 512-byte block even when nothing is
        // left: the budget can be overrun by at most maxTransfers × 516 bytes, and a client that
        // comes while others hold the budget still boots.
        const block = Math.max(Math.min(blockSize, DEFAULT_BLOCK_SIZE), Math.min(blockSize, left - 4));
        limits = { ...this.limits, maxWindowSize: 1, maxBlockSize: block };
        windowBytes = block + 4;
      }
      this.counters.windowsShrunk++;
      this.log.debug({ peer: `${peer.address}:${peer.port}`, file: request.filename, windowBytes }, 'tftp: window memory short, window shrunk');
    }
    if (usage.transfers === 0) this.sources.set(source, usage);
    usage.transfers++;
    usage.windowBytes += windowBytes;
    this.windowBytes += windowBytes;
    return { source, usage, windowBytes, limits, running: false, released: false };
  }

  private release(admission: Admission): void {
    if (admission.released) return;
    admission.released = true;
    const { usage } = admission;
    usage.transfers--;
    usage.windowBytes -= admission.windowBytes;
    this.windowBytes -= admission.windowBytes;
    if (usage.transfers === 0) this.sources.delete(admission.source);
  }

  private async openAndStart(request: ReadRequest, peer: TftpPeer, localAddress: string, admission: Admission): Promise<void> {
    const where = `${peer.address}:${peer.port}`;
    let opened;
    try {
      opened = await this.options.source.open(request.filename);
    } catch (error) {
      this.counters.serverErrors++;
      this.log.error({ peer: where, file: request.filename, err: error }, 'tftp: file source failed');
      this.sendFromServerPort(serializeError(ErrorCode.notDefined, 'server error'), peer);
      return;
    }
    if (isOpenError(opened)) {
      const notFound = opened.error === 'not-found';
      if (notFound) this.counters.notFound++;
      else this.counters.accessViolations++;
      this.options.bootEvents?.tftpTransferEnded({ address: peer.address, file: request.filename, outcome: opened.error, bytes: 0, durationMs: 0, retransmits: 0 });
      const fields = { peer: where, file: request.filename, reason: opened.reason };
      if (notFound) this.log.info(fields, 'tftp: file not found');
      else this.log.warn(fields, 'tftp: access violation');
      this.sendFromServerPort(serializeError(notFound ? ErrorCode.fileNotFound : ErrorCode.accessViolation, notFound ? 'file not found' : 'access violation'), peer);
      return;
    }
    const file = opened;
    if (this.closing) {
      file.close();
      return;
    }
    const transfer = new Transfer({
      request,
      fileSize: file.size,
      readBlock: (offset, length) => file.readBlock(offset, length),
      readBlockInto: file.readInto && ((target, targetOffset, offset, length) => file.readInto!(target, targetOffset, offset, length)),
      fileUnchanged: file.unchanged && (() => file.unchanged!()),
      limits: admission.limits,
      retransmit: this.options.retransmit,
    });
    const active: ActiveTransfer = { peer, peerAddress: admission.source, admission, request, transfer, file, socket: undefined, strangers: undefined, timer: undefined, timerAt: 0, pumping: false, pumpRefused: false };
    this.active.add(active);
    admission.running = true;
    const step = transfer.start();
    if (step.finished) {
      // Negotiation refused: ERROR 8 from the server port, no transfer socket needed.
      for (const packet of step.send) this.sendFromServerPort(packet, peer);
      this.apply(active, { ...step, send: [] });
      return;
    }
    try {
      this.openTransferSockets(active, localAddress);
    } catch (error) {
      this.counters.serverErrors++;
      this.log.error({ peer: where, file: request.filename, err: error }, 'tftp: cannot open a transfer socket');
      this.sendFromServerPort(serializeError(ErrorCode.notDefined, 'server error'), peer);
      this.apply(active, { ...transfer.cancel('no transfer socket'), send: [] });
      return;
    }
    // What the send pump does not answer (and, without the pump, every datagram), read in place.
    // Both sockets are handled alike, so that the transfer does not depend on the kernel steering
    // each datagram to the right one (it does since kernel commit acdcecc61285, 2019).
    const onError = (error: DgramNativeError) => {
      // The connected socket hears ICMP errors about the client: port unreachable once it has
      // closed its socket (typically after the last block, its final ACK lost). Not a send error:
      // the transfer ends now instead of retransmitting into the void until the give-up time.
      if (error.code === 'ECONNREFUSED') {
        if (this.syncPump(active)) this.apply(active, active.transfer.onClientGone());
        return;
      }
      this.counters.sendErrors++;
      this.log.warn({ peer: where, err: error }, 'tftp: transfer socket error');
    };
    for (const socket of [active.socket!, active.strangers!]) socket.on('view', (view) => this.onTransferView(active, view, socket)).on('error', onError);
    this.apply(active, step);
    this.startPump(active);
  }

  /**
   * The transfer's port, as two sockets with SO_REUSEPORT: first an unconnected one on an
   * ephemeral port (reuseport set after the bind, so the port is no other socket's), then one
   * bound to the same port and connected to the client before anything is sent to it. The kernel
   * delivers the client's datagrams to the connected socket (exact 4-tuple match) and everyone
   * else's to the unconnected one, where they get ERROR 5 (RFC 1350 §4). Connected, the transfer
   * socket sends DATA without a destination address, so the kernel uses the socket's cached route
   * instead of looking one up per datagram (and a remote client's ACKs can take UDP early demux).
   * Throws DgramNativeError; the caller closes whatever was opened (finish).
   */
  private openTransferSockets(active: ActiveTransfer, localAddress: string): void {
    const negotiated = active.transfer.negotiated!;
    const receive = { pktinfo: false, batchSize: TRANSFER_RECEIVE_BATCH, maxDatagramSize: TRANSFER_MAX_DATAGRAM };
    active.strangers = createSocket({ bindAddress: localAddress, port: 0, reusePort: 'after-bind', ...receive });
    active.socket = createSocket({
      bindAddress: localAddress,
      port: active.strangers.address().port,
      reusePort: true,
      ...receive,
      // A whole window is sent at once: the send buffer must hold it (the kernel doubles the request).
      sendBufferSize: Math.max(64 * 1024, negotiated.windowSize * (negotiated.blockSize + 4 + DATAGRAM_OVERHEAD_BYTES)),
    });
    active.socket.connect(active.peer.address, active.peer.port);
  }

  /**
   * Datagrams on the transfer's port, from either socket. A stranger's is answered with ERROR 5
   * and leaves the transfer alone; the client's goes to the core once the core has caught up with
   * the pump. The pump runs on the connected socket and the first datagram there that it does not
   * answer (a stranger's too) disarms it: it is rearmed at the end.
   */
  private onTransferView(active: ActiveTransfer, view: ReceivedView, socket: UdpSocket): void {
    let fromClient = false;
    for (let i = 0; i < view.count; i++) {
      if (view.port(i) !== active.peer.port || view.addressValue(i) !== active.peerAddress) {
        this.unknownTransferId(active, view.data(i), { address: view.address(i), port: view.port(i) });
        continue;
      }
      fromClient = true;
      if (!this.syncPump(active)) return;
      this.apply(active, this.onClientDatagram(active, view.data(i)));
    }
    if ((fromClient || socket === active.socket) && this.syncPump(active)) this.startPump(active);
  }

  /**
   * Arms dgram-native's send pump when the core says it may take over (octet, a full window of
   * full blocks outstanding) and it can get at the next bytes: a file's descriptor, which the pump
   * maps and sends from up to the end of the file, or else the bytes the source holds in memory
   * (`bytesAt`: the rest of a chunk). The pump then answers the in-order ACKs with the next windows
   * without a call into JS per block; the first datagram it does not answer disarms it and comes by
   * the 'view' event.
   */
  private startPump(active: ActiveTransfer): void {
    const { socket, file } = active;
    if (active.pumping || active.pumpRefused || socket === undefined || !this.active.has(active)) return;
    const state = active.transfer.pumpable();
    if (state === undefined || state.windowSize > PUMP_MAX_WINDOW) return;
    const windowBytes = state.blockSize * state.windowSize;
    const remaining = file.size - state.offset;
    if (remaining < windowBytes) return;
    let data: TftpPumpStart['data'];
    if (file.fd !== undefined) {
      data = { fd: file.fd, offset: state.offset, length: remaining };
    } else if (file.bytesAt !== undefined) {
      try {
        // As much as the source holds from there (the rest of a chunk), a window at least.
        data = file.bytesAt(state.offset, windowBytes);
      } catch {
        return; // the core's own read of the next block reports the failure (source-error)
      }
      if (data.length > remaining) data = data.subarray(0, remaining);
      if (data.length < windowBytes) return;
    } else {
      return; // neither in memory nor in a file the pump can read: every block goes through the core
    }
    try {
      active.pumping = socket.startTftpPump({ address: active.peer.address, port: active.peer.port, blockSize: state.blockSize, windowSize: state.windowSize, nextBlock: state.nextBlock, data });
    } catch (error) {
      active.pumpRefused = true;
      this.log.warn({ peer: `${active.peer.address}:${active.peer.port}`, file: active.request.filename, err: error }, 'tftp: the send pump refused the transfer; the core sends every block');
    }
  }

  /**
   * Stops the pump and has the core catch up with what it sent and what was acknowledged, before
   * the core acts on anything. False if that ended the transfer (the source failed re-reading the
   * outstanding window).
   */
  private syncPump(active: ActiveTransfer): boolean {
    if (!active.pumping) return this.active.has(active);
    active.pumping = false;
    const progress = active.socket!.stopTftpPump();
    this.counters.sendErrors += progress.shortSends;
    this.counters.pumpedBlocks += progress.windows * active.transfer.negotiated!.windowSize;
    const step = active.transfer.onPumped(progress);
    if (step.finished) {
      this.apply(active, step);
      return false;
    }
    return true;
  }

  /** The client's datagram: the transfer's step. */
  private onClientDatagram(active: ActiveTransfer, data: Buffer): TransferStep {
    // An ACK (the usual answer) straight to the core; anything else through its parser.
    if (data.length >= 4 && data[0] === 0 && data[1] === Opcode.ack) return active.transfer.onAck(data.readUInt16BE(2));
    return active.transfer.onDatagram(data);
  }

  /** Someone else's packet on this TID (RFC 1350 §4): answered with ERROR 5, the transfer is not disturbed. */
  private unknownTransferId(active: ActiveTransfer, data: Buffer, from: TftpPeer): void {
    if (active.socket === undefined || !this.active.has(active)) return;
    this.counters.unknownTransferIds++;
    this.log.info({ peer: `${from.address}:${from.port}`, transferPeer: `${active.peer.address}:${active.peer.port}`, bytes: data.length }, 'tftp: datagram from an unknown transfer ID');
    this.send(active.socket, serializeError(ErrorCode.unknownTransferId, 'unknown transfer ID'), from);
  }

  /**
   * Sends a step's datagrams, then ends the transfer if the step says so, else arms its timer. It
   * does not arm the send pump: a caller that may hand the transfer to the pump calls startPump
   * after (onTransferView once per batch of datagrams, not per datagram).
   */
  private apply(active: ActiveTransfer, step: TransferStep): void {
    const { socket, peer } = active;
    if (socket && step.send.length === 1) {
      this.send(socket, step.send[0]!, peer);
    } else if (socket && step.send.length > 1) {
      const result = socket.sendBatch(step.send.map((data) => ({ data, port: peer.port, address: peer.address })));
      if (result.failed.length > 0) {
        this.counters.sendErrors += result.failed.length - 1;
        this.sendFailed(peer, result.failed[0]!.error);
      }
    }
    if (step.finished) {
      this.finish(active, step.finished);
      return;
    }
    this.setTimer(active, step.timeoutMs);
  }

  /**
   * Keeps a running timer that fires no later than asked: the transfer answers an early
   * onTimeout() with the time remaining, so a lock-step transfer arms one timer per RTO rather
   * than one per ACK.
   */
  private setTimer(active: ActiveTransfer, timeoutMs: number | null): void {
    if (timeoutMs === null) {
      clearTimeout(active.timer);
      active.timer = undefined;
      return;
    }
    const at = performance.now() + timeoutMs;
    if (active.timer !== undefined && active.timerAt <= at) return;
    clearTimeout(active.timer);
    active.timerAt = at;
    active.timer = setTimeout(() => {
      active.timer = undefined;
      if (!this.syncPump(active)) return;
      this.apply(active, active.transfer.onTimeout());
      this.startPump(active);
    }, timeoutMs);
  }

  private finish(active: ActiveTransfer, result: TransferResult): void {
    clearTimeout(active.timer);
    active.timer = undefined;
    this.active.delete(active);
    this.release(active.admission);
    active.file.close();
    // Closing drops anything still queued after EAGAIN; what was handed to the kernel goes out.
    void active.socket?.close();
    void active.strangers?.close();
    const { counters } = result;
    this.outcomes[result.outcome]++;
    this.counters.blocksSent += counters.blocksSent;
    this.counters.blocksResent += counters.blocksResent;
    this.counters.bytesSent += counters.bytesSent;
    this.counters.timeouts += counters.timeouts;
    this.options.bootEvents?.tftpTransferEnded({ address: active.peer.address, file: active.request.filename, outcome: result.outcome, bytes: counters.bytesSent, durationMs: counters.durationMs, retransmits: counters.blocksResent });
    const negotiated = active.transfer.negotiated;
    this.log.info(
      {
        peer: `${active.peer.address}:${active.peer.port}`,
        file: active.request.filename,
        mode: active.request.mode,
        outcome: result.outcome,
        detail: result.detail || undefined,
        size: active.file.size,
        blksize: negotiated?.blockSize,
        windowsize: negotiated?.windowSize,
        ignoredOptions: negotiated?.ignored.length ? negotiated.ignored : undefined,
        bytes: counters.bytesSent,
        blocksResent: counters.blocksResent,
        timeouts: counters.timeouts,
        duplicateAcks: counters.duplicateAcks,
        srttMs: counters.srttMs === undefined ? undefined : Math.round(counters.srttMs * 100) / 100,
        durationMs: Math.round(counters.durationMs),
      },
      'tftp transfer',
    );
  }

  private sendFromServerPort(packet: Buffer, peer: TftpPeer): void {
    if (!this.closing) this.send(this.socket, packet, peer);
  }

  private send(socket: UdpSocket, packet: Buffer, peer: TftpPeer): void {
    try {
      socket.send(packet, peer.port, peer.address);
    } catch (error) {
      this.sendFailed(peer, error);
    }
  }

  private sendFailed(peer: TftpPeer, error: unknown): void {
    this.counters.sendErrors++;
    this.log.warn({ peer: `${peer.address}:${peer.port}`, err: error }, 'tftp: send failed');
  }
}
