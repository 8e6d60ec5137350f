// The boot timeline of each node (docs/boot-timeline.md): what DHCP, TFTP, the /boot routes and
// the node agent saw of a node's last boot and the one before, with times, in memory only. The
// servers report events here through the small interfaces they are given (their options'
// `bootEvents`, the /boot routes' BootPathEvents); GET /node/<id>/boot reads it. One recorder per head, made by
// src/serve.ts. Sources are told apart by MAC (DHCP, ?mac=) or by source address (TFTP, /boot
// HTTP, putstatus), mapped to nodes through the model; events of unknown sources are only counted.
import { nodes } from '../model/cluster.js';
import type { Model } from '../model/model.js';

/** The phases of a boot, in the order a network boot passes them. */
export const BOOT_PHASES = ['dhcp', 'tftp', 'script', 'kernel', 'initramfs', 'image', 'agent'] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];

/** The phase durations /metrics keeps histograms of (observed once per boot, when known). */
export const PHASE_DURATIONS = ['dhcp_to_script', 'script_to_kernel', 'image_fetch', 'boot_to_agent'] as const;
export type PhaseDuration = (typeof PHASE_DURATIONS)[number];

/** What kind of /boot route answered: the `kind` label of the boot-path counters. */
export type BootRouteKind = 'script' | 'kernel' | 'initramfs' | 'image' | 'manifest' | 'chunk' | 'firmware';

/** One /boot request, reported once its reply is done (sent, aborted, or refused). */
export interface ServedReply {
  kind: BootRouteKind;
  /** For `manifest`: the kind of file the manifest describes. */
  of?: BootRouteKind;
  /** The client's address. */
  from: string;
  /** Epoch ms: the request reached its route; the reply was done. */
  startedAt: number;
  endedAt: number;
  /** The status sent (200, 206, 304, 416), or undefined when the route refused: then `error` is set. */
  status?: number;
  error?: unknown;
  /** Body bytes handed to the connection, and the size of the whole file. */
  bytes: number;
  size: number;
}

/** A DHCP reply the server sent (src/net/dhcp/server.ts reports them). */
export interface DhcpReplyEvent {
  mac: string;
  /** OFFER, ACK, NAK. */
  type: string;
  /** The address given (0.0.0.0 in proxy replies and INFORM ACKs). */
  yiaddr: string;
  /** The client's own address, when it has one (a port-4011 REQUEST). */
  ciaddr: string;
  /** Who asked: a network-boot client (PXE or HTTP firmware, or iPXE), or anything else (an OS's DHCP client). */
  client: 'firmware' | 'ipxe' | 'other';
}

/** A TFTP transfer that ended (src/net/tftp/server.ts reports them). */
export interface TftpTransferEvent {
  address: string;
  file: string;
  /** The transfer's outcome (complete, timeout, …), or not-found / access-violation / server-error before any transfer. */
  outcome: string;
  bytes: number;
  durationMs: number;
  /** Blocks sent again (retransmissions). */
  retransmits: number;
}

/** How events find their node: by MAC or by address; undefined for an unknown source. */
export interface NodeFinder {
  byMac(mac: string): string | undefined;
  byAddress(address: string): string | undefined;
}

/** The node directory of the model: the `mac` and `ip` indexes of the nodes (one LMDB lookup each). */
export function modelNodeFinder(model: Model): NodeFinder {
  const collection = nodes(model.store);
  return {
    byMac: (mac) => collection.lookup('mac', mac),
    byAddress: (address) => collection.lookup('ip', address),
  };
}

export interface TimelineOptions {
  nodes: NodeFinder;
  /** Epoch ms. */
  clock?: () => number;
  /** Nodes whose timelines are kept; beyond, the node whose boot started longest ago is forgotten. */
  maxNodes?: number;
  /** Events kept per boot; later ones are counted in `events_dropped` (phases still update). */
  maxEvents?: number;
  /** A boot-client DHCP this long after a boot's last event starts a new boot, even before its script. */
  idleGapMs?: number;
  /** Called once per boot and duration, when the duration becomes known (the /metrics histograms). */
  onPhaseDuration?: (duration: PhaseDuration, seconds: number) => void;
}

