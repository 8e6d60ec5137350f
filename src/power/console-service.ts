// Serial console capture for every node whose attributes ask for it (`console` = serial | tcp | sol):
// one line per node (console-line.ts), its output appended to the node's ring log in the store
// (console-ring.ts) and passed to live listeners (the WebSocket console), keystrokes from those
// listeners written to the line. A line that ends is reopened with a backoff. Which nodes
// capture follows the store: node and attribute-group changes (change feed) and a periodic pass
// (cluster settings such as default_group have no change feed entry).
import { join } from 'node:path';
import type { Logger } from 'pino';
import { mergedAttributes, nodes } from '../model/cluster.js';
import { PowerSettings } from '../model/power-settings.js';
import type { Store, StoredRecord } from '../store/store.js';
import { ConsoleUnavailable, openSolLine, type ConsoleLine, type LineEvents, type LineSpec, type SerialSpec } from './console-line.js';
import { openSerialLine } from './console-serial.js';
import { openTcpLine } from './console-tcp.js';
import { ConsoleRing, SEGMENT_BYTES } from './console-ring.js';
import { FreeIpmi } from './ipmi.js';
import { resolveTarget } from './target.js';

/** Attribute names read by console capture besides the line settings of src/model/power-settings.ts (docs/power.md). */
export const CONSOLE_ATTRIBUTES = { kind: 'console', device: 'console_device', address: 'console_address' } as const;

/** BREAK duration (serial lines): default and bounds, in ms. */
export const BREAK_MS = { default: 250, min: 10, max: 5000 } as const;

/** What a node's attributes ask for: a line and the ring bound in bytes. */
export interface ConsoleWanted {
  spec: LineSpec;
  ringBytes: number;
}

export interface ConsoleStatus {
  /** `none`: the node does not ask for capture. */
  kind: 'serial' | 'tcp' | 'sol' | 'none';
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
  const settings = new PowerSettings(attrs);
  const ringBytes = settings.integer('console_ring_kib') * 1024;
  if (kind === 'serial') {
    const device = attrs[CONSOLE_ATTRIBUTES.device] ?? '';
    if (!devicePatterns.some((pattern) => devicePatternRegExp(pattern).test(device))) {
      throw new Error(`attribute ${CONSOLE_ATTRIBUTES.device} must be a device matching ${devicePatterns.join(', ') || '(none configured)'} (config console.device_patterns), got '${device}'`);
    }
    const spec: SerialSpec = {
      kind: 'serial', device,
      baud: Number(settings.choice('console_baud')),
      dataBits: Number(settings.choice('console_data_bits')) as SerialSpec['dataBits'],
      parity: settings.choice('console_parity'),
      stopBits: Number(settings.choice('console_stop_bits')) as SerialSpec['stopBits'],
      flow: settings.choice('console_flow'),
    };
    return { spec, ringBytes };
  }
  if (kind === 'tcp') {
    const text = attrs[CONSOLE_ATTRIBUTES.address] ?? '';
    const address = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
    const port = Number(address?.[3]);
    if (!address || port < 1 || port > 65_535) throw new Error(`attribute ${CONSOLE_ATTRIBUTES.address} must be host:port (a terminal server's TCP port; [v6]:port), got '${text}'`);
    return { spec: { kind: 'tcp', host: address[1] ?? address[2]!, port, protocol: settings.choice('console_protocol') }, ringBytes };
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
  throw new Error(`attribute ${CONSOLE_ATTRIBUTES.kind} must be serial, tcp, sol or none, got '${kind}'`);
}

function openLine(spec: LineSpec, events: LineEvents): Promise<ConsoleLine> {
  switch (spec.kind) {
    case 'serial':
      return openSerialLine(spec, events);
    case 'tcp':
      return openTcpLine(spec, events);
    case 'sol':
      return Promise.resolve(openSolLine(spec, events));
  }
}

/** A line that stayed open this long before it ended is reopened at once-ish (backoff starts over). */
const STABLE_LINE_MS = 10_000;

/** One node's capture: its line (reopened when it ends), pending output, listeners. */
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

  /** Open the line once `previous` (the node's capture being replaced, which may hold the device's lock) has stopped. */
  start(previous: Promise<void> = Promise.resolve()): void {
    const events = { data: (bytes: Buffer) => this.output(bytes), ended: (reason: string) => this.lineEnded(reason) };
    this.opening = previous.then(() => openLine(this.wanted.spec, events)).then(async (line) => {
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

  async sendBreak(durationMs: number, sender: string): Promise<void> {
    const line = this.line;
    if (!line) throw new ConsoleUnavailable(`console line not connected: ${this.reason}`);
    const kind = this.wanted.spec.kind;
    const fields = { node: this.uid, admin: sender, kind, ...(kind === 'serial' ? { durationMs } : {}) };
    try {
      await line.sendBreak(durationMs);
    } catch (err) {
      this.log.warn({ ...fields, err: (err as Error).message }, 'console break not sent');
      this.note(`BREAK from ${sender} not sent: ${(err as Error).message}`);
      throw err;
    }
    this.log.info(fields, 'console break');
    // In the console log too, where whoever reads it later sees why the node printed its SysRq output.
    this.note(`BREAK from ${sender}`);
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
      const previous = current ? this.stop(current, 'console settings changed') : undefined;
      if (wanted !== undefined) {
        const capture = new Capture(node.uid, key!, wanted, this.ring, this.log, this.options);
        this.captures.set(node.uid, capture);
        capture.start(previous);
        this.log.info({ node: node.uid, kind: wanted.spec.kind }, 'console capture started');
      }
    }
    for (const capture of this.captures.values()) if (!seen.has(capture.uid)) void this.stop(capture, 'node deleted');
  }

  private stop(capture: Capture, reason: string): Promise<void> {
    this.captures.delete(capture.uid);
    const done = capture.stop(reason);
    this.stopping.push(done);
    void done.finally(() => (this.stopping = this.stopping.filter((p) => p !== done)));
    return done;
  }

  /** A deleted node's log goes with it. */
  private async forget(uid: string): Promise<void> {
    const capture = this.captures.get(uid);
    if (capture) void this.stop(capture, 'node deleted');
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

  /**
   * A serial BREAK to the node, logged with `sender`; resolves once sent (serial: after
   * `durationMs`, BREAK_MS bounds checked by the caller). Throws ConsoleUnavailable when the node
   * has no capture or its line is down, another Error when the line refused the break.
   */
  async sendBreak(uid: string, durationMs: number, sender: string): Promise<void> {
    const capture = this.captures.get(uid);
    if (!capture) throw new ConsoleUnavailable(`no console capture${this.invalid.has(uid) ? `: ${this.invalid.get(uid)}` : ' (set the node\'s \'console\' attribute)'}`);
    await capture.sendBreak(durationMs, sender);
  }

  /** Stop every line (processes by PID), store what is pending, remove the credential files. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.periodic);
    clearTimeout(this.scheduled);
    for (const capture of [...this.captures.values()]) void this.stop(capture, 'head shutting down');
    await Promise.all(this.stopping);
    this.ipmi.close();
  }
}

/** The console runtime directory (credential files for ipmiconsole) under the data directory. */
export const consoleRuntimeDir = (dataDir: string) => join(dataDir, 'run', 'console');
