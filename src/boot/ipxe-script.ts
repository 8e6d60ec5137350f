// Per-node iPXE scripts: GET /boot/ipxe?mac=<MAC> (public; iPXE holds no token). The node with
// that MAC → its merged `_boot_config` attribute → that boot config's kernel, initramfs, command
// line (with `<attribute>` substitution) and boot style. Anything missing gives a script that
// prints why and asks again after a delay: a node is never left at a dead end. See docs/boot-policy.md.
import { badRequest } from '../http/errors.js';
import { textReply, type FileReply } from '../http/file-reply.js';
import { normaliseMac } from '../model/address.js';
import { bootStyleOf } from '../model/classes/bootconfig.js';
import { mainscriptClass } from '../model/classes/registry.js';
import { mergedAttributes } from '../model/cluster.js';
import { Invalid } from '../model/errors.js';
import type { Model } from '../model/model.js';
import { clusterSettings, statusPeriod } from '../model/settings.js';
import { fillNodeTemplate, hasControlCharacter, nodeVariables, type Quote } from './kickstart.js';
import type { BootContext, BootRoute } from './context.js';

/** The attribute naming a node's boot config (uid or name). */
export const BOOT_CONFIG_ATTRIBUTE = '_boot_config';
/** The attribute with an iSCSI root path for boot_style iscsi (an iPXE `iscsi:` URI). */
export const ISCSI_TARGET_ATTRIBUTE = '_iscsi_target';
/** The attribute choosing how keel's initramfs fetches the image: one of IMAGE_FETCH_MODES. */
export const IMAGE_FETCH_ATTRIBUTE = '_image_fetch';
/** `chunks` (the default: each chunk verified, several in flight, retried alone) or `whole` (one GET). */
export const IMAGE_FETCH_MODES = ['chunks', 'whole'] as const;
export const RETRY_DELAY_SECONDS = 30;
/** The name the initramfs is loaded under; the kernel line names it with `initrd=` (EFI stub needs it). */
const INITRD_NAME = 'initrd.img';

/** What the script of a boot config is made of; its problems (if any) are already ruled out. */
export interface ScriptBootConfig {
  uid: string;
  name: string;
  bootStyle: string;
  /** The uid of its image (rwram, roram and live boot one). */
  image?: string;
}

/** What the kernel line tells the booted system beyond the boot config: for keel's initramfs and node agent. */
export interface BootingNic {
  /** The MAC of the NIC that asked for the script (normalised). */
  mac: string;
  /** Seconds between the node agent's reports (cluster setting status_period). */
  statusPeriod: number;
}

