// What the e2e tests that boot a node from keel's default image share: the default image and boot
// config uploaded through the API as an operator does, the wait for the node agent's first report
// (what a user checks after powering a node on), and failure messages that show the VM's serial
// console and keel's log tail.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import type { Vm } from '../dhcp/boot-lab.js';
import type { KeelProcess } from '../dhcp/keel-in-netns.js';
import type { BootAssets } from './assets.js';
import type { ApiReply, NamespaceApi } from './netns-api.js';

/** keel's ports in the lab: HTTP, and TFTP where firmware PXE asks. */
export const HTTP_PORT = 8080;
export const TFTP_PORT = 69;
/** The address keel has for the booting node (the first of the lab network's addresses). */
export const NODE_IP = '10.67.0.100';
/**
 * QEMU start → the agent's first report: measured 52–152 s under TCG on 2 shared cores (152 s at a
 * load average of 13), so bounded generously.
 */
export const BOOT_TIMEOUT_MS = 360_000;
/** A cold images/build.sh (downloads, mmdebstrap, mksquashfs); a warm one returns at once. */
export const BUILD_TIMEOUT_MS = 15 * 60_000;
/** Enough for rwram: the root's files in a tmpfs beside the kernel and the initramfs. */
export const VM_RAM_MIB = 1024;
const POLL_MS = 2_000;

export type RootMode = 'rwram' | 'roram';

export const sha256Of = (file: string) => new Promise<string>((resolve, reject) => {
  const hash = createHash('sha256');
  createReadStream(file).on('data', (data) => hash.update(data)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
});

/** `reply` when it is a 200; an error saying `what` failed otherwise. */
export function ok(what: string, reply: ApiReply): ApiReply {
  if (reply.status !== 200) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.json)}`);
  return reply;
}

/** DefaultImage and DefaultBoot from the assets, through the API, as an operator makes them. */
export async function uploadDefaults(api: NamespaceApi, token: string, assets: BootAssets, root: RootMode): Promise<{ image: string; bootConfig: string }> {
  const image = ok('POST /images', await api.call('POST', '/images', { token, body: { name: 'DefaultImage' } })).json.data as string;
  ok('image content', await api.upload(`/image/${image}/content`, assets.rootfs, token));
  const bootConfig = ok('POST /bootconfigs', await api.call('POST', '/bootconfigs', {
    token, body: { name: 'DefaultBoot', image, boot_style: root, cmdline: 'console=ttyS0,115200n8' },
  })).json.data as string;
  ok('kernel', await api.upload(`/bootconfig/${bootConfig}/kernel`, assets.vmlinuz, token));
  ok('initramfs', await api.upload(`/bootconfig/${bootConfig}/initramfs`, assets.initramfs, token));
  return { image, bootConfig };
}

/** The last `lines` lines of a file, for failure messages. */
export function tail(file: string, lines: number): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '(no file)';
}

/** An error saying `why`, with the VM's serial console (the file `serial`) and keel's log tail. */
export function bootFailure(serial: string, keel: KeelProcess): (why: string) => Error {
  return (why) => new Error(`${why}\n--- VM serial console (last 60 lines) ---\n${tail(serial, 60)}\n--- keel log (last 15 lines) ---\n${keel.logs.slice(-15).map((line) => JSON.stringify(line)).join('\n')}`);
}

/**
 * Polls GET /node/<mac>/status until the node agent's first report (a `boot_id`): the status, and
 * the seconds from `started` (QEMU's start). Fails when QEMU exits or no report comes within
 * BOOT_TIMEOUT_MS.
 */
export async function firstReport(api: NamespaceApi, token: string, mac: string, vm: Vm, started: number, failure: (why: string) => Error): Promise<{ status: Record<string, unknown>; seconds: number }> {
  let quit = false;
  void vm.exited.then(() => (quit = true));
  for (;;) {
    if (quit) throw failure(`QEMU exited: ${vm.output()}`);
    if (Date.now() - started > BOOT_TIMEOUT_MS) throw failure(`no report from the node's agent within ${BOOT_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const reply = await api.call('GET', `/node/${mac}/status`, { token });
    if (reply.status !== 200) throw failure(`GET /node/${mac}/status: ${reply.status} ${JSON.stringify(reply.json)}`);
    const status = reply.json.data as Record<string, unknown>;
    if (typeof status.boot_id === 'string') return { status, seconds: (Date.now() - started) / 1000 };
  }
}
