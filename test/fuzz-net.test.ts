// The short pass of the network fuzz targets (test/fuzz/targets.ts) that runs in `npm test`; the
// long run is test/fuzz/run.ts (docs/security.md, "Fuzzing").
import test from 'ava';
import fc from 'fast-check';
import { FUZZ_TARGETS } from './fuzz/targets.js';

const RUNS = { 'dhcp-codec': 5000, 'dhcp-handlers': 3000, 'dns-handler': 5000, 'tftp-request': 5000, 'tftp-transfer': 500 } as const;

for (const [name, property] of Object.entries(FUZZ_TARGETS)) {
  test(`fuzz ${name}: ${RUNS[name as keyof typeof RUNS]} inputs, no throw, no broken invariant`, (t) => {
    // A fresh seed each run widens coverage over CI runs; a failure prints the seed and path to replay it.
    fc.assert(property(), { numRuns: RUNS[name as keyof typeof RUNS] });
    t.pass();
  });
}
