// The boot-storm load generator: N simulated machines network-booting at once, each with its own
// MAC and (once DHCP gave it) its own address, as keel's default image boots on real hardware:
//   1. UEFI PXE firmware: DHCP DISCOVER/OFFER/REQUEST/ACK (option 93 = 7, PXEClient);
//   2. TFTP of the boot file it was given (ipxe.efi): first EDK2's size probe (RRQ tsize+blksize,
//      OACK, ERROR 8), then the transfer at blksize 1468, windowsize 1 (lock-step, as UEFI does);
//   3. iPXE: DHCP again (user class iPXE, option 175 with HTTP), the boot file is its script URL;
//   4. the script over HTTP; the kernel and initramfs it names, one after the other;
//   5. the initramfs's udhcpc: DHCP once more (no PXE options);
//   6. the root image as images/initramfs/keel-fetch gets it with keel.fetch=chunks: the
//      manifest, then every chunk from <head>/boot/chunks/<sha256>, `inFlight` at once.
// Retries as firmware does them: DHCP retransmits after 4, 8 and 16 s (then the attempt fails);
// TFTP resends its last packet after 1 s without progress, 5 tries; HTTP reconnects after 1, 2, 4,
// 8, 16 s (6 tries; an idle connection is dropped after 30 s). A failed attempt restarts the
// machine's boot from DHCP (the firmware's next PXE try), up to `bootAttempts` times.
//
// The nodes sit behind a DHCP relay (the generator is the relay agent at `relayAddress`, as a
// top-of-rack switch's ip-helper is): replies come to it by unicast, and the server reaches the
// nodes' addresses through one router (the veth peer), so a storm of 2,000 nodes does not need
// 2,000 neighbour entries in the kernel's global ARP table.
//
// Written with keel's own codecs (src/net/dhcp, src/net/tftp) and dgram-native; HTTP with
// node:http, a new connection per request (as iPXE and busybox wget make them).
// Run by bench/bootstorm/run.ts inside the client namespace:
//   node --import tsx bench/bootstorm/generator.ts CONFIG.json RESULT.json
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createSocket, type UdpSocket } from 'dgram-native';
import { BOOTREQUEST, parseDhcp, serializeDhcp, type DhcpPacket } from '../../src/net/dhcp/codec.js';
import { DhcpMessageType, IpxeSubOption, Option, getOption, setOption, type DhcpOptions } from '../../src/net/dhcp/options.js';
import { Opcode, serializeAck, serializeError, serializeRequest } from '../../src/net/tftp/packets.js';

export interface GeneratorConfig {
  /** The relay agent's address (giaddr), on the client side of the veth. */
  relayAddress: string;
  /** The DHCP server's address (where the relay sends to). */
  dhcpServer: string;
  macs: string[];
  /** 'all': every node starts at once; 'ramp': evenly spread over rampSeconds. */
  arrival: 'all' | 'ramp';
  rampSeconds: number;
  /** Chunks in flight per node (keel-fetch's default is 4). */
  inFlight: number;
  blockSize: number;
  bootAttempts: number;
  /** Hard limit for the whole storm; nodes not booted by then are failures. */
  timeoutSeconds: number;
}

export const PHASES = ['dhcp_firmware', 'tftp', 'dhcp_ipxe', 'script', 'kernel', 'initramfs', 'dhcp_initramfs', 'image'] as const;
export type Phase = (typeof PHASES)[number];

export interface NodeResult {
  mac: string;
  /** ms from the storm's start: when the node powered on, and when its root image was complete. */
  startMs: number;
  bootedMs: number | null;
  /** Duration of each phase of the attempt that booted (or of the last attempt), ms. */
  phases: Partial<Record<Phase, number>>;
  bytes: number;
  /** The block size the server's OACK granted for the boot file. */
  tftpBlockSize?: number;
  retries: { dhcp: number; tftp: number; http: number; boots: number };
  /** Why each failed attempt failed. */
  errors: string[];
  /** Why each HTTP request that was tried again failed. */
  retried: string[];
}

export interface GeneratorResult {
  nodes: NodeResult[];
  wallSeconds: number;
  /** The generator's own CPU (user + system), to tell whether it was the bottleneck. */
  cpuSeconds: number;
  /** Of which in the kernel (sockets, TCP receive copies). */
  cpuSystemSeconds: number;
  timedOut: boolean;
  /** The relay socket: a storm's replies arrive on this one socket, where a real network has N NICs. */
  relay: { bufferBytes: number; kernelDrops: number };
}

