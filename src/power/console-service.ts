// Serial console capture for every node whose attributes ask for it (`console` = serial | sol):
// one line per node (console-line.ts), its output appended to the node's ring log in the store
// (console-ring.ts) and passed to live listeners (the WebSocket console), keystrokes from those
// listeners written to the line. A line that ends is reopened with a backoff. Which nodes
// capture follows the store: node and attribute-group changes (change feed) and a periodic pass
// (cluster settings such as default_group have no change feed entry).
import { join } from 'node:path';
import type { Logger } from 'pino';
import { mergedAttributes, nodes } from '../model/cluster.js';
import type { Store, StoredRecord } from '../store/store.js';
import { BAUD_RATES, openLine, type ConsoleLine, type LineSpec } from './console-line.js';
import { ConsoleRing, SEGMENT_BYTES } from './console-ring.js';
import { FreeIpmi } from './ipmi.js';
import { resolveTarget } from './target.js';

/** Attribute names read by console capture (documented in docs/power.md). */
export const CONSOLE_ATTRIBUTES = { kind: 'console', device: 'console_device', baud: 'console_baud', ringKib: 'console_ring_kib' } as const;
export const CONSOLE_DEFAULTS = { baud: 115_200, ringKib: 256 } as const;
const RING_KIB_RANGE = [4, 65_536] as const;

/** What a node's attributes ask for: a line and the ring bound in bytes. */
export interface ConsoleWanted {
  spec: LineSpec;
  ringBytes: number;
}

export interface ConsoleStatus {
  /** `none`: the node does not ask for capture. */
  kind: 'serial' | 'sol' | 'none';
  connected: boolean;
  /** Why the line is not connected, or why the attributes are not usable. */
  reason?: string;
  stored_bytes: number;
}

export interface ConsoleListener {
  data(bytes: Buffer): void;
  /** The capture stopped (attributes changed, node deleted, head shutting down). */
  end(reason: string): void;
}

export interface ConsoleOptions {
  /** Output is stored at the latest this long after it arrived (or at once past SEGMENT_BYTES). */
  flushMs: number;
  /** First reopen delay after a line ends; doubles up to maxRetryMs. */
  retryMs: number;
  maxRetryMs: number;
  /** Periodic reconcile pass. */
  reconcileMs: number;
}

export const DEFAULT_CONSOLE_OPTIONS: ConsoleOptions = { flushMs: 200, retryMs: 1000, maxRetryMs: 30_000, reconcileMs: 30_000 };

/** A device pattern (`/dev/ttyS*`) as a regular expression: `*` and `?` never match '/'. */
function devicePatternRegExp(pattern: string): RegExp {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]');
  return new RegExp(`^${source}$`);
}

/**
 * Resolve a node's console attributes; undefined when it does not ask for capture; throws with the
 * reason when they are unusable. keel runs as root and reads and writes the device: a serial
 * device must match one of `devicePatterns` (config console.device_patterns), so that whoever sets
 * console_device cannot point it at a pty, a virtual console or any other device.
 */
export function consoleWanted(store: Store, node: StoredRecord, ipmi: FreeIpmi, devicePatterns: readonly string[]): ConsoleWanted | undefined {
  const attrs = mergedAttributes(store, node);
  const kind = attrs[CONSOLE_ATTRIBUTES.kind] ?? '';
  if (kind === '' || kind === 'none') return undefined;
  const kibText = attrs[CONSOLE_ATTRIBUTES.ringKib];
  const kib = kibText === undefined || kibText === '' ? CONSOLE_DEFAULTS.ringKib : Number(kibText);
  if (!Number.isInteger(kib) || kib < RING_KIB_RANGE[0] || kib > RING_KIB_RANGE[1]) {
    throw new Error(`attribute ${CONSOLE_ATTRIBUTES.ringKib} must be an integer ${RING_KIB_RANGE[0]}..${RING_KIB_RANGE[1]}, got '${kibText}'`);
  }
  const ringBytes = kib * 1024;
  if (kind === 'serial') {
    const device = attrs[CONSOLE_ATTRIBUTES.device] ?? '';
    if (!devicePatterns.some((pattern) => devicePatternRegExp(pattern).test(device))) {
      throw new Error(`attribute ${CONSOLE_ATTRIBUTES.device} must be a device matching ${devicePatterns.join(', ') || '(none configured)'} (config console.device_patterns), got '${device}'`);
    }
    const baudText = attrs[CONSOLE_ATTRIBUTES.baud];
    const baud = baudText === undefined || baudText === '' ? CONSOLE_DEFAULTS.baud : Number(baudText);
    if (!(BAUD_RATES as readonly number[]).includes(baud)) throw new Error(`attribute ${CONSOLE_ATTRIBUTES.baud} must be one of ${BAUD_RATES.join(', ')}, got '${baudText}'`);
    return { spec: { kind: 'serial', device, baud }, ringBytes };
  }
  if (kind === 'sol') {
    const target = resolveTarget(store, node);
    if (target.kind === 'none') throw new Error(`console sol: ${target.reason}`);
    if (target.kind !== 'ipmi') throw new Error('console sol needs an ipmi:// power_uri');
    const { options: o } = target;
    return {
      spec: {
        kind: 'sol', host: target.host, port: target.port, configFile: ipmi.credentialFile(target.username, target.password),
        cipherSuite: o.cipherSuite, workarounds: o.workarounds, retransmissionTimeoutMs: o.retransmissionTimeoutMs,
      },
      ringBytes,
    };
  }
  throw new Error(`attribute ${CONSOLE_ATTRIBUTES.kind} must be serial, sol or none, got '${kind}'`);
}

