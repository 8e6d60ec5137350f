// The default boot assets for tests that boot a VM: images/build.sh run into <repo>/.cache/images
// (not committed). Built once: build.sh holds a lock on the directory, so a second ava worker
// asking at the same time waits for the first, and a build whose inputs have not changed returns
// at once with the files already there. The cache key is build.sh's digest of those inputs: build.sh
// itself (the root's package list), every file under images/initramfs/ and images/rootfs/ (the
// agent, keel-sshd, the customize hook), the kernel and busybox versions and the release — so a
// change to what goes into the image rebuilds it here and in CI.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const REPO = new URL('../..', import.meta.url).pathname;
/** Where the assets are built; .gitignore'd. */
export const ASSETS_DIR = join(REPO, '.cache', 'images');
/** A cold build downloads a kernel and a Debian root: bounded, but generously. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

export interface BootAssets {
  /** The directory holding the three files (what `keel init --assets` and `boot.assets_dir` take). */
  dir: string;
  /** Debian's kernel. */
  vmlinuz: string;
  /** keel's initramfs (images/initramfs). */
  initramfs: string;
  /** The default root image (squashfs) with the node agent. */
  rootfs: string;
}

let building: Promise<BootAssets> | undefined;

/** The default assets, built by images/build.sh when missing or out of date (once per process). */
export function defaultAssets(): Promise<BootAssets> {
  building ??= new Promise((resolve, reject) => {
    execFile('bash', [join(REPO, 'images', 'build.sh'), ASSETS_DIR], { timeout: BUILD_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) {
        building = undefined;
        reject(new Error(`images/build.sh ${ASSETS_DIR} failed (${error.message}):\n${(stdout + stderr).slice(-4000)}`));
        return;
      }
      resolve({ dir: ASSETS_DIR, vmlinuz: join(ASSETS_DIR, 'vmlinuz'), initramfs: join(ASSETS_DIR, 'initramfs.img'), rootfs: join(ASSETS_DIR, 'rootfs.squashfs') });
    });
  });
  return building;
}
