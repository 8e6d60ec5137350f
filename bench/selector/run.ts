// Node-selector evaluation over 10,000 synthetic nodes (target: < 20 ms per selector, docs/selector.md).
// keel's way, selectNodes: parse once, evaluate the tree on every node. The baseline beside it is
// the naive way, parsing the selector again for every node, to show what parsing once buys.
//   node --import tsx bench/selector/run.ts [--nodes 10000] [--runs 50]
import { parseArgs } from 'node:util';
import { matchesSelector, parseSelector, selectNodes, type SelectorSubject } from '../../src/model/selector.js';
import { seededRandom } from '../../test/helpers/prng.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '50' },
    'baseline-runs': { type: 'string', default: '5' },
  },
});
const nodeCount = Number(values.nodes);
const runs = Number(values.runs);
const baselineRuns = Number(values['baseline-runs']);

type BenchNode = SelectorSubject & { uid: string };


/** A cluster as the API would see it: attributes are strings, reports mix numbers and unit strings. */
function syntheticNodes(count: number): BenchNode[] {
  const next = seededRandom(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const ramGiB = pick([64, 128, 256, 512]);
    return {
      uid: i.toString(16).padStart(32, '0'),
      attributes: {
        _boot_config: pick(['DefaultBoot', 'DefaultBoot', 'GPUBoot', 'DiskfulBoot']),
        _boot_style: pick(['rwram', 'roram', 'disked']),
        rack: `r${String(Math.floor(i / 40)).padStart(3, '0')}`,
        gpu: pick(['yes', 'no', 'no', 'no']),
        name: `n${i}`,
      },
      // Half the reports carry bytes as numbers, half as text with a unit, as plugins differ.
      hardware: {
        ram_total: next() < 0.5 ? ramGiB * 2 ** 30 : `${ramGiB}GiB`,
        cpu_count: pick([16, 32, 48, 64, 128]),
        cpu_model: pick(['AMD EPYC 9654', 'Intel Xeon Gold 6338', 'Ampere Altra Q80-30']),
        disk_total: `${pick([480, 960, 1920])} GB`,
      },
      status: {
        state: pick(['up', 'up', 'up', 'down', 'booting']),
        load_avg: Math.round(next() * 400) / 100,
        uptime: Math.floor(next() * 1e6),
      },
    };
  });
}

const SELECTORS = [
  ['spec BigMemory', 'h[ram_total] > 100GB'],
  ['typical', 'h[ram_total] > 100GB and a[_boot_config] == "DefaultBoot" and not s[state] =~ /^down/'],
  ['wide', '(h[cpu_count] >= 48 or a[gpu]) and s[load_avg] < 1.5 and a[name] =~ /^n[0-9]*7$/ and h[disk_total] >= 1TB and a[_boot_style] != "disked"'],
  ['missing keys', 'a[absent] == "x" or h[absent] > 1G or s[absent] =~ /x/ or a[nope]'],
] as const;

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}
const median = (samples: number[]): number => percentile(samples, 0.5);

function timeRuns(count: number, body: () => number): { samples: number[]; matched: number } {
  const samples: number[] = [];
  let matched = 0;
  for (let i = 0; i < count; i += 1) {
    const start = performance.now();
    matched = body();
    samples.push(performance.now() - start);
  }
  return { samples, matched };
}

const nodes = syntheticNodes(nodeCount);
console.log(`${nodeCount} nodes, ${runs} runs of selectNodes (after ${runs} warm-up runs), ${baselineRuns} of the per-node re-parse baseline`);
console.log('');
console.log('| selector | matched | selectNodes median | min | p95 | max | re-parse per node median | ratio |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [label, text] of SELECTORS) {
  const once = (): number => {
    const result = selectNodes(text, nodes);
    if (!result.ok) throw new Error(`${label}: ${result.reason}`);
    return result.uids.length;
  };
  const perNode = (): number => {
    let matched = 0;
    for (const subject of nodes) {
      const result = parseSelector(text);
      if (!result.ok) throw new Error(`${label}: ${result.reason}`);
      if (matchesSelector(result.ast, subject)) matched += 1;
    }
    return matched;
  };
  timeRuns(runs, once);
  const keel = timeRuns(runs, once);
  timeRuns(1, perNode);
  const baseline = timeRuns(baselineRuns, perNode);
  if (baseline.matched !== keel.matched) throw new Error(`${label}: baseline matched ${baseline.matched}, selectNodes ${keel.matched}`);
  const ms = (value: number): string => `${value.toFixed(2)} ms`;
  console.log(
    `| ${label}: \`${text}\` | ${keel.matched} | ${ms(median(keel.samples))} | ${ms(Math.min(...keel.samples))} | ${ms(percentile(keel.samples, 0.95))} | ` +
    `${ms(Math.max(...keel.samples))} | ${ms(median(baseline.samples))} | ${(median(baseline.samples) / median(keel.samples)).toFixed(1)}× |`,
  );
}
