// The cluster object model's cross-object rules: naming pools with their inheritance, a node's
// merged attributes, where its network is, and what still uses a group, pool or network. (Reference
// fields themselves are resolved by ObjectStore, from each class's `references`.) The object
// classes, the allocator and other layers use these; refusals are DomainErrors.
import type { Collection, Store, StoredRecord } from '../store/store.js';
import { Invalid } from './errors.js';
import { attribIndexes, namingPoolIndexes, networkIndexes, nodeIndexes } from './indexes.js';
import { parseIPv4 } from './address.js';
import { DEFAULT_NAMING, parsePattern, type NamePattern } from './naming.js';
import { MAX_NAME_LENGTH } from './object-store.js';
import { MAX_STRING_LENGTH } from './schema.js';
import { checkPowerSettings } from './power-settings.js';
import { statusWithDerived } from './node-state.js';
import { clusterSettings, statusPeriod } from './settings.js';

export const nodes = (store: Store): Collection => store.collection('node', nodeIndexes);
export const attribGroups = (store: Store): Collection => store.collection('attrib', attribIndexes);
export const namingPools = (store: Store): Collection => store.collection('namingpool', namingPoolIndexes);
export const networks = (store: Store): Collection => store.collection('net', networkIndexes);

/** A naming pool with what it inherits from its parents resolved; `uid` undefined = the default pool. */
export interface EffectivePool {
  uid: string | undefined;
  label: string;
  pattern: NamePattern;
  patternText: string;
  firstIndex: number;
  ipBase?: number;
  ipOffset?: number;
  /** Network uid the pool's nodes get their IPs from. */
  network?: string;
  /** Attribute group uid the pool's nodes inherit when they have no groups of their own. */
  group?: string;
}

/**
 * Internal field of a network record: its place in the order networks were created (1, 2, …;
 * set once by the network class, never shown or written by clients). Networks stored before the
 * field existed have none and count as older than every numbered one.
 */
export const NETWORK_ORDER_FIELD = 'created_order';

/** A network's creation order (0 for one stored before the order was kept). */
export const networkOrder = (net: StoredRecord): number => (net[NETWORK_ORDER_FIELD] as number | undefined) ?? 0;

/**
 * The network pools without their own use: the cluster's default_network, else the network
 * created first (ties, only among networks stored before the order was kept, by uid). Adding a
 * network therefore never changes where nodes get their addresses; `undefined` only when there
 * is no network at all.
 */
export function defaultNetwork(store: Store): string | undefined {
  const configured = clusterSettings(store).default_network;
  if (configured !== undefined && networks(store).get(configured)) return configured;
  let first: StoredRecord | undefined;
  for (const net of networks(store).list()) {
    if (first === undefined || networkOrder(net) < networkOrder(first) || (networkOrder(net) === networkOrder(first) && net.uid < first.uid)) first = net;
  }
  return first?.uid;
}

/** Pool uid → its parents, nearest first (the pool itself first); cycles are refused on write. */
export function poolChain(store: Store, uid: string): StoredRecord[] {
  const chain: StoredRecord[] = [];
  const pools = namingPools(store);
  for (let next: string | undefined = uid; next !== undefined && chain.length < 64; ) {
    const pool = pools.get(next);
    if (!pool || chain.some((p) => p.uid === pool.uid)) break;
    chain.push(pool);
    next = pool.parent as string | undefined;
  }
  return chain;
}

export function effectivePool(store: Store, uid: string | undefined): EffectivePool {
  if (uid === undefined) {
    const text = clusterSettings(store).naming ?? DEFAULT_NAMING;
    // PATCH /cluster refuses a bad pattern, so the stored one always parses.
    return { uid, label: 'default', patternText: text, pattern: parsePattern(text) as NamePattern, firstIndex: 0, network: defaultNetwork(store) };
  }
  const chain = poolChain(store, uid);
  const pool = chain[0];
  if (!pool) throw new Invalid(`Field 'naming_pool': no naming pool found for ID=${uid}`);
  const inherited = (key: string) => chain.map((p) => p[key]).find((v) => v !== undefined) as string | undefined;
  return {
    uid,
    label: pool.name as string,
    patternText: pool.pattern as string,
    pattern: parsePattern(pool.pattern as string) as NamePattern,
    firstIndex: (pool.first_index as number | undefined) ?? 0,
    ipBase: pool.ip_base === undefined ? undefined : parseIPv4(pool.ip_base as string),
    ipOffset: pool.ip_offset as number | undefined,
    network: inherited('network') ?? defaultNetwork(store),
    group: inherited('group'),
  };
}