export const DEFAULT_MAX_NODES = 10_000;
export const DEFAULT_MAX_EVENTS = 32;
export const DEFAULT_IDLE_GAP_MS = 10 * 60_000;
/** How long an address no node has is remembered as unknown (a source without a node costs one lookup per interval, not per request). */
const UNKNOWN_ADDRESS_TTL_MS = 5_000;
const UNKNOWN_ADDRESS_LIMIT = 4_096;

/** Where an event came from, for the counters of unknown sources. */
export type EventSource = 'dhcp' | 'tftp' | 'http';

interface PhaseRecord {
  start: number;
  end: number;
  /** Requests, transfers or DHCP replies that made up the phase. */
  count: number;
  bytes: number;
  /** Phase-specific facts (for the API): file names, outcomes, the script's problem, the image's mode… */
  detail: Record<string, string | number | boolean>;
}

interface BootEvent {
  at: number;
  event: string;
  detail: Record<string, string | number>;
  /** The same event again right after (a retry script every 30 s, a DHCP retransmission). */
  repeated: number;
}

interface Boot {
  startedAt: number;
  startedBy: string;
  updatedAt: number;
  /** A boot script (not a retry script) was served: the next boot-client DHCP starts a new boot. */
  pastScript: boolean;
  firstScriptAt?: number;
  phases: Partial<Record<BootPhase, PhaseRecord>>;
  events: BootEvent[];
  eventsDropped: number;
  /** The durations already observed for this boot: bit i for PHASE_DURATIONS[i] (a Set per boot costs more memory than the timeline's events). */
  observed: number;
}

interface NodeBoots {
  current: Boot;
  previous?: Boot;
}

/** A boot as GET /node/<id>/boot returns it (docs/boot-timeline.md). */
export interface BootTimelineView {
  started_at: string;
  started_by: string;
  updated_at: string;
  /** From the boot's first event to its latest one. */
  total_seconds: number;
  /** The latest phase reached. */
  reached: BootPhase;
  phases: Array<{ phase: BootPhase; start: string; end: string; duration_seconds: number; count: number; bytes: number } & Record<string, string | number | boolean>>;
  events: Array<{ at: string; event: string; repeated?: number } & Record<string, string | number>>;
  events_dropped: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (ms: number) => Math.round(ms) / 1000;

export class BootTimelines {
  private readonly boots = new Map<string, NodeBoots>();
  /** Address → node, learned from DHCP (the address given) and script fetches (?mac= from an address). */
  private readonly learned = new Map<string, string>();
  /** Node → the address learned for it last (to forget when it changes), oldest first. */
  private readonly addressOf = new Map<string, string>();
  /** Addresses no node has, until when (epoch ms). */
  private readonly unknownAddresses = new Map<string, number>();
  private readonly unknown: Record<EventSource, number> = { dhcp: 0, tftp: 0, http: 0 };
  private readonly clock: () => number;
  private readonly maxNodes: number;
  private readonly maxEvents: number;
  private readonly idleGapMs: number;

  constructor(private readonly options: TimelineOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
    this.maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    this.idleGapMs = options.idleGapMs ?? DEFAULT_IDLE_GAP_MS;
  }

  /** Events whose source is no known node, by where they came from. */
  unknownSources(): Readonly<Record<EventSource, number>> {
    return { ...this.unknown };
  }

  /** Nodes with a timeline now. */
  get size(): number {
    return this.boots.size;
  }

  // --- events -------------------------------------------------------------------------------

