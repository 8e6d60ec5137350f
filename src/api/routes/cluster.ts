// Cluster-wide endpoints (spec 001, Cluster-wide Endpoints). Where the spec leaves an endpoint to
// the vendor, docs/cluster.md says what keel returns and why.
import { createHash } from 'node:crypto';
import { missingIpxeBinaries } from '../../boot/ipxe-binaries.js';
import { badRequest, notFound } from '../../http/errors.js';
import { describeCertificates } from '../../http/tls.js';
import { attribClass } from '../../model/classes/attrib.js';
import { distroClass } from '../../model/classes/distro.js';
import { networkClass } from '../../model/classes/network.js';
import { sshKeyClass } from '../../model/classes/registry.js';
import { nodes } from '../../model/cluster.js';
import { FORMAT_NAMES } from '../../model/formats.js';
import { OBJECT_CLASSES, type Model } from '../../model/model.js';
import { parsePattern } from '../../model/naming.js';
import { isPlainObject, type Schema } from '../../model/schema.js';
import { MISSED_PERIODS_DOWN } from '../../model/node-state.js';
import { clusterSettings, putClusterSettingsInTx, STATUS_PERIOD_DEFAULT, STATUS_PERIOD_MAX, STATUS_PERIOD_MIN, statusPeriodProblem, type ClusterSettings } from '../../model/settings.js';
import { VERSION } from '../../version.js';
import type { ApiContext } from '../context.js';
import type { Route } from '../route.js';

/** Keys of PATCH /cluster; `null` removes a key (back to its default). */
const CLUSTER_FIELDS: Schema = {
  default_group: { type: 'string', summary: 'Attribute group (uid or name) every node inherits first' },
  naming: { type: 'string', summary: 'Pattern of the default naming pool, e.g. n{} (the default) or node{:04d}' },
  default_network: { type: 'string', summary: 'Network (uid or name) of the default pool and of pools without a network' },
  accept_new_nodes: { type: 'boolean', summary: 'Whether unknown machines are booted (and added as nodes)' },
  default_distro: { type: 'string', summary: 'Distribution (uid or name) new boot configurations use' },
  cluster_name: { type: 'string', summary: 'Name of the cluster' },
  cluster_id: { type: 'string', summary: 'Identifier of the cluster' },
  auth_config: { type: 'object', summary: 'Settings of the authentication system' },
  influx_token: { type: 'string', summary: 'Token of the monitoring database (write-only: GET shows only influx_token_set)' },
  status_period: { type: 'number', summary: `Seconds between a node agent's status reports (${STATUS_PERIOD_MIN}..${STATUS_PERIOD_MAX}, default ${STATUS_PERIOD_DEFAULT}); a node silent for ${MISSED_PERIODS_DOWN} periods reads down` },
};

/** Every object class's records, by the class's plural: what /cluster/summary and /cluster/usage cover. */
const collections = (model: Model) => Object.fromEntries(OBJECT_CLASSES.map((cls) => [cls.plural, model.objects(cls).collection]));

/** This head's uid: stable, derived from its configured name (keel has one head per store). */
export function headUid(ctx: ApiContext): string {
  return createHash('sha256').update(`keel-head:${ctx.config.server.name}`).digest('hex').slice(0, 32);
}

/** Spec 003's optional `ca_pem` of a head: the CA of its HTTPS listener, when it has one. */
function headCa(ctx: ApiContext): { ca_pem?: string } {
  return ctx.caBundle === '' ? {} : { ca_pem: ctx.caBundle };
}

function thisHead(ctx: ApiContext, id: string): { uid: string; name: string } {
  const uid = headUid(ctx);
  if (id !== uid && id !== ctx.config.server.name) throw notFound(`No head found for ID=${id}`);
  return { uid, name: ctx.config.server.name };
}

