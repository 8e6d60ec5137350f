// One read transfer as a state machine: events in (start, a datagram from the client, the timer),
// datagrams and a timer setting out. No sockets and no timers of its own: the server owns those and
// injects the clock, so every path runs in tests with a simulated client and a fake clock.
// A client that goes silent is not dropped at once: each timeout resends the window (or the OACK)
// with the RTO doubled, and the transfer gives up (ERROR 0) only at the first timeout that comes
// both after maxRetries (5) retransmissions without progress and at least minGiveUpMs (30 s) after
// the last progress (an ACK of something new, the pump's included, or the start). RetransmitPolicy
// says why both.

import { netasciiBlocks, octetBlocks, SourceError, type BlockProducer, type OctetProducer, type ReadBlock, type ReadBlockInto } from './blocks.js';
import { DEFAULT_LIMITS, negotiateOptions, type NegotiatedOptions, type TftpLimits } from './options.js';
import { ErrorCode, MAX_BLOCK_NUMBER, Opcode, parseTftp, serializeError, serializeOack } from './packets.js';
import type { ReadRequest } from './request.js';

const BLOCK_NUMBERS = MAX_BLOCK_NUMBER + 1;

export interface RetransmitPolicy {
  /** RTO before the first RTT sample (RFC 6298 §2.1), when the client set no timeout. */
  initialRtoMs: number;
  /** Floor of the adaptive RTO: firmware clients answer late now and then, and a spurious resend costs a window. */
  minRtoMs: number;
  /** Ceiling of the backed-off RTO (a client's own timeout, up to 255 s, overrides it). */
  maxRtoMs: number;
  /** Consecutive timeouts without progress before the transfer is given up… */
  maxRetries: number;
  /**
   * …and at least this long without progress. atftp answers a duplicate DATA once and then waits
   * for its own 5 s timeout before it ACKs again: on a fast path (RTO at its 200 ms floor) five
   * backed-off retransmissions span only 12.6 s, and a lost ACK or two made the server give up
   * on a client that was still there (seen at 5 % loss in CI).
   */
  minGiveUpMs: number;
}

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { initialRtoMs: 1000, minRtoMs: 200, maxRtoMs: 8000, maxRetries: 5, minGiveUpMs: 30_000 };

/** RFC 6298's clock granularity G, in ms. */
const CLOCK_GRANULARITY_MS = 1;

export interface TransferOptions {
  request: ReadRequest;
  /** Size of the file in bytes (before netascii conversion). */
  fileSize: number;
  readBlock: ReadBlock;
  /** Optional: reads straight into the DATA packet (octet mode), saving the copy out of readBlock's buffer. */
  readBlockInto?: ReadBlockInto;
  /**
   * Optional: false if the file changed since it was opened. Asked before the last block goes out:
   * a transfer of a file rewritten under it then ends with an ERROR instead of completing with
   * bytes of two versions (or of none, past a cut).
   */
  fileUnchanged?: () => boolean;
  limits?: TftpLimits;
  retransmit?: Partial<RetransmitPolicy>;
  /** Milliseconds on a monotonic clock. */
  now?: () => number;
}

export type TransferOutcome =
  /** The client acknowledged the last block. */
  | 'complete'
  /** The client answered the OACK with an ERROR: a size probe (EDK2 asks tsize, then sends its real request). Not a failure. */
  | 'aborted-after-oack'
  /** The client sent an ERROR during the data phase. */
  | 'aborted-by-client'
  /** The options could not be honoured; ERROR 8 was sent. */
  | 'negotiation-refused'
  /** No progress through maxRetries retransmissions and minGiveUpMs (30 s); ERROR 0 was sent. */
  | 'timeout'
  /**
   * Every block was sent but the final window's ACK never came, through every retransmission:
   * typically a client that does not dally and whose final ACK was lost. It may well have the whole file.
   */
  | 'end-unconfirmed'
  /** The client sent something other than ACK or ERROR, or garbage; ERROR 4 was sent. */
  | 'protocol-error'
  /** readBlock threw or returned less than the announced size; ERROR 0 was sent. */
  | 'source-error'
  /** The server ended the transfer (cancel()); ERROR 0 was sent. */
  | 'cancelled';