class AttemptFailed extends Error {}

const DHCP_TIMEOUTS_MS = [4000, 8000, 16000];
const TFTP_TIMEOUT_MS = 1000;
const TFTP_TRIES = 5;
const HTTP_BACKOFF_MS = [1000, 2000, 4000, 8000, 16000];
const HTTP_IDLE_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- DHCP: one relay socket, replies matched to their exchange by xid ------------------------

type DhcpClientKind = 'firmware' | 'ipxe' | 'initramfs';

class Relay {
  private readonly socket: UdpSocket;
  private readonly waiting = new Map<number, (reply: DhcpPacket) => void>();

  constructor(private readonly config: GeneratorConfig) {
    this.socket = createSocket({ bindAddress: config.relayAddress, port: 67, pktinfo: false, recvBufferSize: 8 << 20, sendBufferSize: 4 << 20, batchSize: 64 });
    this.socket.on('message', (datagram) => {
      const parsed = parseDhcp(datagram.data);
      if (!parsed.ok || parsed.packet.op !== 2) return;
      this.waiting.get(parsed.packet.xid)?.(parsed.packet);
    });
  }

  /** One DORA; resolves with the ACK; throws AttemptFailed when the server stays silent or NAKs. */
  async dora(mac: string, kind: DhcpClientKind, counters: NodeResult['retries']): Promise<DhcpPacket> {
    const xid = (Math.random() * 0xffffffff) >>> 0;
    const discover = this.packet(mac, xid, kind, DhcpMessageType.DISCOVER);
    const offer = await this.exchange(discover, DhcpMessageType.OFFER, counters);
    const requested = this.packet(mac, xid, kind, DhcpMessageType.REQUEST);
    setOption(requested.options, Option.requestedIp, offer.yiaddr);
    setOption(requested.options, Option.serverId, getOption(offer.options, Option.serverId) ?? this.config.dhcpServer);
    const ack = await this.exchange(requested, DhcpMessageType.ACK, counters);
    return ack;
  }

  /** The receive buffer the kernel granted, and the replies it dropped for want of room. */
  receiveStats(): { bufferBytes: number; kernelDrops: number } {
    return { bufferBytes: this.socket.recvBufferSize, kernelDrops: this.socket.stats().kernelDrops };
  }

  close(): Promise<void> {
    return this.socket.close();
  }

  private packet(mac: string, xid: number, kind: DhcpClientKind, type: number): DhcpPacket {
    const options: DhcpOptions = new Map();
    setOption(options, Option.messageType, type);
    setOption(options, Option.maxMessageSize, 1464);
    if (kind === 'initramfs') {
      // busybox udhcpc: its parameter request list, nothing about booting.
      setOption(options, Option.parameterRequestList, [1, 3, 6, 12, 15, 28, 42]);
    } else {
      setOption(options, Option.parameterRequestList, [1, 3, 6, 12, 43, 60, 66, 67, 97, 128, 175]);
      setOption(options, Option.clientArch, [7]);
      setOption(options, Option.clientNdi, { type: 1, major: 3, minor: kind === 'firmware' ? 16 : 10 });
      setOption(options, Option.vendorClassId, kind === 'firmware' ? 'PXEClient:Arch:00007:UNDI:003016' : 'PXEClient:Arch:00007:UNDI:003010');
      if (kind === 'ipxe') {
        // iPXE sends its user class as a plain string, and its features in option 175.
        options.set(77, Buffer.from('iPXE'));
        setOption(options, Option.ipxeEncapsulated, new Map([[IpxeSubOption.FEATURE_HTTP, Buffer.from([1])]]));
      }
    }
    return {
      op: BOOTREQUEST, htype: 1, hops: 1, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0',
      giaddr: this.config.relayAddress, chaddr: mac, sname: '', file: '', options,
    };
  }

