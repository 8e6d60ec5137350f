// The long fuzz run (docs/security.md, "Fuzzing"):
//   node --import tsx test/fuzz/run.ts [--target dhcp-codec|dhcp-handlers|dns-handler|tftp-request|tftp-transfer] [--runs 1000000] [--seed N]
// Runs each target (or the one named) for --runs inputs, then prints one JSON line per target:
// inputs, seconds, heap before and after (a target that leaks grows it). Exits 1 on a failure,
// with fast-check's counterexample, seed and path (replay with --seed and fast-check's `path`).
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { FUZZ_TARGETS, type FuzzTarget } from './targets.js';

const { values } = parseArgs({ options: { target: { type: 'string' }, runs: { type: 'string', default: '1000000' }, seed: { type: 'string' } } });
const runs = Number(values.runs);
const names = values.target === undefined ? (Object.keys(FUZZ_TARGETS) as FuzzTarget[]) : [values.target as FuzzTarget];
for (const name of names) {
  if (!(name in FUZZ_TARGETS)) throw new Error(`unknown target ${name}: one of ${Object.keys(FUZZ_TARGETS).join(', ')}`);
  const seed = values.seed === undefined ? Date.now() : Number(values.seed);
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const details = fc.check(FUZZ_TARGETS[name](), { numRuns: runs, seed });
  const seconds = (performance.now() - started) / 1000;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(JSON.stringify({ target: name, inputs: details.numRuns, failed: details.failed, seed, seconds: Math.round(seconds), heapBeforeMB: Math.round(heapBefore / 2 ** 20), heapAfterMB: Math.round(heapAfter / 2 ** 20) }));
  if (details.failed) {
    console.error(fc.defaultReportMessage(details));
    process.exitCode = 1;
  }
}
