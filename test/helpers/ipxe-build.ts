// What tests that build iPXE share: the vendored source (../shared/vendor/ipxe-src.tar.xz beside
// the repository, as CI has it) and one work directory for every head of a test run,
// <repo>/.cache/ipxe (not committed): the builder unpacks the tree there once and keeps its
// per-platform objects, under flock, so the first build of a platform is cold (minutes on 2
// cores) and every later one, in any test file, only relinks. docs/builders.md.
import { resolve } from 'node:path';

const REPO = new URL('../..', import.meta.url).pathname;

/** The iPXE source tarball the tests build from. */
export const IPXE_SOURCE = resolve(REPO, '..', 'shared', 'vendor', 'ipxe-src.tar.xz');

/** KEEL_* settings of a head that builds from the shared cache (its `ipxe/` folder is <repo>/.cache/ipxe). */
export const IPXE_BUILD_ENV: Readonly<Record<string, string>> = {
  KEEL_BUILD_WORK_DIR: resolve(REPO, '.cache'),
  KEEL_BUILD_IPXE_SOURCE: IPXE_SOURCE,
};

/** Long enough for cold builds of three platforms queued behind each other on a loaded 2-core machine. */
export const COLD_BUILD_TIMEOUT_MS = 40 * 60_000;

export interface BuildView {
  id: number;
  uid: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: number;
  reason?: string;
  url?: string;
  started?: number;
  ended?: number;
  file?: { name: string; size: number; sha256: string };
}

/**
 * Polls `get` (a build's JSON view) until `until` holds, recording every progress value seen;
 * throws after `timeoutMs` with the last view.
 */
export async function waitForBuild(get: () => Promise<BuildView>, until: (view: BuildView) => boolean, timeoutMs: number, seen: number[] = []): Promise<BuildView> {
  const deadline = Date.now() + timeoutMs;
  let view = await get();
  while (!until(view)) {
    if (Date.now() > deadline) throw new Error(`build ${view.id} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 500));
    view = await get();
    if (seen.at(-1) !== view.progress) seen.push(view.progress);
  }
  return view;
}