export interface TransferCounters {
  /** DATA blocks sent for the first time. */
  blocksSent: number;
  /** DATA retransmissions (timeouts and partial ACKs). */
  blocksResent: number;
  /** Payload bytes of first transmissions: the size on the wire, netascii included. */
  bytesSent: number;
  /** OACK transmissions, retransmissions included. */
  oacksSent: number;
  timeouts: number;
  /** ACKs of the block already acknowledged (the client's retransmissions, echoes of duplicate DATA); never answered. */
  duplicateAcks: number;
  /** ACKs inside the outstanding window: the client is missing the block after it, so the window is resent from there. */
  partialAcks: number;
  /** ACKs older than the last acknowledged block or for blocks never sent. */
  ignoredAcks: number;
  /** Smoothed RTT (RFC 6298) at the end, undefined without a sample. */
  srttMs: number | undefined;
  /** Retransmission timeout at the end. */
  rtoMs: number;
  durationMs: number;
}

export interface TransferResult {
  outcome: TransferOutcome;
  /** Why, for the log ('' when complete). */
  detail: string;
  counters: TransferCounters;
}

export interface TransferStep {
  /**
   * Datagrams to send to the client, in order, from the transfer's own port. Send them before the
   * next call: the transfer refills a DATA packet's buffer with a later block once it is
   * acknowledged (one buffer per window slot, none allocated per block), so a caller that keeps
   * a datagram beyond that must copy it.
   */
  send: Buffer[];
  /** Call onTimeout() after this many ms (replacing any earlier timer); null: no timer. */
  timeoutMs: number | null;
  /** Set in the one step that ends the transfer: the server records it and closes the port. */
  finished: TransferResult | null;
}

/**
 * A state the server's send pump (dgram-native's TFTP pump) can take over: a full window of
 * full-size octet blocks is outstanding, and the in-order ACK of its last block would be answered
 * with the next window read front to back from the file. See Transfer.pumpable().
 */
export interface PumpableState {
  /** Wire number (mod 65536) of the next block to send. */
  nextBlock: number;
  /** File offset of the next block. */
  offset: number;
  blockSize: number;
  windowSize: number;
}

/** What the pump did meanwhile (dgram-native's TftpPumpProgress), for Transfer.onPumped(). */
export interface PumpProgress {
  /** Window-end ACKs the pump answered, each with the next window of full blocks. */
  windows: number;
  /** RTT of the last window the pump timed (sent once, acknowledged as a whole). */
  lastRttMs: number | undefined;
  /** Since the pump sent the window now outstanding. */
  msSinceLastSend: number;
}

interface Outstanding {
  /** The serialized DATA (or the OACK, as block 0), kept for retransmission. */
  packet: Buffer;
  sentAt: number;
  sends: number;
}

type Phase = 'new' | 'oack' | 'data' | 'done';

export class Transfer {
  /** Set by start(); undefined when negotiation was refused. */
  negotiated: NegotiatedOptions | undefined;
  readonly counters: TransferCounters;

  private readonly options: TransferOptions;
  private readonly policy: RetransmitPolicy;
  private readonly now: () => number;
  private phase: Phase = 'new';
  private producer: BlockProducer | undefined;
  /** The producer in octet mode: the only one a pump can run ahead of (netascii's offsets shift). */
  private octet: OctetProducer | undefined;
  private startedAt = 0;
  /** Index (32-bit and beyond, not the 16-bit wire number) of the last acknowledged block; the OACK is block 0. */
  private lastAcked = 0;
  /** Blocks lastAcked+1 … lastAcked+outstanding.length, sent and not yet acknowledged: the window. */
  private outstanding: Outstanding[] = [];
  /** Acknowledged full-size DATA packets, refilled with later blocks: a window's worth at most. */
  private spare: Buffer[] = [];
  /** Index of the final (short) block once it has been read. */
  private lastBlock: number | undefined;
  private deadline = 0;
  private rto: number;
  private rttvar = 0;
  private retries = 0;
  /** When the client last acknowledged something (or the transfer started). */
  private lastProgressAt: number;
  /**
   * The RTO was doubled by a timeout and no RTT sample has reset it yet. No pump then: the next
   * sample (Karn: from the first window sent once after the resend) must reach this core at once,
   * not at the pump's next hand-back, or every loss meanwhile would wait out the backed-off RTO.
   */
  private backedOff = false;
  private resultValue: TransferResult | undefined;

  constructor(options: TransferOptions) {
    this.options = options;
    this.policy = { ...DEFAULT_RETRANSMIT, ...options.retransmit };
    this.now = options.now ?? (() => performance.now());
    this.rto = this.policy.initialRtoMs;
    this.startedAt = this.now();
    this.lastProgressAt = this.startedAt;
    this.counters = {
      blocksSent: 0,
      blocksResent: 0,
      bytesSent: 0,
      oacksSent: 0,
      timeouts: 0,
      duplicateAcks: 0,
      partialAcks: 0,
      ignoredAcks: 0,
      srttMs: undefined,
      rtoMs: this.rto,
      durationMs: 0,
    };
  }