  private async exchange(sent: DhcpPacket, wanted: number, counters: NodeResult['retries']): Promise<DhcpPacket> {
    const bytes = serializeDhcp(sent);
    try {
      for (let i = 0; i < DHCP_TIMEOUTS_MS.length; i++) {
        if (i > 0) counters.dhcp += 1;
        const reply = await new Promise<DhcpPacket | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), DHCP_TIMEOUTS_MS[i]);
          this.waiting.set(sent.xid, (packet) => {
            const type = getOption(packet.options, Option.messageType);
            if (type === wanted || type === DhcpMessageType.NAK) {
              clearTimeout(timer);
              resolve(packet);
            }
          });
              try {
            this.socket.send(bytes, 67, this.config.dhcpServer);
          } catch {
            // a send the kernel refused is as lost as a dropped one: the timeout resends it
          }
        });
        if (reply === undefined) continue;
        if (getOption(reply.options, Option.messageType) === DhcpMessageType.NAK) throw new AttemptFailed(`DHCP NAK: ${getOption(reply.options, Option.hostname) ?? ''}`);
        return reply;
      }
      throw new AttemptFailed(`no DHCP ${wanted === DhcpMessageType.OFFER ? 'OFFER' : 'ACK'} after ${DHCP_TIMEOUTS_MS.length} tries`);
    } finally {
      this.waiting.delete(sent.xid);
    }
  }
}

// ---- TFTP: one socket per transfer, lock-step; a shared 100 ms tick drives the timeouts ----------

interface TftpTransfer {
  lastSendAt: number;
  resend: () => void;
  tries: number;
  fail: (error: Error) => void;
}

const activeTransfers = new Set<TftpTransfer>();

/** The timeouts of every running transfer, checked every 100 ms (one timer instead of one per block). */
function checkTransfers(): void {
  const now = performance.now();
  for (const transfer of activeTransfers) {
    if (now - transfer.lastSendAt < TFTP_TIMEOUT_MS) continue;
    if (transfer.tries >= TFTP_TRIES) {
      transfer.fail(new AttemptFailed(`TFTP: no answer after ${TFTP_TRIES} tries of ${TFTP_TIMEOUT_MS} ms`));
      continue;
    }
    transfer.tries += 1;
    transfer.resend();
  }
}

/**
 * Reads `file` from `server` as UEFI firmware does: `probe` (EDK2's tsize request, answered with
 * ERROR 8 once the OACK came) or the whole file. Resolves with the bytes received.
 */
function tftpRead(localAddress: string, server: string, file: string, blockSize: number, probe: boolean, result: NodeResult): Promise<number> {
  const counters = result.retries;
  return new Promise((resolve, reject) => {
    const socket = createSocket({ bindAddress: localAddress, port: 0, pktinfo: false, recvBufferSize: 256 << 10, batchSize: 8 });
    const options = probe ? [{ name: 'tsize', value: '0' }, { name: 'blksize', value: String(blockSize) }] : [{ name: 'blksize', value: String(blockSize) }];
    let last = serializeRequest({ filename: file, mode: 'octet', options });
    let peerPort = 69;
    let transferPort = 0;
    let expected = 1;
    let bytes = 0;
    let negotiatedBlockSize = 512;
    let done = false;
    const transfer: TftpTransfer = {
      lastSendAt: performance.now(),
      tries: 1,
      resend: () => {
        counters.tftp += 1;
        transfer.lastSendAt = performance.now();
        socket.send(last, peerPort, server);
      },
      fail: (error) => finish(error),
    };
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      activeTransfers.delete(transfer);
      void socket.close();
      if (error) reject(error);
      else resolve(bytes);
    };
    const sendNow = (packet: Buffer) => {
      last = packet;
      transfer.lastSendAt = performance.now();
      transfer.tries = 1;
      socket.send(packet, peerPort, server);
    };
    socket.on('error', (error) => finish(new AttemptFailed(`TFTP socket: ${error.message}`)));
    socket.on('view', (view) => {
      for (let i = 0; i < view.count && !done; i++) {
        const data = view.data(i);
        if (data.length < 4) continue;
        const port = view.port(i);
        if (transferPort === 0) {
          transferPort = port;
          peerPort = port;
        } else if (port !== transferPort) continue;
        const opcode = data.readUInt16BE(0);
        if (opcode === Opcode.error) {
          finish(new AttemptFailed(`TFTP ERROR ${data.readUInt16BE(2)}: ${data.toString('latin1', 4, data.length - 1)}`));
        } else if (opcode === Opcode.oack) {
          const text = data.toString('latin1', 2).split('\0');
          for (let k = 0; k + 1 < text.length; k += 2) if (text[k]!.toLowerCase() === 'blksize') negotiatedBlockSize = Number(text[k + 1]);
          result.tftpBlockSize = negotiatedBlockSize;
          if (probe) {
            socket.send(serializeError(8, 'tsize probe'), peerPort, server);
            finish();
          } else sendNow(serializeAck(0));
        } else if (opcode === Opcode.data) {
          const block = data.readUInt16BE(2);
          if (block === (expected & 0xffff)) {
            const payload = data.length - 4;
            bytes += payload;
            expected += 1;
            const ack = serializeAck(block);
            if (payload < negotiatedBlockSize) {
              socket.send(ack, peerPort, server);
              finish();
            } else sendNow(ack);
          } else if (block === ((expected - 1) & 0xffff)) {
            // The server resent the block we acknowledged: our ACK was lost; resend it.
            counters.tftp += 1;
            socket.send(serializeAck(block), peerPort, server);
          }
        }
      }
    });
    activeTransfers.add(transfer);
    socket.send(last, peerPort, server);
  });
}

