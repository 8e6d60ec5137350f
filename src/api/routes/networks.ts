// Network objects (spec 001, Network Objects): IPv4 subnets nodes get their addresses from.
// Routes only: the class itself (fields, rules) is src/model/classes/network.ts.
import { inSubnet, parseIPv4 } from '../../model/address.js';
import { networkClass } from '../../model/classes/network.js';
import type { StoredRecord } from '../../store/store.js';
import type { ApiContext } from '../context.js';
import { objectRoutes } from '../object-routes.js';
import type { Request, Route } from '../route.js';

/** Networks whose fields match, keyed by uid like GET /nets. */
function networksWhere(ctx: ApiContext, test: (net: StoredRecord) => boolean): Record<string, unknown> {
  const store = ctx.model.objects(networkClass);
  return Object.fromEntries(store.collection.list().filter(test).map((net) => [net.uid, store.view(net)]));
}

const contains = (value: unknown, part: string) => typeof value === 'string' && value.toLowerCase().includes(part.toLowerCase());

/** A full address: networks whose subnet contains it; partial text: networks whose addresses contain it. */
function matchesIp(net: StoredRecord, text: string): boolean {
  const address = parseIPv4(text);
  if (address !== undefined) return inSubnet(address, parseIPv4(net.first_ip as string)!, net.mask_bits as number);
  return ['first_ip', 'router_ip', 'gateway_ip'].some((field) => contains(net[field], text));
}

const search = (path: string, summary: string, test: (net: StoredRecord, part: string) => boolean): Route => ({
  method: 'GET', path, access: 'role.authuser', summary,
  handler: (req: Request, ctx) => networksWhere(ctx, (net) => test(net, req.params.part!)),
});

export const networkRoutes: Route[] = [
  ...objectRoutes(networkClass),
  search('/nets/byname/:part', 'Networks whose name contains PART', (net, part) => contains(net.name, part)),
  search('/nets/byip/:part', 'Networks containing the address, or whose addresses contain the partial text', matchesIp),
  search('/nets/bykey/:part', 'Networks whose uid contains PART', (net, part) => contains(net.uid, part)),
  search('/nets/byiface/:part', 'Deprecated: networks whose node_iface contains PART', (net, part) => contains(net.node_iface, part)),
];