  get result(): TransferResult | undefined {
    return this.resultValue;
  }

  /** Negotiates and sends the OACK, or (no option accepted) the first window of DATA. Call once. */
  start(): TransferStep {
    if (this.phase !== 'new') throw new Error('Transfer.start() called twice');
    const { request, fileSize, readBlock } = this.options;
    const negotiation = negotiateOptions(request.options, this.options.limits ?? DEFAULT_LIMITS, request.mode === 'octet' ? fileSize : undefined);
    if (!negotiation.ok) return this.finish('negotiation-refused', negotiation.reason, serializeError(ErrorCode.optionRefused, negotiation.reason));
    const negotiated = negotiation.negotiated;
    this.negotiated = negotiated;
    if (negotiated.timeoutSeconds !== undefined) this.rto = negotiated.timeoutSeconds * 1000;
    this.octet = request.mode === 'octet' ? octetBlocks(fileSize, readBlock, negotiated.blockSize, this.options.readBlockInto) : undefined;
    this.producer = this.octet ?? netasciiBlocks(fileSize, readBlock, negotiated.blockSize);
    if (negotiated.oack !== undefined) {
      // The OACK is block 0 of the window: ACK 0 acknowledges it and it is retransmitted like DATA.
      this.phase = 'oack';
      this.lastAcked = -1;
      this.outstanding = [{ packet: serializeOack(negotiated.oack), sentAt: 0, sends: 0 }];
      return this.transmitWindow();
    }
    this.phase = 'data';
    this.lastAcked = 0;
    return this.fillAndTransmit();
  }