  dhcpReplied(reply: DhcpReplyEvent): void {
    const uid = this.options.nodes.byMac(reply.mac);
    if (uid === undefined) {
      this.unknown.dhcp++;
      return;
    }
    const now = this.clock();
    const proxy = reply.yiaddr === '0.0.0.0';
    const event = `${proxy && reply.type !== 'NAK' ? 'proxy-' : 'dhcp-'}${reply.type.toLowerCase()}`;
    const address = proxy ? reply.ciaddr : reply.yiaddr;
    if (address !== '0.0.0.0' && reply.type === 'ACK') this.learn(address, uid);
    const detail: Record<string, string | number> = { client: reply.client };
    if (address !== '0.0.0.0') detail.ip = address;
    if (reply.client === 'other') {
      // The booted system's own DHCP client (an initramfs, the OS): part of the boot, not a phase of it.
      const boots = this.boots.get(uid);
      if (boots) this.addEvent(boots.current, now, event, detail);
      return;
    }
    const boot = this.bootFor(uid, now, 'dhcp', (current) => current.pastScript || now - current.updatedAt >= this.idleGapMs);
    this.addEvent(boot, now, event, detail);
    const phase = this.phase(boot, 'dhcp', now, now);
    phase.count++;
    phase.detail.client = reply.client;
    if (address !== '0.0.0.0') phase.detail.ip = address;
    // A NAK carries no address in either mode: it says nothing of the mode.
    if (reply.type === 'NAK') phase.detail.naks = Number(phase.detail.naks ?? 0) + 1;
    else phase.detail.mode = proxy ? 'proxy' : 'authoritative';
  }

  tftpTransferEnded(transfer: TftpTransferEvent): void {
    const uid = this.nodeAt(transfer.address, 'tftp');
    if (uid === undefined) return;
    const now = this.clock();
    const boot = this.bootFor(uid, now, 'tftp');
    const start = now - transfer.durationMs;
    this.addEvent(boot, now, 'tftp', { file: transfer.file, outcome: transfer.outcome, bytes: transfer.bytes, duration_seconds: seconds(transfer.durationMs), retransmits: transfer.retransmits });
    const phase = this.phase(boot, 'tftp', start, now);
    phase.count++;
    phase.bytes += transfer.bytes;
    phase.detail.file = transfer.file;
    phase.detail.outcome = transfer.outcome;
    phase.detail.retransmits = Number(phase.detail.retransmits ?? 0) + transfer.retransmits;
    if (transfer.outcome !== 'complete') phase.detail.failures = Number(phase.detail.failures ?? 0) + 1;
  }

  /** The iPXE script for `mac` was served to `from`; `problem` when it was a retry script. */
  scriptServed(mac: string, from: string, problem: string | undefined): void {
    const uid = this.options.nodes.byMac(mac);
    if (uid === undefined) {
      this.unknown.http++;
      return;
    }
    const now = this.clock();
    this.learn(from, uid);
    const boot = this.bootFor(uid, now, 'script');
    this.addEvent(boot, now, problem === undefined ? 'script' : 'retry-script', problem === undefined ? {} : { problem });
    const phase = this.phase(boot, 'script', now, now);
    phase.count++;
    if (problem !== undefined) {
      phase.detail.retries = Number(phase.detail.retries ?? 0) + 1;
      phase.detail.problem = problem;
      return;
    }
    delete phase.detail.problem;
    if (!boot.pastScript) {
      boot.pastScript = true;
      boot.firstScriptAt = now;
      if (boot.startedBy === 'dhcp') this.observe(boot, 'dhcp_to_script', now - boot.startedAt);
    }
  }

