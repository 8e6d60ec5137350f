// Index, name and IP of a node, allocated inside the write transaction that stores the node:
// store writes run one at a time, and the unique `slot`, `name` and `ip` indexes are read inside
// the same transaction, so concurrent creates can never be handed the same index or address.
import type { Store, StoredRecord, WriteTx } from '../store/store.js';
import { formatIPv4, parseIPv4 } from './address.js';
import { Invalid } from './errors.js';
import { nodeSlot } from './indexes.js';
import { effectivePool, networks, nodes, type EffectivePool } from './cluster.js';
import { formatName } from './naming.js';

/**
 * Per transaction, the lowest index / address not yet known to be taken, per pool and network:
 * a bulk create of n nodes then scans each index once instead of n² times. A hint is only a
 * lower bound on free slots, so it can never cause a collision.
 */
const hints = new WeakMap<WriteTx, Map<string, number>>();

function hintsOf(tx: WriteTx): Map<string, number> {
  let map = hints.get(tx);
  if (!map) hints.set(tx, (map = new Map()));
  return map;
}

/** The network facts allocation needs. */
interface NetRange {
  uid: string;
  label: string;
  first: number;
  count: number;
  firstIndex: number;
}

function netRange(store: Store, uid: string | undefined): NetRange | undefined {
  const net = uid === undefined ? undefined : networks(store).get(uid);
  if (!net) return undefined;
  return {
    uid: net.uid, label: (net.name as string | undefined) ?? net.uid,
    first: parseIPv4(net.first_ip as string)!, count: net.ip_count as number, firstIndex: (net.first_index as number | undefined) ?? 0,
  };
}

const freeFor = (owner: string | undefined, uid: string | undefined) => owner === undefined || owner === uid;

/** Smallest index ≥ the pool's first index whose slot and computed name are free. */
function allocateIndex(store: Store, tx: WriteTx, pool: EffectivePool, uid: string | undefined): number {
  const collection = nodes(store);
  const hintKey = `index:${pool.uid ?? ''}`;
  const taken = hintsOf(tx);
  for (let index = Math.max(pool.firstIndex, taken.get(hintKey) ?? 0); index < 2 ** 31; index++) {
    if (!freeFor(collection.lookup('slot', nodeSlot(pool.uid, index)), uid)) continue;
    if (!freeFor(collection.lookup('name', formatName(pool.pattern, index)), uid)) continue;
    taken.set(hintKey, index + 1);
    return index;
  }
  throw new Invalid(`Naming pool ${pool.label} has no free index`);
}

const inRange = (net: NetRange, address: number) => address >= net.first && address < net.first + net.count;
const rangeText = (net: NetRange) => `${formatIPv4(net.first)}-${formatIPv4(net.first + net.count - 1)}`;

/**
 * The address the pool gives `index` by rule (ip_base / ip_offset), with how it was computed;
 * undefined when the pool takes the lowest free address of its network instead.
 */
function fixedAddress(pool: EffectivePool, net: NetRange | undefined, index: number): { address: number; how: string } | undefined {
  const step = index - pool.firstIndex;
  let fixed: { address: number; how: string };
  if (pool.ipBase !== undefined) fixed = { address: pool.ipBase + step, how: `ip_base ${formatIPv4(pool.ipBase)} + ${step}` };
  else if (pool.ipOffset !== undefined) {
    if (!net) throw new Invalid(`Naming pool ${pool.label} sets ip_offset but has no network to offset from: set its network (or a parent's), or create one (POST /nets)`);
    fixed = { address: net.first + pool.ipOffset + step, how: `network ${net.label} first_ip ${formatIPv4(net.first)} + ip_offset ${pool.ipOffset} + ${step}` };
  } else return undefined;
  if (net && !inRange(net, fixed.address))
    throw new Invalid(`Naming pool ${pool.label} gives index ${index} the address ${formatIPv4(fixed.address)}, outside network ${net.label} (${rangeText(net)})`);
  if (fixed.address > 0xffffffff) throw new Invalid(`Naming pool ${pool.label} gives index ${index} no valid IPv4 address`);
  return fixed;
}