/** One node's capture: its line (reopened when it ends), pending output, listeners. */
/** A line that stayed open this long before it ended is reopened at once-ish (backoff starts over). */
const STABLE_LINE_MS = 10_000;

class Capture {
  line?: ConsoleLine;
  /** Why the line last ended or failed to open (status while disconnected; notes deduplicated on it). */
  reason = 'connecting';
  private openedAt = 0;
  readonly listeners = new Set<ConsoleListener>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;
  private flushed: Promise<void> = Promise.resolve();
  /** The open in progress (stop waits for it, so no line outlives its capture). */
  private opening: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly uid: string,
    readonly key: string,
    readonly wanted: ConsoleWanted,
    private readonly ring: ConsoleRing,
    private readonly log: Logger,
    private readonly options: ConsoleOptions,
  ) {}

  start(): void {
    const events = { data: (bytes: Buffer) => this.output(bytes), ended: (reason: string) => this.lineEnded(reason) };
    this.opening = openLine(this.wanted.spec, events).then(async (line) => {
      if (this.stopped) return line.close();
      this.line = line;
      this.openedAt = Date.now();
    }, (err: Error) => this.lineEnded(`cannot open: ${err.message}`));
  }

  private lineEnded(reason: string): void {
    if (this.line && Date.now() - this.openedAt >= STABLE_LINE_MS) this.failures = 0;
    this.line = undefined;
    if (this.stopped) return;
    const delay = Math.min(this.options.maxRetryMs, this.options.retryMs * 2 ** this.failures);
    this.failures++;
    // Noted once per distinct reason, so a dead line does not fill the ring with notes.
    if (reason !== this.reason) this.note(`console line ${reason}; retrying`);
    this.reason = reason;
    this.log.warn({ node: this.uid, reason, retryMs: delay }, 'console line ended');
    this.retryTimer = setTimeout(() => this.start(), delay);
  }

  /** A marker in the log, in the console's own line discipline. */
  private note(text: string): void {
    this.output(Buffer.from(`\r\n[keel: ${text}]\r\n`));
  }

  private output(bytes: Buffer): void {
    for (const listener of this.listeners) listener.data(bytes);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= SEGMENT_BYTES) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), this.options.flushMs);
  }

  /** Store what is pending; resolves once it (and every earlier flush) is durable. */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingBytes > 0) {
      const bytes = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.flushed = this.flushed.then(() => this.ring.append(this.uid, bytes, this.wanted.ringBytes)).catch((err: Error) => {
        this.log.error({ node: this.uid, err: err.message }, 'console log write failed');
      });
    }
    return this.flushed;
  }

  write(bytes: Buffer): boolean {
    if (!this.line) return false;
    this.line.write(bytes);
    return true;
  }

  async stop(reason: string): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.opening;
    await this.line?.close();
    this.line = undefined;
    for (const listener of this.listeners) listener.end(reason);
    this.listeners.clear();
    await this.flush();
  }
}

const RECONCILE_CLASSES = new Set(['node', 'attrib', 'namingpool']);

export class ConsoleService {
  private readonly ring: ConsoleRing;
  private readonly ipmi: FreeIpmi;
  private readonly captures = new Map<string, Capture>();
  /** Nodes whose console attributes are unusable, with the reason. */
  private readonly invalid = new Map<string, string>();
  private unsubscribe?: () => void;
  private periodic?: NodeJS.Timeout;
  private scheduled?: NodeJS.Timeout;
  private stopping: Promise<void>[] = [];