function clusterView(ctx: ApiContext): Record<string, unknown> {
  const { influx_token: influxToken, accountant: _accountant, ...settings } = clusterSettings(ctx.store);
  const now = ctx.clock();
  return {
    naming: 'n{}',
    accept_new_nodes: false,
    status_period: STATUS_PERIOD_DEFAULT,
    ...settings,
    influx_token_set: influxToken !== undefined,
    time: now / 1000,
    heads: [{ uid: headUid(ctx), name: ctx.config.server.name, version: VERSION, ssh_public: ctx.headKey.public, ...headCa(ctx) }],
    auth: {
      // POST /login with {user, pass} (keel's own admins), or {user, secret} from the local login socket.
      methods: ['password', 'local-socket'],
      access_token_ttl: ctx.config.auth.access_token_ttl,
      refresh_token_ttl: ctx.config.auth.refresh_token_ttl,
    },
    // keel runs no InfluxDB or Grafana (influx_token is only kept): its own counters are Prometheus
    // text at /metrics, and nodes report status and hardware with PUT /node/putstatus.
    monitoring: { metrics_path: '/metrics', metrics_format: 'prometheus', influxdb: false, node_reports: 'PUT /api/v1/node/putstatus' },
    // What GET /image/<UID> files its content under (the formats keel detects, docs/content.md).
    image_formats: FORMAT_NAMES,
    // keel loads no status or hardware plugins: what a node reports is what it sends.
    plugins: [],
    // Firmware that needs one of these cannot boot until it is in the content store.
    ipxe_binaries_missing: missingIpxeBinaries(ctx.model.chunks),
  };
}

async function patchCluster(ctx: ApiContext, actor: string, body: Record<string, unknown>): Promise<void> {
  if (typeof body.naming === 'string') {
    const pattern = parsePattern(body.naming);
    if (typeof pattern === 'string') throw badRequest(`Field 'naming' ${pattern}`);
  }
  if (body.status_period !== undefined && body.status_period !== null) {
    const problem = statusPeriodProblem(body.status_period);
    if (problem !== undefined) throw badRequest(problem);
  }
  await ctx.store.write(actor, () => {
    const settings: Record<string, unknown> = { ...clusterSettings(ctx.store) };
    for (const [key, value] of Object.entries(body)) {
      if (value === null) delete settings[key];
      else if (key === 'default_group') settings[key] = ctx.model.objects(attribClass).referenceTo(key, value);
      else if (key === 'default_distro') settings[key] = ctx.model.objects(distroClass).referenceTo(key, value);
      else if (key === 'default_network') settings[key] = ctx.model.objects(networkClass).referenceTo(key, value);
      else settings[key] = value;
    }
    putClusterSettingsInTx(ctx.store, settings as ClusterSettings);
  });
}

