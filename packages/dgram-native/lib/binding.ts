// The one place the compiled addon is loaded. Kept as its own module, with a literal path, so
// that the single-binary build can substitute this module (or this require) with a loader for
// the addon embedded as a SEA asset.
import { createRequire } from 'node:module';

/** Result of a failed open: the errno and the syscall (with option name) that failed. */
export interface NativeOpenFailure {
  errno: number;
  syscall: string;
}

export interface NativeOpenOptions {
  bindAddress: number;
  port: number;
  interface: string | undefined;
  reuseAddr: boolean;
  /** 0: off; 1: SO_REUSEPORT before bind (joins the port's group); 2: after bind (ephemeral port of its own). */
  reusePort: 0 | 1 | 2;
  broadcast: boolean;
  pktinfo: boolean;
  recvBufferSize: number;
  sendBufferSize: number;
  batchSize: number;
  /** Receive buffer per message (maxDatagramSize, or 65535 with GRO). */
  slotSize: number;
  gso: boolean;
  gro: boolean;
  receiveCoalescingMs: number;
}

/** Opaque handle of an open native socket. */
export type NativeHandle = { readonly __brand: 'dgram-native handle' };

/** Events passed to the socket callback: (EV_BATCH, count) | (EV_WRITABLE, 0) | (EV_ERROR, -errno). */
export type NativeCallback = (event: number, value: number) => void;

export interface NativeBinding {
  /** Number of Uint32 metadata slots per received datagram. */
  META_SLOTS: number;
  open(options: NativeOpenOptions, slab: Buffer, meta: Uint32Array, callback: NativeCallback): { handle: NativeHandle } | NativeOpenFailure;
  /** [address, port, recvBufferSize, sendBufferSize, gro (0/1)], or -errno. */
  info(handle: NativeHandle): [number, number, number, number, number] | number;
  /** Bytes sent, or -errno. */
  send(handle: NativeHandle, data: Uint8Array, address: number, port: number, sourceAddress: number, ifindex: number): number;
  /** Datagrams sent from `start` (> 0), or -errno of the datagram at `start`. */
  sendBatch(handle: NativeHandle, buffers: readonly Uint8Array[], meta: Uint32Array, start: number, count: number): number;
  /** Arms the TFTP send pump: 0, or -errno (EINVAL: bad sizes or a GRO socket; EBADF: closed). */
  tftpPumpStart(handle: NativeHandle, data: Buffer, address: number, port: number, blockSize: number, windowSize: number, nextBlock: number): number;
  tftpPumpStartFile(handle: NativeHandle, fd: number, offset: number, length: number, address: number, port: number, blockSize: number, windowSize: number, nextBlock: number): number;
  /** Disarms it: [windows, lastRttMs (-1: none), msSinceLastSend, shortSends] since the last stop. */
  tftpPumpStop(handle: NativeHandle): [number, number, number, number];
  /** connect(2) to the peer: 0, or -errno (EINVAL: port 0; EBADF: closed). */
  connect(handle: NativeHandle, address: number, port: number): number;
  /** [gso (0/1), GSO messages sent]. */
  sendStats(handle: NativeHandle): [number, number];
  watchWritable(handle: NativeHandle, on: boolean): void;
  setRef(handle: NativeHandle, on: boolean): void;
  close(handle: NativeHandle, callback: () => void): void;
  interfaceName(index: number): string | null;
  interfaceIndex(name: string): number;
}

export const binding = createRequire(import.meta.url)('../build/Release/dgram_native.node') as NativeBinding;