  constructor(
    private readonly store: Store,
    runtimeDir: string,
    private readonly log: Logger,
    /** The devices a serial console may be (config console.device_patterns). */
    private readonly devicePatterns: readonly string[],
    private readonly options: ConsoleOptions = DEFAULT_CONSOLE_OPTIONS,
  ) {
    this.ring = new ConsoleRing(store);
    this.ipmi = new FreeIpmi(runtimeDir);
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((change) => {
      if (change.class === 'node' && change.op === 'delete') void this.forget(change.uid);
      if (RECONCILE_CLASSES.has(change.class)) this.scheduled ??= setTimeout(() => this.reconcile(), 50);
    });
    this.periodic = setInterval(() => this.reconcile(), this.options.reconcileMs).unref();
    this.reconcile();
  }

  /** Start, restart or stop captures so they match the nodes' attributes. */
  reconcile(): void {
    clearTimeout(this.scheduled);
    this.scheduled = undefined;
    const seen = new Set<string>();
    for (const node of nodes(this.store).list()) {
      seen.add(node.uid);
      let wanted: ConsoleWanted | undefined;
      try {
        wanted = consoleWanted(this.store, node, this.ipmi, this.devicePatterns);
        this.invalid.delete(node.uid);
      } catch (err) {
        this.invalid.set(node.uid, (err as Error).message);
      }
      const key = wanted === undefined ? undefined : JSON.stringify(wanted);
      const current = this.captures.get(node.uid);
      if (current && current.key === key) continue;
      if (current) this.stop(current, 'console settings changed');
      if (wanted !== undefined) {
        const capture = new Capture(node.uid, key!, wanted, this.ring, this.log, this.options);
        this.captures.set(node.uid, capture);
        capture.start();
        this.log.info({ node: node.uid, kind: wanted.spec.kind }, 'console capture started');
      }
    }
    for (const capture of this.captures.values()) if (!seen.has(capture.uid)) this.stop(capture, 'node deleted');
  }

  private stop(capture: Capture, reason: string): void {
    this.captures.delete(capture.uid);
    const done = capture.stop(reason);
    this.stopping.push(done);
    void done.finally(() => (this.stopping = this.stopping.filter((p) => p !== done)));
  }

  /** A deleted node's log goes with it. */
  private async forget(uid: string): Promise<void> {
    const capture = this.captures.get(uid);
    if (capture) this.stop(capture, 'node deleted');
    await Promise.all(this.stopping);
    await this.ring.clear(uid).catch((err: Error) => this.log.error({ node: uid, err: err.message }, 'console log delete failed'));
  }

  status(uid: string): ConsoleStatus {
    const capture = this.captures.get(uid);
    const stored = this.ring.size(uid);
    if (!capture) {
      const reason = this.invalid.get(uid);
      return { kind: 'none', connected: false, ...(reason !== undefined ? { reason } : {}), stored_bytes: stored };
    }
    const connected = capture.line !== undefined;
    return { kind: capture.wanted.spec.kind, connected, ...(connected ? {} : { reason: capture.reason }), stored_bytes: stored };
  }

  /** The newest `maxBytes` of the node's log, including output not yet flushed. */
  async tail(uid: string, maxBytes: number): Promise<Buffer> {
    await this.captures.get(uid)?.flush();
    return this.ring.tail(uid, maxBytes);
  }

  /** Listen to the node's live output; undefined when the node has no capture. Returns the detach function. */
  attach(uid: string, listener: ConsoleListener): (() => void) | undefined {
    const capture = this.captures.get(uid);
    if (!capture) return undefined;
    capture.listeners.add(listener);
    return () => capture.listeners.delete(listener);
  }

  /** Keystrokes to the node; false when its line is not open. */
  write(uid: string, bytes: Buffer): boolean {
    return this.captures.get(uid)?.write(bytes) ?? false;
  }

  /** Stop every line (processes by PID), store what is pending, remove the credential files. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.periodic);
    clearTimeout(this.scheduled);
    for (const capture of [...this.captures.values()]) this.stop(capture, 'head shutting down');
    await Promise.all(this.stopping);
    this.ipmi.close();
  }
}

/** The console runtime directory (credential files for ipmiconsole) under the data directory. */
export const consoleRuntimeDir = (dataDir: string) => join(dataDir, 'run', 'console');
