// `keel boot NODE`: the node's last boot as keel saw it (GET /node/<id>/boot,
// docs/boot-timeline.md): when and how it started, its phases with durations, then its events.
import type { Command } from 'commander';
import { formatBytes } from '../client.js';
import { formatTable, print } from '../output.js';
import { clientCommand, seg, sessionFor, type ClientOptions } from './common.js';

interface Phase {
  phase: string;
  start: string;
  end: string;
  duration_seconds: number;
  count: number;
  bytes: number;
  [detail: string]: string | number | boolean;
}

interface Event {
  at: string;
  event: string;
  repeated?: number;
  [detail: string]: string | number | undefined;
}

interface BootView {
  started_at: string;
  started_by: string;
  total_seconds: number;
  reached: string;
  phases: Phase[];
  events: Event[];
  events_dropped: number;
}

/** `key=value` of what a phase or event records beyond its common columns. */
function details(record: Record<string, unknown>, common: readonly string[]): string {
  return Object.entries(record).filter(([key]) => !common.includes(key)).map(([key, value]) => `${key}=${String(value)}`).join(' ');
}

/** One boot as text: a summary line, the phases table, the events table. */
export function formatBoot(title: string, boot: BootView): string {
  const phases = formatTable(['phase', 'start', 'seconds', 'count', 'bytes', 'detail'], boot.phases.map((p) =>
    [p.phase, p.start, p.duration_seconds, p.count, p.bytes > 0 ? formatBytes(p.bytes) : '', details(p, ['phase', 'start', 'end', 'duration_seconds', 'count', 'bytes'])]));
  const events = formatTable(['at', 'event', 'repeated', 'detail'], boot.events.map((e) =>
    [e.at, e.event, e.repeated ?? '', details(e, ['at', 'event', 'repeated'])]));
  const dropped = boot.events_dropped > 0 ? ` (${boot.events_dropped} older events dropped)` : '';
  return `${title}: started ${boot.started_at} by ${boot.started_by}, reached ${boot.reached}, ${boot.total_seconds} s\n\n${phases}\n${events}${dropped ? `${dropped.trim()}\n` : ''}`;
}

export function registerBootCommand(program: Command): void {
  clientCommand(program.command('boot <node>').description("a node's boot timeline: the phases of its last boot (DHCP, TFTP, script, kernel, initramfs, image, agent) and their events")
    .option('--previous', 'also show the boot before'))
    .action(async (node: string, options: ClientOptions & { previous?: boolean }) => {
      const answer = (await (await sessionFor(options)).call('GET', `/node/${seg(node)}/boot`)) as { name?: string; boot: BootView | null; previous: BootView | null };
      print(options.json, answer, () => {
        const name = answer.name ?? node;
        if (answer.boot === null) return `${name}: no boot recorded since the head started\n`;
        const previous = options.previous && answer.previous !== null ? `\n${formatBoot('previous boot', answer.previous)}` : '';
        return `${formatBoot(`${name} last boot`, answer.boot)}${previous}`;
      });
    });
}
