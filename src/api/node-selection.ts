// The nodes a bulk request names (power actions, group and attribute assignment): exactly one of
// a list of node ids, a selector or a dynamic group, from a JSON body or a GET query.
import { badRequest } from '../http/errors.js';
import { dyngroupClass } from '../model/classes/dyngroup.js';
import { nodes, selectorSubjects } from '../model/cluster.js';
import type { Schema } from '../model/schema.js';
import { selectNodes } from '../model/selector.js';
import type { StoredRecord } from '../store/store.js';
import type { ApiContext } from './context.js';

/** The body fields that name the nodes of a bulk request. */
export const SELECTION_BODY: Schema = {
  nodes: { type: 'string[]', summary: 'Nodes (uid, name, MAC or IP)' },
  selector: { type: 'string', summary: 'Node selector (docs/selector.md)' },
  dyngroup: { type: 'string', summary: 'Dynamic group (uid or name)' },
};

/**
 * The nodes a bulk request names, each once, in the order given (a list) or selected: an unknown
 * node in the list is a 404 naming it; a selector or group that selects none gives none.
 */
export function selection(ctx: ApiContext, source: Record<string, unknown>): StoredRecord[] {
  const given = (['nodes', 'selector', 'dyngroup'] as const).filter((k) => source[k] !== undefined);
  if (given.length !== 1) throw badRequest(`Name the nodes with exactly one of 'nodes', 'selector' or 'dyngroup'`);
  if (source.nodes !== undefined) {
    const ids = source.nodes as string[];
    if (ids.length === 0) throw badRequest(`'nodes' must not be empty`);
    const found = new Map<string, StoredRecord>();
    for (const id of ids) {
      const node = ctx.model.nodes.resolve(id);
      found.set(node.uid, node);
    }
    return [...found.values()];
  }
  const selector = source.selector !== undefined
    ? source.selector as string
    : ctx.model.objects(dyngroupClass).resolve(source.dyngroup as string).selector as string;
  const result = selectNodes(selector, selectorSubjects(ctx.store));
  if (!result.ok) throw badRequest(`Selector at column ${result.column}: ${result.reason}`);
  const all = nodes(ctx.store);
  return result.uids.map((uid) => all.get(uid)!).filter((n) => n !== undefined);
}

/** Selection from a GET query: `nodes` (comma list), `selector` or `dyngroup`. */
export function querySelection(ctx: ApiContext, query: URLSearchParams): StoredRecord[] {
  const source: Record<string, unknown> = {};
  if (query.has('nodes')) source.nodes = query.get('nodes')!.split(',').filter((s) => s !== '');
  if (query.has('selector')) source.selector = query.get('selector');
  if (query.has('dyngroup')) source.dyngroup = query.get('dyngroup');
  return selection(ctx, source);
}
