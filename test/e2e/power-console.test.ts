// A node's power and console through keel's API, against a real BMC and a real machine: in a
// network namespace of its own (test/dhcp/boot-lab.ts), OpenIPMI's ipmi_sim is the node's BMC and
// its startcmd is a QEMU VM that network-boots from keel (test/e2e/bmc-vm.ts). keel runs in the
// same namespace (authoritative DHCP on the bridge, TFTP, HTTP) with the default boot assets
// (images/build.sh, test/e2e/assets.ts) uploaded as a boot config, and captures the node's serial
// console over IPMI Serial-over-LAN (console=sol: ipmiconsole against ipmi_sim, whose SOL device is
// the VM's serial port). The test does what an operator does:
//   d. `PUT /node/<id>/power_state` power on, then reads the kernel's boot messages in
//      `GET /node/<id>/console`, the log keel captured;
//   e. `PUT /node/<id>/power_state` power cycle, then sees a second boot: a new QEMU process, a
//      second iPXE script fetch in keel's log, the node agent's report of a boot id other than the
//      first boot's (`GET /node/<id>/status`), and — console capture going on across the cycle —
//      the new machine's shell prompt in the console log, answering a key sent on the WebSocket.
//      (Not its kernel banner: ipmi_sim drops the SOL session at a power cycle, see below.)
// Every wait is bounded; a failure prints the console log, keel's log, the node's boot timeline,
// and what ipmi_sim and QEMU printed. keel, socat, radvd, ipmi_sim and QEMU are killed by pid.
import test, { type ExecutionContext } from 'ava';
import { bootLab } from '../dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace, type KeelProcess } from '../dhcp/keel-in-netns.js';
import { defaultAssets, type BootAssets } from './assets.js';
import { BMC_HOST, BMC_PASSWORD, BMC_USER, startBmcVm, type BmcVm } from './bmc-vm.js';
import { namespaceApi, type NamespaceApi } from './netns-api.js';
import { connectWs } from '../power/ws-client.js';

const MAC = '52:54:00:6b:20:01';
const HTTP_PORT = 8080;
/** Where PXE ROMs ask; the BIOS e1000 ROM is iPXE and needs none, but keel serves it there all the same. */
const TFTP_PORT = 69;
/** keel-in-netns.ts's admin password. */
const ADMIN_PASSWORD = 'dhcp-test-password';
/** As test/e2e/boot.test.ts: a cold images/build.sh. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
/** The whole test once the assets are there: two boots to the agent's report, on 2 shared cores. */
const TEST_TIMEOUT_MS = 300_000;
/** ipmiconsole's SOL session to ipmi_sim. */
const SOL_TIMEOUT_MS = 30_000;
/** Power on → the kernel's first messages on the console: firmware, iPXE, kernel and initramfs over HTTP, under TCG. */
const KERNEL_TIMEOUT_MS = 120_000;
/** The kernel's first messages → the node agent's first report: the root image fetched and booted. */
const AGENT_TIMEOUT_MS = 150_000;
/** Power cycle → the new machine's shell on the console: its boot, and SOL sessions lost to ipmi_sim's power cycle and replaced (60 s each). */
const CONSOLE_AFTER_CYCLE_MS = 240_000;
/** As test/e2e/boot.test.ts: the image in RAM beside the kernel and the initramfs. */
const VM_RAM_MIB = 1024;

interface ConsoleLog {
  kind: string;
  connected: boolean;
  reason?: string;
  output: string;
}

interface Lab {
  api: NamespaceApi;
  token: string;
  keel: KeelProcess;
  bmc: BmcVm;
  node: string;
}

const count = (text: string, word: string) => text.split(word).length - 1;