/** A whitespace-separated word iPXE acts on: `;`, `&&` and `||` end a command, `#` starts a comment. */
const IPXE_OPERATOR = /^(?:;|&&|\|\||#.*)$/;

/** Why `value` would be read as more than data in an iPXE command line; undefined when it would not. */
function ipxeProblem(value: string): string | undefined {
  if (hasControlCharacter(value)) return 'contains a line break or another control character';
  if (value.includes('${')) return 'contains ${, which iPXE expands';
  const operator = value.split(/\s+/).find((word) => IPXE_OPERATOR.test(word));
  return operator === undefined ? undefined : `contains the word ${operator}, which iPXE reads as script`;
}

/**
 * A value for the kernel line of an iPXE script. iPXE has no quoting: it expands `${…}`, splits
 * on whitespace, acts on the operator words and starts a new command at a line break. Spaces stay
 * (they separate kernel arguments, as in the boot config's cmdline); a value that would be read as
 * script is refused, and the node gets a retry script saying which one.
 */
export const ipxeQuote: Quote = (value, name) => {
  const problem = ipxeProblem(value);
  if (problem !== undefined) throw new Invalid(`the value of <${name}> cannot go into an iPXE script: it ${problem}`);
  return value;
};

/**
 * `text` for an `echo` line, which prints its words as they are once iPXE has read them: control
 * characters become spaces, `${` loses its brace, and operator words are printed in quotes.
 */
function echoText(text: string): string {
  return Array.from(text, (char) => (hasControlCharacter(char) || char === '\t' ? ' ' : char))
    .join('')
    .replaceAll('${', '$ {')
    .split(' ')
    .map((word) => (IPXE_OPERATOR.test(word) ? `"${word}"` : word))
    .join(' ');
}

/** A script that prints `reason` and fetches the node's script again after `delay` seconds. */
export function retryScript(reason: string, selfUrl: string, delay = RETRY_DELAY_SECONDS): string {
  return ['#!ipxe', `echo keel: ${echoText(reason)}`, `echo keel: trying again in ${delay} seconds`, `sleep ${delay}`, `chain --replace --autofree ${selfUrl}`, ''].join('\n');
}

/**
 * The script booting `config` for a node; `base` is the head's http://host:port. The cmdline has
 * already had its `<attribute>` placeholders filled in. What a boot style needs from the boot
 * config is checked before (bootConfigProblems); what it needs from the node is checked here.
 */
export function bootScript(base: string, config: ScriptBootConfig, cmdline: string, vars: Readonly<Record<string, string>>, nic: BootingNic): { script: string } | { problem: string } {
  const files = `${base}/boot/bootconfig/${config.uid}`;
  const linuxBoot = (extra: string[]) => ({
    script: [
      '#!ipxe',
      `echo keel: booting ${echoText(config.name)} (${config.bootStyle})`,
      `kernel ${files}/kernel initrd=${INITRD_NAME} ${[cmdline, ...extra].filter((part) => part !== '').join(' ')}`.trimEnd(),
      `initrd --name ${INITRD_NAME} ${files}/initramfs`,
      'boot',
      '',
    ].join('\n'),
  });
  // For the booted system: which boot config, where the API is and how often its agent reports
  // (docs/node-agent.md), and the NIC it booted from in the form dracut and keel's initramfs read.
  const booted = [`keel.boot_config=${config.uid}`, `keel.api=${base}/api/v1`, `keel.status_period=${nic.statusPeriod}`, `BOOTIF=01-${nic.mac.replaceAll(':', '-')}`];
  switch (config.bootStyle) {
    case 'rwram':
    case 'roram': {
      const fetch = vars[IMAGE_FETCH_ATTRIBUTE] ?? IMAGE_FETCH_MODES[0];
      if (!(IMAGE_FETCH_MODES as readonly string[]).includes(fetch)) return { problem: `attribute ${IMAGE_FETCH_ATTRIBUTE} is ${JSON.stringify(fetch)}: expected one of ${IMAGE_FETCH_MODES.join(', ')}` };
      // dracut's dmsquash-live (RHEL-family images carry dracut): the image over HTTP into RAM;
      // rwram with a writable overlay, roram read-only. Then keel's own initramfs's parameters
      // (images/initramfs/init): the image at this head, the root mode, how to fetch it.
      const dracut = config.bootStyle === 'rwram' ? ['rd.live.ram=1', 'rd.live.overlay.overlayfs=1'] : ['rd.live.ram=1', 'rd.live.overlay.readonly=1'];
      return linuxBoot([`root=live:${files}/image`, ...dracut, `keel.image=${base}/boot/image/${config.image}`, `keel.root=${config.bootStyle}`, `keel.fetch=${fetch}`, ...booted]);
    }
    case 'live':
      // dracut's dmsquash-live reading the image over the network as needed.
      return linuxBoot([`root=live:${files}/image`, ...booted]);
    case 'disked':
      // The installer fetches its kickstart rendered for the address it asks from.
      return linuxBoot([`inst.ks=${base}/api/v1/bootconfig/${config.uid}/kickstart`]);
    case 'next':
      // Give the boot back to the firmware, which tries its next boot device (the local disk).
      return { script: ['#!ipxe', `echo keel: ${echoText(config.name)}: boot_style next, leaving to the next boot device`, 'exit', ''].join('\n') };
    case 'sanboot':
      // The first local disk, through the firmware (BIOS INT 13h drive 0x80 / the EFI disk).
      return { script: ['#!ipxe', `echo keel: ${echoText(config.name)}: booting the local disk`, 'sanboot --no-describe --drive 0x80', ''].join('\n') };
    case 'iscsi': {
      const target = vars[ISCSI_TARGET_ATTRIBUTE];
      if (target === undefined) return { problem: `boot config ${config.name} (boot_style iscsi) needs the node attribute ${ISCSI_TARGET_ATTRIBUTE} (iscsi:<server>::::<iqn>)` };
      // One word of sanboot: an iSCSI URI has no spaces.
      const problem = /\s/.test(target) ? 'contains whitespace' : ipxeProblem(target);
      if (problem !== undefined) return { problem: `attribute ${ISCSI_TARGET_ATTRIBUTE} cannot go into an iPXE script: it ${problem}` };
      return { script: ['#!ipxe', `echo keel: ${echoText(config.name)}: booting ${target}`, `sanboot ${target}`, ''].join('\n') };
    }
    default:
      return { problem: `boot config ${config.name} has unknown boot_style ${config.bootStyle}` };
  }
}

export interface NodeScript {
  script: string;
  /** Why the node cannot boot (the script then retries), for the log; undefined when it boots. */
  problem?: string;
}

/** `_boot_config: mainscript:<id or name>`: the node boots at a mainscript of spec 004's registry (docs/registries.md). */
export const MAINSCRIPT_PREFIX = 'mainscript:';

/** A script chaining the mainscript `id` names (served filled for the node: src/boot/registry-scripts.ts). */
function mainscriptScript(model: Model, base: string, node: string, id: string, retry: (problem: string) => NodeScript): NodeScript {
  const mainscript = model.objects(mainscriptClass).find(id);
  if (!mainscript) return retry(`node ${node}: ${BOOT_CONFIG_ATTRIBUTE} names mainscript ${id}, which does not exist`);
  return { script: ['#!ipxe', `echo keel: booting mainscript ${echoText(String(mainscript.name))}`, `chain --autofree ${base}/boot/mainscripts/${String(mainscript.id)}`, ''].join('\n') };
}

/** The iPXE script for the node with `mac` (normalised), or a retry script saying what is missing. */
export function nodeScript(model: Model, base: string, mac: string): NodeScript {
  const selfUrl = `${base}/boot/ipxe?mac=${mac}`;
  const retry = (problem: string): NodeScript => ({ script: retryScript(problem, selfUrl), problem });
  const uid = model.nodes.collection.lookup('mac', mac);
  const node = uid === undefined ? undefined : model.nodes.collection.get(uid);
  if (!node) return retry(`no node has MAC ${mac}; add one (POST /nodes) or turn on accept_new_nodes`);
  const name = String(node.name);
  const vars = nodeVariables(model.store, node, model.nodes.view(node), model.credentialNames());
  const configId = mergedAttributes(model.store, node)[BOOT_CONFIG_ATTRIBUTE];
  if (configId === undefined) return retry(`node ${name} has no ${BOOT_CONFIG_ATTRIBUTE} attribute`);
  if (configId.startsWith(MAINSCRIPT_PREFIX)) return mainscriptScript(model, base, name, configId.slice(MAINSCRIPT_PREFIX.length), retry);
  const record = model.bootConfigs.find(configId);
  if (!record) return retry(`node ${name}: ${BOOT_CONFIG_ATTRIBUTE} names boot config ${configId}, which does not exist`);
  const config: ScriptBootConfig = { uid: record.uid, name: String(record.name), bootStyle: bootStyleOf(record), ...(typeof record.image === 'string' ? { image: record.image } : {}) };
  const blocking = model.bootConfigProblems(record).filter((problem) => problem.blocksBoot);
  if (blocking.length > 0) return retry(`node ${name}: boot config ${config.name}: ${blocking.map((problem) => problem.text).join('; ')}`);
  let cmdline: string;
  try {
    cmdline = fillNodeTemplate((record.cmdline as string | undefined) ?? '', vars, ipxeQuote);
  } catch (err) {
    if (err instanceof Invalid) return retry(`node ${name}: boot config ${config.name}: ${err.message}`);
    throw err;
  }
  const result = bootScript(base, config, cmdline, vars, { mac, statusPeriod: statusPeriod(clusterSettings(model.store)) });
  return 'script' in result ? { script: result.script } : retry(`node ${name}: ${result.problem}`);
}

/** A Host header that is a host name or address and an optional port: nothing else goes into a script. */
const HOST_HEADER = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export const ipxeScriptRoute: BootRoute = {
  method: 'GET', path: '/ipxe', access: 'public',
  summary: 'The iPXE script of the node with ?mac= (from its _boot_config); a retry script when it cannot boot',
  handler: (req, ctx: BootContext): FileReply => {
    const macText = req.query.get('mac');
    // Strict: the MAC goes into the script (the URL it chains to); DHCP always sends a real one.
    const mac = macText === null ? undefined : normaliseMac(macText);
    if (mac === undefined) throw badRequest(`Malformed ?mac=: expected a MAC address such as 52:54:00:12:34:56, got ${JSON.stringify(macText)}`);
    // The script's URLs use the address the node reached us at, when the Host header is one, and
    // its scheme: an iPXE that fetched the script over HTTPS goes on over HTTPS (docs/security.md).
    const host = req.headers.host;
    const base = host !== undefined && HOST_HEADER.test(host) ? `${req.secure ? 'https' : 'http'}://${host}` : `http://${ctx.config.server.bind}:${ctx.config.http.port}`;
    const { script, problem } = nodeScript(ctx.model, base, mac);
    ctx.log.info({ mac, from: req.remoteAddress, problem }, 'iPXE script served');
    ctx.bootPath.scriptServed(mac, req.remoteAddress, problem);
    return textReply(script, 'text/plain; charset=utf-8');
  },
};
