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

/** The pool's address for `index` (ip_base / ip_offset), or the network's lowest free address. */
function allocateIp(store: Store, tx: WriteTx, pool: EffectivePool, index: number, uid: string | undefined): { ip: string; net?: string } | undefined {
  const net = netRange(store, pool.network);
  const step = index - pool.firstIndex;
  let fixed: number | undefined;
  if (pool.ipBase !== undefined) fixed = pool.ipBase + step;
  else if (pool.ipOffset !== undefined && net) fixed = net.first + pool.ipOffset + step;
  if (fixed !== undefined) {
    if (net && (fixed < net.first || fixed >= net.first + net.count))
      throw new Invalid(`Naming pool ${pool.label} gives index ${index} the address ${formatIPv4(fixed)}, outside network ${net.label}`);
    if (fixed > 0xffffffff) throw new Invalid(`Naming pool ${pool.label} gives index ${index} no valid IPv4 address`);
    return { ip: formatIPv4(fixed), net: net?.uid };
  }
  if (!net) return undefined;
  const collection = nodes(store);
  const hintKey = `ip:${net.uid}`;
  const taken = hintsOf(tx);
  for (let address = Math.max(net.first, taken.get(hintKey) ?? 0); address < net.first + net.count; address++) {
    const ip = formatIPv4(address);
    if (!freeFor(collection.lookup('ip', ip), uid)) continue;
    taken.set(hintKey, address + 1);
    return { ip, net: net.uid };
  }
  throw new Invalid(`Network ${net.label} has no free IP address left (ip_count ${net.count})`);
}

/** Transactions in which every node written is renumbered (a naming-pool push). */
const renumbering = new WeakSet<WriteTx>();

export function renumberNodesIn(tx: WriteTx): void {
  renumbering.add(tx);
}

/**
 * Fill in a node's `index`, `name`, `ip` and `net` (the network its address is from). A node
 * keeps its place while its naming pool is unchanged; `renumber` (naming-pool push) recomputes
 * the name and address from the pool as it is now, keeping the index where still possible.
 */
export function placeNode(store: Store, tx: WriteTx, node: Record<string, unknown>, previous: StoredRecord | undefined): void {
  const renumber = renumbering.has(tx);
  const samePool = previous !== undefined && previous.naming_pool === node.naming_pool && typeof previous.index === 'number';
  if (samePool && !renumber) {
    for (const key of ['index', 'name', 'ip', 'net'] as const) {
      if (previous[key] === undefined) delete node[key];
      else node[key] = previous[key];
    }
    return;
  }
  const uid = previous?.uid;
  const pool = effectivePool(store, node.naming_pool as string | undefined);
  const keep = samePool && (previous.index as number) >= pool.firstIndex;
  const index = keep ? (previous.index as number) : allocateIndex(store, tx, pool, uid);
  node.index = index;
  node.name = formatName(pool.pattern, index);
  if (keep && pool.ipBase === undefined && pool.ipOffset === undefined && typeof previous.ip === 'string') {
    // Lowest-free addresses stay put while they are still inside the pool's network.
    const net = netRange(store, pool.network);
    const current = parseIPv4(previous.ip)!;
    if (net && current >= net.first && current < net.first + net.count) {
      node.ip = previous.ip;
      node.net = net.uid;
      return;
    }
  }
  const address = allocateIp(store, tx, pool, index, uid);
  if (address) {
    node.ip = address.ip;
    node.net = address.net;
  } else {
    delete node.ip;
    delete node.net;
  }
}