  /** A /boot reply finished (the routes report every one; scripts come through scriptServed as well). */
  httpServed(served: ServedReply): void {
    const phaseName = phaseOfReply(served);
    if (phaseName === undefined) return;
    const uid = this.nodeAt(served.from, 'http');
    if (uid === undefined) return;
    const boot = this.bootFor(uid, served.endedAt, phaseName);
    const complete = served.status !== undefined && served.status < 300 && served.bytes === served.size && served.size > 0;
    const phase = this.phase(boot, phaseName, served.startedAt, served.endedAt);
    phase.count++;
    phase.bytes += served.bytes;
    if (served.status === undefined) phase.detail.refused = Number(phase.detail.refused ?? 0) + 1;
    if (served.kind === 'chunk') {
      // One chunk of many: counted in the phase, not an event each.
      phase.detail.mode = 'chunked';
      if (served.status !== undefined) phase.detail.chunks = Number(phase.detail.chunks ?? 0) + 1;
      return;
    }
    // A refusal (no such file, no image in the boot config) shows with its reason.
    const outcome: Record<string, string | number> = served.status === undefined ? { status: 'refused', reason: served.error instanceof Error ? served.error.message : String(served.error) } : { status: served.status };
    if (served.kind === 'manifest') {
      phase.detail.mode = 'chunked';
      this.addEvent(boot, served.endedAt, `${phaseName}-manifest`, outcome);
      return;
    }
    if (phaseName === 'image' && phase.detail.mode === undefined) phase.detail.mode = 'whole';
    this.addEvent(boot, served.endedAt, phaseName, { ...outcome, bytes: served.bytes, size: served.size, duration_seconds: seconds(served.endedAt - served.startedAt) });
    phase.detail.complete = phase.detail.complete === true || complete;
    if (!complete) return;
    if (phaseName === 'kernel' && boot.firstScriptAt !== undefined) this.observe(boot, 'script_to_kernel', served.endedAt - boot.firstScriptAt);
    if (phaseName === 'image') this.observe(boot, 'image_fetch', served.endedAt - served.startedAt);
  }

  /**
   * The node's agent reported (PUT /node/putstatus): the first report of a boot ends it. A report
   * long after the boot's last event (a node that later started from its disk, unseen) is not its.
   */
  agentContact(uid: string): void {
    const boots = this.boots.get(uid);
    const now = this.clock();
    if (!boots || boots.current.phases.agent || now - boots.current.updatedAt >= this.idleGapMs) return;
    const boot = boots.current;
    this.addEvent(boot, now, 'agent', {});
    this.phase(boot, 'agent', now, now).count++;
    const image = boot.phases.image;
    // A chunked fetch has no last request to tell it is done: by the agent's first report it is.
    if (image && image.detail.mode === 'chunked') this.observe(boot, 'image_fetch', image.end - image.start);
    if (boot.startedBy === 'dhcp') this.observe(boot, 'boot_to_agent', now - boot.startedAt);
  }

  // --- reading ------------------------------------------------------------------------------

  /** The node's last boot and the one before (null when there is none). */
  timelines(uid: string): { boot: BootTimelineView | null; previous: BootTimelineView | null } {
    const boots = this.boots.get(uid);
    return { boot: boots ? view(boots.current) : null, previous: boots?.previous ? view(boots.previous) : null };
  }

  // --- internals ----------------------------------------------------------------------------

  /**
   * The node's current boot, or a new one when it has none or `startsNew` says the event begins
   * another (only DHCP does: docs/boot-timeline.md, "When a boot starts").
   */
  private bootFor(uid: string, now: number, startedBy: string, startsNew?: (current: Boot) => boolean): Boot {
    const boots = this.boots.get(uid);
    if (boots && !(startsNew?.(boots.current) ?? false)) {
      boots.current.updatedAt = Math.max(boots.current.updatedAt, now);
      return boots.current;
    }
    const boot: Boot = { startedAt: now, startedBy, updatedAt: now, pastScript: false, phases: {}, events: [], eventsDropped: 0, observed: 0 };
    if (boots) {
      boots.previous = boots.current;
      boots.current = boot;
      // Most recently started last: the map's first entry is the one to forget when full.
      this.boots.delete(uid);
      this.boots.set(uid, boots);
    } else {
      if (this.boots.size >= this.maxNodes) this.forgetOldest();
      this.boots.set(uid, { current: boot });
    }
    return boot;
  }

  private forgetOldest(): void {
    const oldest = this.boots.keys().next();
    if (!oldest.done) this.boots.delete(oldest.value);
  }

  private phase(boot: Boot, name: BootPhase, start: number, end: number): PhaseRecord {
    let phase = boot.phases[name];
    if (!phase) {
      phase = { start, end, count: 0, bytes: 0, detail: {} };
      boot.phases[name] = phase;
    } else {
      phase.start = Math.min(phase.start, start);
      phase.end = Math.max(phase.end, end);
    }
    return phase;
  }

