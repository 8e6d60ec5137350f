// Spec 000's boot-time texts for installers that hold no token: GET /ztp/script (the ZTP script of
// the node at the caller's address, from its `_boot_config: ztp:<NAME>`), GET /ignition/<UID> (the
// Ignition config its `_ignition` attribute names: a kickstart file, a `git:` path, or a URL keel
// fetches with a timeout and a size cap) and GET /ignition/bin. Each text gets the node's
// `<placeholder>`s filled as kickstarts do (src/boot/kickstart.ts): shell quoting in ZTP scripts,
// JSON string escaping in Ignition configs. docs/install.md.
import { mergedAttributes } from '../model/cluster.js';
import { NotFound } from '../model/errors.js';
import type { Model } from '../model/model.js';
import type { StoredRecord } from '../store/store.js';
import { BOOT_CONFIG_ATTRIBUTE } from './ipxe-script.js';
import { fillNodeTemplate, kickstartQuote, nodeVariables, type Quote } from './kickstart.js';

export const ZTP_PREFIX = 'ztp:';
export const IGNITION_ATTRIBUTE = '_ignition';

/** A remote Ignition config that did not come: unreachable, an error status, too slow, too big. */
export class RemoteConfigError extends Error {
  override name = 'RemoteConfigError';
  constructor(readonly timedOut: boolean, message: string) {
    super(message);
  }
}

/** Where a `git:<repo>/<path>[@<ref>]` text is read (src/git, handed down by the API). */
export type ReadGitSource = (source: string) => Promise<{ text: string; mtime: number }>;

/** Ignition configs are JSON: a value goes inside a JSON string, escaped as one. */
export const jsonStringQuote: Quote = (value) => JSON.stringify(value).slice(1, -1);

function nodeAt(model: Model, address: string): StoredRecord {
  const uid = model.nodes.collection.lookup('ip', address);
  const node = uid === undefined ? undefined : model.nodes.collection.get(uid);
  if (!node) throw new NotFound(`No node has the caller's address ${address}`);
  return node;
}

function fill(model: Model, node: StoredRecord, text: string, quote: Quote): string {
  return fillNodeTemplate(text, nodeVariables(model.store, node, model.nodes.view(node), model.credentialNames()), quote);
}

/** A kickstart-directory file, a kickstart registry entry, or a `git:` path: what boot configs name too. */
async function readNamed(model: Model, name: string, readGit: ReadGitSource): Promise<{ text: string; mtime: number }> {
  return name.startsWith('git:') ? readGit(name) : model.kickstarts.read(name);
}

/** GET /ztp/script for the node at `address`. */
export async function ztpScript(model: Model, address: string, readGit: ReadGitSource): Promise<{ text: string; mtime: number }> {
  const node = nodeAt(model, address);
  const bootConfig = mergedAttributes(model.store, node)[BOOT_CONFIG_ATTRIBUTE];
  if (bootConfig === undefined || !bootConfig.startsWith(ZTP_PREFIX))
    throw new NotFound(`Node ${String(node.name)} has no ZTP script: its ${BOOT_CONFIG_ATTRIBUTE} is ${bootConfig === undefined ? 'unset' : `'${bootConfig}'`}, not ztp:<NAME>`);
  const { text, mtime } = await readNamed(model, bootConfig.slice(ZTP_PREFIX.length), readGit);
  return { text: fill(model, node, text, kickstartQuote), mtime };
}

export interface RemoteLimits {
  /** Seconds for the whole fetch, body included. */
  timeoutSeconds: number;
  maxBytes: number;
}

/** The body at `url`, at most `limits.maxBytes`, within `limits.timeoutSeconds`. */
export async function fetchRemoteConfig(url: string, limits: RemoteLimits): Promise<string> {
  const signal = AbortSignal.timeout(limits.timeoutSeconds * 1000);
  const timedOut = () => new RemoteConfigError(true, `${url} did not answer in full within ${limits.timeoutSeconds} s (install.ignition_fetch_timeout)`);
  try {
    const response = await fetch(url, { signal, redirect: 'follow' });
    if (!response.ok || !response.body) throw new RemoteConfigError(false, `${url} answered ${response.status} ${response.statusText}`);
    const parts: Buffer[] = [];
    let size = 0;
    for await (const piece of response.body as unknown as AsyncIterable<Uint8Array>) {
      size += piece.length;
      if (size > limits.maxBytes) {
        await response.body.cancel().catch(() => {});
        throw new RemoteConfigError(false, `${url} sent more than ${limits.maxBytes} bytes (install.ignition_max_bytes)`);
      }
      parts.push(Buffer.from(piece));
    }
    return Buffer.concat(parts, size).toString('utf8');
  } catch (err) {
    if (err instanceof RemoteConfigError) throw err;
    if (signal.aborted) throw timedOut();
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new RemoteConfigError(false, `Cannot fetch ${url}: ${cause ?? (err as Error).message}`);
  }
}

/** GET /ignition/<UID>: the Ignition config of node `id` (uid, or any id a node answers to). */
export async function ignitionConfig(model: Model, id: string, readGit: ReadGitSource, limits: RemoteLimits): Promise<{ text: string; mtime: number }> {
  const node = model.nodes.resolve(id);
  const source = mergedAttributes(model.store, node)[IGNITION_ATTRIBUTE];
  if (source === undefined || source === '') throw new NotFound(`Node ${String(node.name)} has no ${IGNITION_ATTRIBUTE} attribute`);
  const { text, mtime } = /^https?:\/\//i.test(source)
    ? { text: await fetchRemoteConfig(source, limits), mtime: Date.now() / 1000 }
    : await readNamed(model, source, readGit);
  return { text: fill(model, node, text, jsonStringQuote), mtime };
}