// ---- HTTP ---------------------------------------------------------------------------------------

interface HttpReply {
  body?: string;
  bytes: number;
}

/** One GET from `localAddress` on a new connection; the body kept when `keep`. Status and length checked. */
function getOnce(localAddress: string, url: string, keep: boolean, expectedLength?: number): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const { hostname, port, pathname, search } = new URL(url);
    const req = request({ host: hostname, port, path: pathname + search, localAddress, agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (keep) chunks.push(chunk);
      });
      res.on('end', () => {
        const length = Number(res.headers['content-length'] ?? Number.NaN);
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
        else if (!Number.isNaN(length) && length !== bytes) reject(new Error(`GET ${url}: ${bytes} of ${length} bytes`));
        else if (expectedLength !== undefined && bytes !== expectedLength) reject(new Error(`GET ${url}: ${bytes} bytes, expected ${expectedLength}`));
        else resolve({ bytes, body: keep ? Buffer.concat(chunks).toString('utf8') : undefined });
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`GET ${url}: connection closed mid-reply`)));
    });
    req.setTimeout(HTTP_IDLE_MS, () => req.destroy(new Error(`GET ${url}: idle ${HTTP_IDLE_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function get(localAddress: string, url: string, keep: boolean, result: NodeResult, expectedLength?: number): Promise<HttpReply> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await getOnce(localAddress, url, keep, expectedLength);
    } catch (error) {
      if (attempt >= HTTP_BACKOFF_MS.length) throw new AttemptFailed(`${(error as Error).message} (after ${attempt + 1} tries)`);
      result.retries.http += 1;
      result.retried.push((error as Error).message);
      await sleep(HTTP_BACKOFF_MS[attempt]!);
    }
  }
}

// ---- one machine ----------------------------------------------------------------------------------

/** iPXE expands settings in the DHCP boot file name; these are the ones a per-node URL uses. */
function expandIpxeSettings(text: string, mac: string): string {
  return text.replaceAll('${mac:hexhyp}', mac.replaceAll(':', '-')).replaceAll('${net0/mac}', mac).replaceAll('${mac}', mac);
}

interface BootScript {
  kernel: string;
  initrd: string;
  image: string;
  fetch: string;
}

function parseScript(script: string): BootScript {
  const kernel = /^kernel\s+(\S+)/m.exec(script)?.[1];
  const initrd = /^initrd\s+(?:--name\s+\S+\s+)?(\S+)/m.exec(script)?.[1];
  const image = /\skeel\.image=(\S+)/.exec(script)?.[1];
  const fetch = /\skeel\.fetch=(\S+)/.exec(script)?.[1] ?? 'chunks';
  if (kernel === undefined || initrd === undefined || image === undefined) throw new AttemptFailed(`not a boot script: ${script.slice(0, 200)}`);
  return { kernel, initrd, image, fetch };
}

interface Manifest {
  size: number;
  chunk_size: number;
  chunks: string[];
}

async function bootOnce(mac: string, config: GeneratorConfig, relay: Relay, result: NodeResult, t0: number): Promise<void> {
  const phases = result.phases;
  const timed = async <T>(phase: Phase, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const value = await work();
    phases[phase] = performance.now() - start;
    return value;
  };
  const r = result.retries;
  const firmware = await timed('dhcp_firmware', () => relay.dora(mac, 'firmware', r));
  const address = firmware.yiaddr;
  const nextServer = firmware.siaddr !== '0.0.0.0' ? firmware.siaddr : config.dhcpServer;
  const bootFile = firmware.file || getOption(firmware.options, Option.bootfileName) || '';
  if (bootFile === '') throw new AttemptFailed('the firmware OFFER names no boot file');
  await timed('tftp', async () => {
    await tftpRead(address, nextServer, bootFile, config.blockSize, true, result);
    const bytes = await tftpRead(address, nextServer, bootFile, config.blockSize, false, result);
    result.bytes += bytes;
  });
  const ipxe = await timed('dhcp_ipxe', () => relay.dora(mac, 'ipxe', r));
  const scriptUrl = expandIpxeSettings(ipxe.file || getOption(ipxe.options, Option.bootfileName) || '', mac);
  if (!scriptUrl.startsWith('http://')) throw new AttemptFailed(`iPXE was given ${JSON.stringify(scriptUrl)}, not a script URL`);
  const script = await timed('script', () => get(address, scriptUrl, true, result));
  result.bytes += script.bytes;
  const boot = parseScript(script.body!);
  const kernel = await timed('kernel', () => get(address, boot.kernel, false, result));
  result.bytes += kernel.bytes;
  const initramfs = await timed('initramfs', () => get(address, boot.initrd, false, result));
  result.bytes += initramfs.bytes;
  await timed('dhcp_initramfs', () => relay.dora(mac, 'initramfs', r));
  await timed('image', async () => {
    if (boot.fetch === 'whole') {
      const whole = await get(address, boot.image, false, result);
      result.bytes += whole.bytes;
      return;
    }
    const manifestReply = await get(address, `${boot.image}/manifest`, true, result);
    result.bytes += manifestReply.bytes;
    const manifest = JSON.parse(manifestReply.body!) as Manifest;
    const base = boot.image.slice(0, boot.image.indexOf('/boot/'));
    let next = 0;
    const worker = async () => {
      while (next < manifest.chunks.length) {
        const index = next++;
        const length = Math.min(manifest.chunk_size, manifest.size - index * manifest.chunk_size);
        // Not `result.bytes += await …`: that reads result.bytes before the await, and the
        // workers running meanwhile would lose their additions.
        const chunk = await get(address, `${base}/boot/chunks/${manifest.chunks[index]}`, false, result, length);
        result.bytes += chunk.bytes;
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.inFlight, manifest.chunks.length) }, worker));
  });
  result.bootedMs = performance.now() - t0;
}

async function boot(mac: string, config: GeneratorConfig, relay: Relay, result: NodeResult, t0: number): Promise<void> {
  for (let attempt = 1; attempt <= config.bootAttempts; attempt++) {
    if (attempt > 1) result.retries.boots += 1;
    result.phases = {};
    try {
      await bootOnce(mac, config, relay, result, t0);
      return;
    } catch (error) {
      result.errors.push((error as Error).message);
      if (!(error instanceof AttemptFailed)) return;
      await sleep(1000);
    }
  }
}

async function main(): Promise<void> {
  const [configFile, resultFile] = process.argv.slice(2);
  const config = JSON.parse(readFileSync(configFile!, 'utf8')) as GeneratorConfig;
  const relay = new Relay(config);
  const tftpTicker = setInterval(checkTransfers, 100);
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  const results: NodeResult[] = config.macs.map((mac) => ({ mac, startMs: 0, bootedMs: null, phases: {}, bytes: 0, retries: { dhcp: 0, tftp: 0, http: 0, boots: 0 }, errors: [], retried: [] }));
  const storm = Promise.all(results.map(async (result, i) => {
    const delay = config.arrival === 'ramp' ? (i * config.rampSeconds * 1000) / config.macs.length : 0;
    if (delay > 0) await sleep(delay);
    result.startMs = performance.now() - t0;
    await boot(result.mac, config, relay, result, t0);
  }));
  let timedOut = false;
  let deadline: NodeJS.Timeout | undefined;
  await Promise.race([storm, new Promise<void>((resolve) => {
    deadline = setTimeout(() => {
      timedOut = true;
      resolve();
    }, config.timeoutSeconds * 1000);
  })]);
  clearTimeout(deadline);
  const cpu = process.cpuUsage(cpuBefore);
  const output: GeneratorResult = { nodes: results, wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, cpuSystemSeconds: cpu.system / 1e6, timedOut, relay: relay.receiveStats() };
  for (const result of results) if (result.bootedMs === null && timedOut && result.errors.length === 0) result.errors.push(`not booted within ${config.timeoutSeconds} s`);
  writeFileSync(resultFile!, JSON.stringify(output));
  clearInterval(tftpTicker);
  await relay.close();
  // Transfers still running at the deadline hold sockets and connections: leave without them.
  process.exit(0);
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main();