  /** A datagram from the client's transfer ID (the server answers other sources with ERROR 5 itself). */
  onDatagram(buf: Buffer): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    const parsed = parseTftp(buf);
    if (!parsed.ok) return this.protocolError(`malformed packet: ${parsed.reason}`);
    const packet = parsed.packet;
    switch (packet.type) {
      case 'ack':
        return this.onAck(packet.block);
      case 'error':
        return this.onError(packet.code, packet.message);
      default:
        return this.protocolError(`${packet.type.toUpperCase()} during a read transfer, which takes ACK or ERROR only`);
    }
  }

  /** ACK with the 16-bit wire number `block`. */
  onAck(block: number): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    const lastSent = this.lastAcked + this.outstanding.length;
    // The one block index with this wire number in (lastSent - 65536, lastSent]: a window is at most
    // 65535 blocks, so that range holds lastAcked and the whole window, across any rollover.
    const acked = lastSent - ((((lastSent - block) % BLOCK_NUMBERS) + BLOCK_NUMBERS) % BLOCK_NUMBERS);
    if (acked < 0 || acked < this.lastAcked) {
      this.counters.ignoredAcks++;
      return this.keepTimer();
    }
    if (acked === this.lastAcked) {
      // Never resend on a duplicate ACK (RFC 1123 §4.2.3.1, Sorcerer's Apprentice): the timer does.
      this.counters.duplicateAcks++;
      return this.keepTimer();
    }
    const done = this.outstanding.splice(0, acked - this.lastAcked);
    const newest = done[done.length - 1] as Outstanding;
    const fullPacket = (this.negotiated as NegotiatedOptions).blockSize + 4;
    for (const entry of done) if (entry.packet.length === fullPacket && this.phase === 'data') this.spare.push(entry.packet);
    // Karn: only a block sent once, and acknowledged as the end of its window (not by a receiver's timeout), times the path.
    if (acked === lastSent && newest.sends === 1) this.sampleRtt(this.now() - newest.sentAt);
    // With the client's timeout the RTO is that timeout (RFC 2349): progress undoes the backoff.
    const clientTimeout = this.negotiated?.timeoutSeconds;
    if (clientTimeout !== undefined) this.resetRto(clientTimeout);
    this.lastAcked = acked;
    this.retries = 0;
    this.lastProgressAt = this.now();
    if (this.phase === 'oack') this.phase = 'data';
    if (this.lastBlock !== undefined && acked === this.lastBlock) return this.finish('complete', '');
    if (this.outstanding.length > 0) this.counters.partialAcks++;
    return this.fillAndTransmit();
  }

  /** An ERROR from the client: the transfer ends, nothing is sent back (RFC 1350 §7). */
  onError(code: number, message: string): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    const outcome = this.phase === 'oack' ? 'aborted-after-oack' : 'aborted-by-client';
    return this.finish(outcome, `client sent ERROR ${code} "${message}"`);
  }

  /**
   * The client's port is unreachable (an ICMP error on the transfer socket, which is connected to
   * it): the client has closed its socket and nothing will answer, so there is no point in
   * retransmitting until the give-up time. Ends the transfer, sending nothing: after the OACK as a
   * probe that went away ('aborted-after-oack'), with the last block sent as 'end-unconfirmed' (its
   * final ACK was lost; it may well have the whole file), else 'aborted-by-client'.
   */
  onClientGone(): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    const outcome = this.phase === 'oack' ? 'aborted-after-oack' : this.lastBlock !== undefined ? 'end-unconfirmed' : 'aborted-by-client';
    return this.finish(outcome, 'client port unreachable');
  }

  /**
   * The timer set by the last step fired. Early calls only re-arm it. Resends the window with the
   * RTO doubled, or gives up once both limits of RetransmitPolicy are reached (maxRetries, minGiveUpMs).
   */
  onTimeout(): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    if (this.now() < this.deadline) return this.keepTimer();
    this.counters.timeouts++;
    this.retries++;
    if (this.retries > this.policy.maxRetries && this.now() - this.lastProgressAt >= this.policy.minGiveUpMs) {
      const blocks = `blocks ${this.lastAcked + 1}..${this.lastAcked + this.outstanding.length}`;
      const silentSeconds = Math.round((this.now() - this.lastProgressAt) / 1000);
      const detail = `no ACK after ${this.retries - 1} retransmissions in ${silentSeconds} s of ${this.phase === 'oack' ? 'the OACK' : blocks}`;
      return this.finish(this.lastBlock === undefined ? 'timeout' : 'end-unconfirmed', detail, serializeError(ErrorCode.notDefined, 'timed out'));
    }
    this.rto = Math.min(this.rto * 2, Math.max(this.policy.maxRtoMs, (this.negotiated?.timeoutSeconds ?? 0) * 1000));
    this.backedOff = true;
    return this.transmitWindow();
  }

  /**
   * Whether a send pump may take over now, and from where: in octet mode, in the data phase, with
   * a full window of full-size blocks outstanding (so the last, short block is not read yet), and
   * the RTO not backed off (see backedOff). The
   * pump answers only the ACK of that window's last block, with the next window of full blocks
   * from the file, and so on; anything else it leaves to this core, which first catches up with
   * onPumped(). Undefined: not now (the server sends and receives through the core).
   */
  pumpable(): PumpableState | undefined {
    const negotiated = this.negotiated;
    if (this.phase !== 'data' || this.octet === undefined || negotiated === undefined || this.lastBlock !== undefined || this.backedOff) return undefined;
    if (this.outstanding.length !== negotiated.windowSize) return undefined;
    const lastSent = this.lastAcked + this.outstanding.length;
    return { nextBlock: (lastSent + 1) % BLOCK_NUMBERS, offset: lastSent * negotiated.blockSize, blockSize: negotiated.blockSize, windowSize: negotiated.windowSize };
  }

  /**
   * Catches up with a pump started from pumpable(): `windows` window-end ACKs were answered, each
   * with the next window, and the last window sent is outstanding (sent once, msSinceLastSend ago).
   * The outstanding window is read again from the file (for retransmission); counters, RTT (one
   * sample, the last), backoff and the retransmission deadline are updated as onAck() would have.
   * Returns the timer to keep, or the end of the transfer if the source fails.
   */
  onPumped(progress: PumpProgress): TransferStep {
    if (this.phase === 'done' || this.phase === 'new') return this.idle();
    if (progress.windows === 0) return this.keepTimer();
    const { blockSize, windowSize } = this.negotiated as NegotiatedOptions;
    const octet = this.octet as OctetProducer;
    const blocks = progress.windows * windowSize;
    // The window outstanding at the start was acknowledged first: its packets are refilled.
    for (const entry of this.outstanding) this.spare.push(entry.packet);
    this.outstanding = [];
    this.lastAcked += blocks;
    octet.skip((blocks - windowSize) * blockSize);
    const sentAt = this.now() - progress.msSinceLastSend;
    try {
      for (let index = this.lastAcked + 1; index <= this.lastAcked + windowSize; index++) {
        const packet = this.dataPacket(index);
        octet.fill(packet, 4);
        this.outstanding.push({ packet, sentAt, sends: 1 });
      }
    } catch (error) {
      return this.sourceFailed(error);
    }
    this.counters.blocksSent += blocks;
    this.counters.bytesSent += blocks * blockSize;
    if (progress.lastRttMs !== undefined) this.sampleRtt(progress.lastRttMs);
    const clientTimeout = this.negotiated?.timeoutSeconds;
    if (clientTimeout !== undefined) this.resetRto(clientTimeout);
    this.retries = 0;
    this.lastProgressAt = this.now();
    this.deadline = sentAt + this.rto;
    return this.keepTimer();
  }

  /** The server ends the transfer (shutdown, file withdrawn): the client gets ERROR 0 with `message`. */
  cancel(message: string): TransferStep {
    if (this.phase === 'done') return this.idle();
    return this.finish('cancelled', message, serializeError(ErrorCode.notDefined, message));
  }

  private sampleRtt(rtt: number): void {
    // RFC 6298 §2.2–2.4. Measured with a client timeout too (the log shows it), but then not used.
    const srtt = this.counters.srttMs;
    if (srtt === undefined) {
      this.counters.srttMs = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(srtt - rtt);
      this.counters.srttMs = 0.875 * srtt + 0.125 * rtt;
    }
    if (this.negotiated?.timeoutSeconds !== undefined) return;
    const rto = this.counters.srttMs + Math.max(CLOCK_GRANULARITY_MS, 4 * this.rttvar);
    this.rto = Math.min(Math.max(rto, this.policy.minRtoMs), this.policy.maxRtoMs);
    this.backedOff = false;
  }

  /** With the client's timeout the RTO is that timeout (RFC 2349): progress undoes the backoff. */
  private resetRto(clientTimeoutSeconds: number): void {
    this.rto = clientTimeoutSeconds * 1000;
    this.backedOff = false;
  }

  /** Reads blocks up to a full window, then sends every outstanding block (old ones again, new ones first time). */
  private fillAndTransmit(): TransferStep {
    const producer = this.producer as BlockProducer;
    const blockSize = (this.negotiated as NegotiatedOptions).blockSize;
    const windowSize = (this.negotiated as NegotiatedOptions).windowSize;
    try {
      while (this.outstanding.length < windowSize && this.lastBlock === undefined) {
        const index = this.lastAcked + this.outstanding.length + 1;
        const packet = this.dataPacket(index);
        const length = producer.fill(packet, 4);
        if (length < blockSize) {
          if (this.options.fileUnchanged?.() === false) throw new SourceError('the file changed during the transfer');
          this.lastBlock = index;
        }
        this.outstanding.push({ packet: length < blockSize ? packet.subarray(0, 4 + length) : packet, sentAt: 0, sends: 0 });
      }
    } catch (error) {
      return this.sourceFailed(error);
    }
    return this.transmitWindow();
  }

  /** A DATA packet for block `index` with room for a full block (a spare one when there is one); the caller fills it. */
  private dataPacket(index: number): Buffer {
    const packet = this.spare.pop() ?? Buffer.allocUnsafe((this.negotiated as NegotiatedOptions).blockSize + 4);
    packet.writeUInt16BE(Opcode.data, 0);
    packet.writeUInt16BE(index % BLOCK_NUMBERS, 2);
    return packet;
  }

  /** The end of the transfer when reading the file failed (SourceError); anything else is a bug and goes on up. */
  private sourceFailed(error: unknown): TransferStep {
    if (!(error instanceof SourceError)) throw error;
    return this.finish('source-error', error.message, serializeError(ErrorCode.notDefined, 'read error on the server'));
  }

  private transmitWindow(): TransferStep {
    const now = this.now();
    const send: Buffer[] = [];
    for (const entry of this.outstanding) {
      entry.sends++;
      entry.sentAt = now;
      send.push(entry.packet);
      if (this.phase === 'oack') {
        this.counters.oacksSent++;
      } else if (entry.sends === 1) {
        this.counters.blocksSent++;
        this.counters.bytesSent += entry.packet.length - 4;
      } else {
        this.counters.blocksResent++;
      }
    }
    this.deadline = now + this.rto;
    return { send, timeoutMs: this.rto, finished: null };
  }

  private protocolError(reason: string): TransferStep {
    return this.finish('protocol-error', reason, serializeError(ErrorCode.illegalOperation, reason));
  }

  private finish(outcome: TransferOutcome, detail: string, last?: Buffer): TransferStep {
    this.phase = 'done';
    this.outstanding = [];
    this.counters.rtoMs = this.rto;
    this.counters.durationMs = this.now() - this.startedAt;
    this.resultValue = { outcome, detail, counters: this.counters };
    return { send: last === undefined ? [] : [last], timeoutMs: null, finished: this.resultValue };
  }

  private keepTimer(): TransferStep {
    return { send: [], timeoutMs: Math.max(0, this.deadline - this.now()), finished: null };
  }

  private idle(): TransferStep {
    return { send: [], timeoutMs: null, finished: null };
  }
}