/** The lowest address of the network's range that no other node holds. */
function lowestFreeAddress(store: Store, tx: WriteTx, net: NetRange, uid: string | undefined): string {
  const collection = nodes(store);
  const hintKey = `ip:${net.uid}`;
  const taken = hintsOf(tx);
  for (let address = Math.max(net.first, taken.get(hintKey) ?? 0); address < net.first + net.count; address++) {
    const ip = formatIPv4(address);
    if (!freeFor(collection.lookup('ip', ip), uid)) continue;
    taken.set(hintKey, address + 1);
    return ip;
  }
  throw new Invalid(`Network ${net.label} has no free IP address left (ip_count ${net.count}): raise its ip_count, or give the pool another network`);
}

/** Why a naming-pool push changed a node's name and address, or kept an address no rule gives any more. */
export interface PushReasons {
  name?: string;
  ip?: string;
}

/** Transactions in which every node written is renumbered (a naming-pool push), with the reasons per node uid. */
const renumbering = new WeakMap<WriteTx, Map<string, PushReasons>>();

/** Renumber every node written in `tx`; the map fills with why each node's name or address changed. */
export function renumberNodesIn(tx: WriteTx): Map<string, PushReasons> {
  let reasons = renumbering.get(tx);
  if (!reasons) renumbering.set(tx, (reasons = new Map()));
  return reasons;
}

function setAddress(node: Record<string, unknown>, ip: string | undefined, net: string | undefined): void {
  if (ip === undefined) delete node.ip;
  else node.ip = ip;
  if (net === undefined) delete node.net;
  else node.net = net;
}

/**
 * Fill in a node's `index`, `name`, `ip` and `net` (the network its address is from). A node
 * keeps its place while its naming pool is unchanged; `renumber` (naming-pool push) recomputes
 * the name and address from the pool as it is now, keeping the index where still possible and an
 * address from the network's free range while it is still inside the pool's network. The network
 * is the pool's (or its nearest parent's), else the cluster's default network (cluster.ts,
 * defaultNetwork). A node that cannot be given an address is refused (Invalid) — except when
 * keel has no network at all, where it has none to give; a node never loses the address it has
 * to a recomputation that yields none.
 */
export function placeNode(store: Store, tx: WriteTx, node: Record<string, unknown>, previous: StoredRecord | undefined): void {
  const reasons = renumbering.get(tx);
  const samePool = previous !== undefined && previous.naming_pool === node.naming_pool && typeof previous.index === 'number';
  if (samePool && reasons === undefined) {
    for (const key of ['index', 'name', 'ip', 'net'] as const) {
      if (previous[key] === undefined) delete node[key];
      else node[key] = previous[key];
    }
    return;
  }
  // Read before `node` changes: a caller may hand in the previous record itself.
  const uid = previous?.uid;
  const [hadIndex, hadName, hadNet] = [previous?.index, previous?.name, previous?.net as string | undefined];
  const had = typeof previous?.ip === 'string' ? previous.ip : undefined;
  const pool = effectivePool(store, node.naming_pool as string | undefined);
  const keepIndex = samePool && (hadIndex as number) >= pool.firstIndex;
  const index = keepIndex ? (hadIndex as number) : allocateIndex(store, tx, pool, uid);
  node.index = index;
  node.name = formatName(pool.pattern, index);
  const why: PushReasons = {};
  if (samePool && !keepIndex) why.name = `index ${String(hadIndex)} is below the pool's first_index ${pool.firstIndex}: the lowest free index`;
  else if (samePool && node.name !== hadName) why.name = `the pool's pattern is now ${pool.patternText}`;
  if (uid !== undefined && reasons !== undefined) reasons.set(uid, why);

  const net = netRange(store, pool.network);
  const fixed = fixedAddress(pool, net, index);
  if (fixed !== undefined) {
    setAddress(node, formatIPv4(fixed.address), net?.uid);
    if (node.ip !== had) why.ip = `naming pool ${pool.label}: ${fixed.how} (index ${index} - first_index ${pool.firstIndex})`;
    return;
  }
  if (net === undefined) {
    // No network anywhere: keel hands out no addresses (proxy DHCP beside the site's server).
    setAddress(node, had, had === undefined ? undefined : hadNet);
    if (had !== undefined) why.ip = `kept: naming pool ${pool.label} gives no address now (no ip_base, and keel has no network)`;
    return;
  }
  if (samePool && had !== undefined && inRange(net, parseIPv4(had)!)) {
    setAddress(node, had, net.uid);
    return;
  }
  setAddress(node, lowestFreeAddress(store, tx, net, uid), net.uid);
  why.ip = had === undefined
    ? `the node had no address: the lowest free address of network ${net.label}`
    : `${had} is outside network ${net.label} (${rangeText(net)}), the pool's network now: the lowest free address there`;
}