async function consoleLog(lab: Lab): Promise<ConsoleLog> {
  // The whole ring (console_ring_kib below): both boots' messages.
  const res = await lab.api.call('GET', `/node/${lab.node}/console?kib=2048`, { token: lab.token });
  if (res.status !== 200) throw new Error(`GET /node/${lab.node}/console: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.data as ConsoleLog;
}

async function status(lab: Lab): Promise<Record<string, unknown>> {
  const res = await lab.api.call('GET', `/node/${lab.node}/status`, { token: lab.token });
  if (res.status !== 200) throw new Error(`GET /node/${lab.node}/status: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.data as Record<string, unknown>;
}

/** Polls `probe` once a second until it returns a value, for at most `timeoutMs`. */
async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Everything an operator would look at when the boot went wrong. */
async function diagnostics(lab: Partial<Lab>): Promise<string> {
  const parts: string[] = [];
  const attempt = async (title: string, read: () => Promise<string> | string) => {
    try {
      parts.push(`--- ${title} ---\n${await read()}`);
    } catch (err) {
      parts.push(`--- ${title}: unavailable (${(err as Error).message}) ---`);
    }
  };
  if (lab.api && lab.token && lab.node) {
    const full = lab as Lab;
    await attempt('console log (GET /node/<id>/console, last 6000 bytes)', async () => (await consoleLog(full)).output.slice(-6000));
    await attempt('boot timeline (GET /node/<id>/boot)', async () => JSON.stringify((await full.api.call('GET', `/node/${full.node}/boot`, { token: full.token })).json.data, null, 1).slice(-4000));
    await attempt('node status (GET /node/<id>/status)', async () => JSON.stringify(await status(full)));
  }
  if (lab.keel) await attempt('keel log (last 40 lines)', () => lab.keel!.logs.slice(-40).map((line) => JSON.stringify(line)).join('\n'));
  if (lab.bmc) {
    await attempt('ipmi_sim output', () => lab.bmc!.simOutput());
    await attempt('QEMU output', () => lab.bmc!.qemuOutput());
  }
  return parts.join('\n');
}

const scriptsServed = (keel: KeelProcess) => keel.logs.filter((line) => line.msg === 'iPXE script served' && line.mac === MAC && line.problem === undefined).length;

async function setUp(t: ExecutionContext, lab: Partial<Lab>, assets: BootAssets): Promise<Lab> {
  const net = bootLab(t, { siteDhcp: false });
  await prepareCluster(net.dataDir, { network: { name: 'lab', first_ip: '10.67.0.100', ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: 'authoritative' } });
  lab.keel = await startKeelInNamespace(t, net.server, net.dataDir, 'br0', HTTP_PORT, TFTP_PORT);
  lab.api = await namespaceApi(t, net, HTTP_PORT);
  lab.token = await lab.api.login('admin', ADMIN_PASSWORD);
  const { api, token } = lab;
  const ok = async (what: string, reply: Promise<{ status: number; json: unknown }>) => {
    const res = await reply;
    if (res.status !== 200) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json as { data: unknown };
  };

  // The default boot assets as an image and a boot config, through the API as an operator uploads them.
  const image = (await ok('POST /images', api.call('POST', '/images', { token, body: { name: 'DefaultImage' } }))).data as string;
  await ok('PUT image content', api.upload(`/image/${image}/content`, assets.rootfs, token));
  const bootConfig = (await ok('POST /bootconfigs', api.call('POST', '/bootconfigs', {
    token, body: { name: 'DefaultBoot', image, boot_style: 'roram', cmdline: 'console=ttyS0,115200' },
  }))).data as string;
  await ok('PUT kernel', api.upload(`/bootconfig/${bootConfig}/kernel`, assets.vmlinuz, token));
  await ok('PUT initramfs', api.upload(`/bootconfig/${bootConfig}/initramfs`, assets.initramfs, token));

  lab.bmc = await startBmcVm(t, net, { firmware: 'bios-e1000', mac: MAC, memoryMiB: VM_RAM_MIB });
  // Teardowns run last-registered first: keel stops its console lines (ipmiconsole, by PID) on
  // SIGTERM before the BMC goes; killed outright, it would leave them running. Bounded: the
  // SIGKILL of keel-in-netns.ts follows.
  const keel = lab.keel;
  t.teardown(() => Promise.race([keel.stop(), new Promise((r) => setTimeout(r, 15_000))]));
  lab.node = (await ok('POST /nodes', api.call('POST', '/nodes', {
    token,
    body: {
      mac: MAC,
      power_uri: `ipmi://<ipmi_user>:<ipmi_pass>@${BMC_HOST}`,
      attributes: {
        _boot_config: 'DefaultBoot',
        ipmi_user: BMC_USER, ipmi_pass: BMC_PASSWORD,
        // ipmi_sim: opensesspriv for the session; without solchannelsupport it segfaults on SOL activation.
        ipmi_workarounds: 'opensesspriv,solchannelsupport,solpayloadsize',
        console: 'sol',
        // Two boots' messages (tens of KiB each) stay in the ring.
        console_ring_kib: '2048',
      },
    },
  }))).data as string;
  return lab as Lab;
}

async function powerState(lab: Lab, state: string): Promise<unknown> {
  const res = await lab.api.call('PUT', `/node/${lab.node}/power_state?detail=1`, { token: lab.token, body: { state } });
  if (res.status !== 200) throw new Error(`PUT power_state ${state}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.data;
}

test('power on and power cycle through keel\'s API boot a VM whose BMC is ipmi_sim; keel captures its console over SOL', async (t) => {
  // A cold images/build.sh (downloads, mmdebstrap) is not this test's time; a warm one returns at once.
  t.timeout(BUILD_TIMEOUT_MS);
  const assets = await defaultAssets();
  t.timeout(TEST_TIMEOUT_MS);
  const started = Date.now();
  const lab: Partial<Lab> = {};
  try {
    const ready = await setUp(t, lab, assets);
    t.log(`set up (keel, uploads, BMC) in ${Date.now() - started} ms`);
    // The SOL session is up before the machine is: nothing it prints is lost.
    await poll('keel\'s SOL session', SOL_TIMEOUT_MS, async () => ((await consoleLog(ready)).output.includes('[SOL established]') ? true : undefined));
    t.is((await ready.api.call('GET', `/node/${ready.node}/power_state`, { token: ready.token })).json.data, 'off', 'the machine starts off: no QEMU yet');
    t.is(ready.bmc.qemuPid(), undefined);

    // d. Power on through the API; the kernel's boot messages arrive in keel's console log.
    const poweredOn = Date.now();
    t.deepEqual(await powerState(ready, 'power on'), { state: 'on', outcome: 'done' });
    const firstQemu = await poll('ipmi_sim to start the VM', 10_000, async () => ready.bmc.qemuPid());
    const firstBoot = await poll('the kernel\'s boot messages in GET /node/<id>/console', KERNEL_TIMEOUT_MS, async () => {
      const log = await consoleLog(ready);
      return /Command line: .*console=ttyS0,115200/.test(log.output) ? log : undefined;
    });
    t.log(`power on → kernel command line on the console: ${Date.now() - poweredOn} ms`);
    t.is(firstBoot.kind, 'sol');
    t.true(firstBoot.connected);
    t.regex(firstBoot.output, /Linux version \S+/, 'the kernel\'s banner');
    t.regex(firstBoot.output, /Command line: .*keel\.api=http:\/\/\S+\/api\/v1/, 'the command line keel\'s iPXE script gave the kernel');
    const firstReport = await poll('the node agent\'s first report (GET /node/<id>/status)', AGENT_TIMEOUT_MS, async () => {
      const reported = await status(ready);
      return typeof reported.boot_id === 'string' && reported.boot_id !== '' ? reported : undefined;
    });
    t.log(`power on → agent's first report: ${Date.now() - poweredOn} ms (boot_id ${String(firstReport.boot_id)})`);

    // One boot so far (no reboot of its own), as keel's log and the console log show it.
    t.is(count((await consoleLog(ready)).output, 'Linux version'), 1, 'one kernel banner before the cycle');
    t.is(scriptsServed(ready.keel), 1, 'one iPXE script served to the VM before the cycle');

    // e. Power cycle through the API: the machine goes off and on again (a new QEMU process) and boots a second time.
    const logAtCycle = (await consoleLog(ready)).output.length;
    const cycled = Date.now();
    t.deepEqual(await powerState(ready, 'power cycle'), { state: 'on', outcome: 'done' });
    const secondQemu = await poll('ipmi_sim to start the VM again', 10_000, async () => ready.bmc.qemuPid());
    t.not(secondQemu, firstQemu, 'the cycle ended the first VM and started another');
    // Meanwhile keel keeps capturing: after the cycle its console log shows, to a key pressed on
    // the WebSocket console, the prompt of the new machine's root shell (ttyS0; the old one is gone).
    // ipmi_sim drops the SOL session at a chassis power cycle: it goes unanswered until
    // ipmiconsole's session timeout (60 s), then keel starts a new one, so the second boot's
    // first minute (its kernel banner) is not in the log. One key per message, as a terminal
    // sends them: ipmi_sim loses characters of longer SOL packets.
    const ws = await connectWs(`${ready.api.wsBase}/node/${ready.node}/console`, { authorization: `Bearer ${ready.token}` });
    if (!ws.upgraded) throw new Error(`WebSocket console refused: ${ws.status} ${ws.body}`);
    t.teardown(() => ws.close());
    let lastKey = 0;
    const consoleAfterCycle = poll('the new machine\'s shell prompt in the console log after the cycle', CONSOLE_AFTER_CYCLE_MS, async () => {
      const log = (await consoleLog(ready)).output.slice(logAtCycle);
      if (log.includes('root@keel-node:~#')) return log;
      // Again every 10 s: a key sent while the SOL session is down is lost.
      if (Date.now() - lastKey >= 10_000) {
        ws.send('\r');
        lastKey = Date.now();
      }
      return undefined;
    });
    // Awaited below, after the agent's report; a failure meanwhile is not an unhandled rejection.
    consoleAfterCycle.catch(() => undefined);
    const secondReport = await poll('the node agent\'s report from a new boot', KERNEL_TIMEOUT_MS + AGENT_TIMEOUT_MS, async () => {
      const reported = await status(ready);
      return typeof reported.boot_id === 'string' && reported.boot_id !== '' && reported.boot_id !== firstReport.boot_id ? reported : undefined;
    });
    t.log(`power cycle → agent's report from the second boot: ${Date.now() - cycled} ms (boot_id ${String(secondReport.boot_id)})`);
    t.is(scriptsServed(ready.keel), 2, 'the VM fetched its iPXE script again');
    await consoleAfterCycle;
    t.log(`power cycle → the new machine's prompt in the console log: ${Date.now() - cycled} ms`);
    t.log(`whole test: ${Date.now() - started} ms`);
  } catch (err) {
    t.log(await diagnostics(lab));
    throw err;
  }
  if (!t.passed) t.log(await diagnostics(lab));
});