/**
 * The attribute groups a node inherits from, in order: the cluster's default group, then the
 * node's own groups — or, when it has none, its naming pool's group (nearest in the parent chain).
 */
export function effectiveGroups(store: Store, node: Record<string, unknown>): string[] {
  const groups: string[] = [];
  const defaultGroup = clusterSettings(store).default_group;
  if (defaultGroup !== undefined) groups.push(defaultGroup);
  const own = (node.groups as string[] | undefined) ?? [];
  if (own.length > 0) groups.push(...own);
  else if (typeof node.naming_pool === 'string') {
    const group = poolChain(store, node.naming_pool).map((p) => p.group as string | undefined).find((g) => g !== undefined);
    if (group !== undefined) groups.push(group);
  }
  return groups;
}

/** A node's attributes as it sees them: each effective group's in order, then its own. */
export function mergedAttributes(store: Store, node: Record<string, unknown>): Record<string, string> {
  const merged: Record<string, string> = {};
  const groups = attribGroups(store);
  for (const uid of effectiveGroups(store, node)) Object.assign(merged, groups.get(uid)?.attributes);
  return Object.assign(merged, node.attributes);
}

/**
 * Every node as the selector language sees it (merged attributes, hardware, status with what keel
 * derives — `state`, `last_report` — at the store's clock now), for dynamic groups and any API
 * that takes a selector. Groups are read once for all nodes.
 */
export function selectorSubjects(store: Store): { uid: string; attributes: Record<string, string>; hardware: Record<string, unknown>; status: Record<string, unknown> }[] {
  const now = store.now();
  const period = statusPeriod(clusterSettings(store));
  const groupAttributes = new Map<string, Record<string, string>>();
  for (const group of attribGroups(store).list()) groupAttributes.set(group.uid, (group.attributes as Record<string, string> | undefined) ?? {});
  return nodes(store).list().map((node) => {
    const attributes: Record<string, string> = {};
    for (const uid of effectiveGroups(store, node)) Object.assign(attributes, groupAttributes.get(uid));
    Object.assign(attributes, node.attributes);
    return { uid: node.uid, attributes, hardware: (node.hardware as Record<string, unknown> | undefined) ?? {}, status: statusWithDerived(node, now, period) };
  });
}

/**
 * Attribute values are strings (they end up in kernel command lines, templates and selectors):
 * numbers and booleans are stored as their text; anything else is refused naming the key.
 */
export function normaliseAttributes(value: unknown, field: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Invalid(`Field '${field}' must be a JSON object of key-value pairs`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '') throw new Invalid(`Field '${field}': attribute names must not be empty`);
    if (typeof v === 'string') out[key] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[key] = String(v);
    else throw new Invalid(`Field '${field}': attribute '${key}' must be a string, number or boolean`);
    if (key.length > MAX_NAME_LENGTH) throw new Invalid(`Field '${field}': attribute names must have at most ${MAX_NAME_LENGTH} characters`);
    if (out[key]!.length > MAX_STRING_LENGTH) throw new Invalid(`Field '${field}': attribute '${key}' must have at most ${MAX_STRING_LENGTH} characters`);
  }
  checkPowerSettings(out, field);
  return out;
}

/** Reason a referenced object cannot be deleted, or undefined: lists what still refers to it. */
export function referrers(store: Store, uid: string, label: string): string | undefined {
  const found: string[] = [];
  const settings = clusterSettings(store);
  if (settings.default_group === uid) found.push('the cluster (default_group)');
  if (settings.default_network === uid) found.push('the cluster (default_network)');
  for (const pool of namingPools(store).list()) {
    if (pool.network === uid || pool.group === uid || pool.parent === uid) found.push(`naming pool ${String(pool.name)}`);
  }
  let nodeCount = 0;
  for (const node of nodes(store).list()) {
    if (node.naming_pool === uid || node.net === uid || (node.groups as string[] | undefined)?.includes(uid)) nodeCount++;
  }
  if (nodeCount > 0) found.push(`${nodeCount} node(s)`);
  if (found.length === 0) return undefined;
  return `Cannot delete ${label}: still used by ${found.slice(0, 5).join(', ')}${found.length > 5 ? ', …' : ''}`;
}