export const clusterRoutes: Route[] = [
  {
    method: 'GET', path: '/cluster/time', access: 'public', summary: 'Current time on this head',
    handler: (_req, ctx) => {
      const now = ctx.clock();
      return { time: now / 1000, iso: new Date(now).toISOString(), head: ctx.config.server.name };
    },
  },
  {
    method: 'GET', path: '/cluster/database', access: 'public', summary: 'The database behind this head',
    handler: (_req, ctx) => {
      const stats = ctx.store.stats();
      return { engine: 'lmdb', head: ctx.config.server.name, version: VERSION, last_change: stats.last_seq, objects: stats.classes };
    },
  },
  {
    method: 'GET', path: '/cluster', access: 'role.authuser', summary: 'Cluster settings, time, heads, auth and monitoring configuration, image formats, plugins',
    handler: (_req, ctx) => clusterView(ctx),
  },
  {
    method: 'PATCH', path: '/cluster', access: 'role.fulladmin', summary: 'Set cluster settings (null removes one)', body: CLUSTER_FIELDS,
    handler: async (req, ctx) => patchCluster(ctx, req.principal!.name, req.body as Record<string, unknown>),
  },
  {
    method: 'GET', path: '/cluster/summary', access: 'role.authuser', summary: 'Uids of all objects, by class',
    handler: (_req, ctx) => Object.fromEntries(Object.entries(collections(ctx.model)).map(([plural, c]) => [plural, [...c.records.getKeys()]])),
  },
  {
    method: 'GET', path: '/cluster/hosts', access: 'public', summary: 'Host name → IP address of every node and address record',
    handler: (_req, ctx) => {
      const hosts: Record<string, string> = {};
      for (const record of ctx.model.objectsNamed('hostname').collection.list()) if (typeof record.ip === 'string') hosts[record.name as string] = record.ip;
      for (const node of ctx.model.nodes.collection.list()) if (typeof node.ip === 'string') hosts[node.name as string] = node.ip;
      return hosts;
    },
  },
  {
    method: 'GET', path: '/cluster/sshkeys', access: 'public', summary: 'SSH public keys authorised on the nodes: every admin\'s keys, the head\'s key, the /sshkeys registry\'s',
    handler: (_req, ctx) => {
      const keys = new Set<string>();
      for (const admin of ctx.model.admins.collection.list()) for (const key of (admin.keys as string[] | undefined) ?? []) keys.add(key);
      // The head's own key (PUT /node/<UID>/exec runs with it) and spec 004's registry (docs/registries.md).
      keys.add(ctx.headKey.public);
      for (const record of ctx.model.objects(sshKeyClass).collection.list()) keys.add((record.text as string).trim());
      return { keys: [...keys] };
    },
  },
  {
    method: 'GET', path: '/cluster/cabundle', access: 'public', summary: 'CA certificates of the cluster (PEM)',
    // The CA of the HTTPS listener (generated, or https.ca_file; docs/security.md, "HTTPS"); none while HTTPS is off.
    handler: (_req, ctx) => ({ certificates: describeCertificates(ctx.caBundle), pem: ctx.caBundle }),
  },
  {
    method: 'GET', path: '/cluster/license', access: 'role.authuser', summary: 'License of this keel installation',
    handler: (_req, ctx) => ({ product: 'keel', version: VERSION, licensed_nodes: null, nodes: nodes(ctx.store).count(), expires: null }),
  },
  {
    method: 'GET', path: '/cluster/usage', access: 'role.authuser', summary: 'Object counts and nodes by type; the accounting configuration',
    handler: (_req, ctx) => {
      const byType: Record<string, number> = {};
      for (const node of nodes(ctx.store).list()) byType[node.type as string] = (byType[node.type as string] ?? 0) + 1;
      return {
        objects: Object.fromEntries(Object.entries(collections(ctx.model)).map(([plural, c]) => [plural, c.count()])),
        nodes_by_type: byType,
        accountant: clusterSettings(ctx.store).accountant ?? null,
      };
    },
  },
  {
    method: 'GET', path: '/cluster/accountant', access: 'role.authuser', summary: 'The cluster accounting configuration',
    handler: (_req, ctx) => clusterSettings(ctx.store).accountant ?? {},
  },
  {
    method: 'PUT', path: '/cluster/accountant', access: 'role.fulladmin', summary: 'Replace the cluster accounting configuration (a JSON object; {} = none)',
    handler: async (req, ctx) => {
      if (!isPlainObject(req.body)) throw badRequest('Request body must be a JSON object (the accounting configuration)');
      const accountant = req.body;
      await ctx.store.write(req.principal!.name, () => putClusterSettingsInTx(ctx.store, { ...clusterSettings(ctx.store), accountant }));
    },
  },
  {
    method: 'GET', path: '/cluster/head/:uid', access: 'role.authuser', summary: 'A head: uid, name, version, uptime, listening address, database',
    handler: (req, ctx) => ({
      ...thisHead(ctx, req.params.uid!),
      // Spec 003's field: the head's SSH public key (src/ssh/keys.ts).
      ssh_public: ctx.headKey.public,
      ...headCa(ctx),
      version: VERSION,
      node_version: process.version,
      time: ctx.clock() / 1000,
      uptime: process.uptime(),
      bind: ctx.config.server.bind,
      http_port: ctx.config.http.port,
      https_port: ctx.config.https.enabled ? ctx.config.https.port : null,
      database: { engine: 'lmdb', last_change: ctx.store.lastSeq },
    }),
  },
  {
    method: 'GET', path: '/cluster/head/:uid/log', access: 'role.authuser',
    summary: 'The head\'s most recent log entries, oldest first (?lines=N, default 100, at most 10000)',
    handler: (req, ctx) => {
      const requested = Number(req.query.get('lines') ?? 100);
      if (!Number.isSafeInteger(requested) || requested < 1 || requested > 10_000) throw badRequest(`Parameter 'lines' must be an integer 1..10000`);
      // The full log goes to stdout (journald under systemd/keel.service); this is the last MiB of it.
      return { ...thisHead(ctx, req.params.uid!), level: ctx.config.log.level, lines: ctx.recentLog.tail(requested) };
    },
  },
  {
    method: 'GET', path: '/whereami', access: 'role.authuser', summary: 'The node this request comes from (by source address)',
    handler: (req, ctx) => {
      const uid = nodes(ctx.store).lookup('ip', req.remoteAddress);
      const node = uid === undefined ? undefined : nodes(ctx.store).get(uid);
      if (!node) throw notFound(`No node has IP=${req.remoteAddress}, the address this request came from`);
      return { uid: node.uid, name: node.name, ip: node.ip, mac: node.mac, address: req.remoteAddress };
    },
  },
];