  private addEvent(boot: Boot, at: number, event: string, detail: Record<string, string | number>): void {
    boot.updatedAt = Math.max(boot.updatedAt, at);
    const last = boot.events[boot.events.length - 1];
    if (last && last.event === event && sameDetail(last.detail, detail)) {
      last.repeated++;
      last.at = at;
      return;
    }
    if (boot.events.length >= this.maxEvents) {
      boot.eventsDropped++;
      return;
    }
    boot.events.push({ at, event, detail, repeated: 0 });
  }

  private observe(boot: Boot, duration: PhaseDuration, ms: number): void {
    const bit = 1 << PHASE_DURATIONS.indexOf(duration);
    if ((boot.observed & bit) !== 0 || ms < 0) return;
    boot.observed |= bit;
    this.options.onPhaseDuration?.(duration, ms / 1000);
  }

  /** The node at `address`: learned from DHCP and scripts first (proxy mode), else the model's node `ip`. */
  private nodeAt(address: string, source: EventSource): string | undefined {
    const learned = this.learned.get(address);
    if (learned !== undefined) return learned;
    const now = this.clock();
    const unknownUntil = this.unknownAddresses.get(address);
    if (unknownUntil !== undefined && unknownUntil > now) {
      this.unknown[source]++;
      return undefined;
    }
    const uid = this.options.nodes.byAddress(address);
    if (uid !== undefined) {
      this.unknownAddresses.delete(address);
      return uid;
    }
    if (this.unknownAddresses.size >= UNKNOWN_ADDRESS_LIMIT) this.unknownAddresses.clear();
    this.unknownAddresses.set(address, now + UNKNOWN_ADDRESS_TTL_MS);
    this.unknown[source]++;
    return undefined;
  }

  /** `address` is `uid`'s now (a DHCP ACK gave it, or the node fetched its script from it). */
  private learn(address: string, uid: string): void {
    if (this.learned.get(address) === uid) return;
    this.unknownAddresses.delete(address);
    const previous = this.addressOf.get(uid);
    if (previous !== undefined && this.learned.get(previous) === uid) this.learned.delete(previous);
    this.addressOf.delete(uid);
    // Bounded like the timelines: the address learned longest ago goes first.
    if (this.addressOf.size >= this.maxNodes) {
      const [oldUid, oldAddress] = this.addressOf.entries().next().value!;
      this.addressOf.delete(oldUid);
      if (this.learned.get(oldAddress) === oldUid) this.learned.delete(oldAddress);
    }
    this.learned.set(address, uid);
    this.addressOf.set(uid, address);
  }
}

/** The phase a /boot reply belongs to; undefined for firmware (the iPXE binary over HTTP is part of DHCP → script) and scripts (scriptServed). */
function phaseOfReply(served: ServedReply): BootPhase | undefined {
  const kind = served.kind === 'manifest' ? served.of : served.kind === 'chunk' ? 'image' : served.kind;
  if (kind === 'kernel' || kind === 'initramfs' || kind === 'image') return kind;
  return undefined;
}

function sameDetail(a: Record<string, string | number>, b: Record<string, string | number>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

function view(boot: Boot): BootTimelineView {
  const phases = BOOT_PHASES.flatMap((name) => {
    const phase = boot.phases[name];
    if (!phase) return [];
    return [{ phase: name, start: iso(phase.start), end: iso(phase.end), duration_seconds: seconds(phase.end - phase.start), count: phase.count, bytes: phase.bytes, ...phase.detail }];
  }).sort((a, b) => a.start.localeCompare(b.start));
  const reached = BOOT_PHASES.filter((name) => boot.phases[name] !== undefined).at(-1) ?? 'dhcp';
  return {
    started_at: iso(boot.startedAt),
    started_by: boot.startedBy,
    updated_at: iso(boot.updatedAt),
    total_seconds: seconds(boot.updatedAt - boot.startedAt),
    reached,
    phases,
    events: boot.events.map(({ at, event, detail, repeated }) => ({ at: iso(at), event, ...detail, ...(repeated > 0 ? { repeated } : {}) })),
    events_dropped: boot.eventsDropped,
  };
}
