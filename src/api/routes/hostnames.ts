// Hostname objects (spec 001, Hostname Objects): extra DNS records — A (arec), AAAA (aaaarec)
// and SRV (srvrec) — that keel's DNS server answers (src/net/dns, when dns.enabled); an arec with
// a MAC is also answered by authoritative DHCP (src/net/dhcp/directory.ts). The spec uses both
// /hostnames and /hosts: both are served, same records.
// Routes only: the class itself (fields, rules) is src/model/classes/hostname.ts.
import { hostnameClass } from '../../model/classes/hostname.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

const bypart = (plural: string): Route => ({
  method: 'GET', path: `/${plural}/bypart/:part`, access: 'role.authuser', summary: 'Uids of the hostname records whose uid contains PART',
  handler: (req, ctx) => {
    const part = req.params.part!.toLowerCase();
    return ctx.model.objects(hostnameClass).collection.list().filter((r) => r.uid.includes(part)).map((r) => r.uid);
  },
});

export const hostnameRoutes: Route[] = [
  ...objectRoutes(hostnameClass),
  ...objectRoutes(hostnameClass, { one: 'host', many: 'hosts' }),
  bypart('hostnames'),
  bypart('hosts'),
];
