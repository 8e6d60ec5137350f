// Spec 004's localnodes: POST /localnodes?ip=&artifactId=&pingable= (the postboot script's
// self-registration, no token), GET /localnodes (spec 004's array), /localnodes/<id>, and
// PUT /localnodes/<id>/script {script, privateKey}: the script run as root over SSH with the key
// sent (for this call only: never stored, never logged). docs/registries.md, "Localnodes".
import ssh2 from 'ssh2';
import { badRequest, HttpError } from '../../http/errors.js';
import { inKeelNetwork, localnodeClass } from '../../model/classes/localnode.js';
import { MAX_STDIN_BYTES } from '../../ssh/exec.js';
import { authenticate } from '../auth.js';
import type { ApiContext } from '../context.js';
import { objectRoutes } from '../object-routes.js';
import type { Request, Route } from '../route.js';
import { EXEC_TIMEOUT_DEFAULT, remoteReply } from './exec.js';

/** The access rule of a registration sent with a token: an admin may register any address. */
const REGISTER_ANY_ADDRESS = { method: 'POST', path: '/localnodes (token)', access: 'role.fulladmin' } as const;

/**
 * Who registers, and whether they may register `ip`. Without a token the caller registers itself:
 * `ip` must be its own source address and lie in one of keel's networks (POST /nets), so a
 * machine can only ever create or change the one record of its own address.
 */
async function registrant(req: Request, ctx: ApiContext, ip: string): Promise<string> {
  if (req.headers.authorization !== undefined) return (await authenticate(REGISTER_ANY_ADDRESS, req, ctx))!.name;
  if (ip !== req.remoteAddress) throw new HttpError(403, `A localnode registers its own address: ip=${ip} is not the caller's ${req.remoteAddress} (an admin's token may register any)`);
  if (!inKeelNetwork(ctx.store, ip)) throw new HttpError(403, `The caller's address ${ip} is in none of keel's networks (GET /nets): only machines there may register themselves`);
  return `localnode ${ip}`;
}

function parseBoolean(name: string, text: string | null): boolean | undefined {
  if (text === null) return undefined;
  if (text === 'true' || text === 'false') return text === 'true';
  throw badRequest(`Parameter '${name}' must be true or false`);
}

const standard = objectRoutes(localnodeClass).filter((route) => !(route.path === '/localnodes' && (route.method === 'GET' || route.method === 'POST')));

export const localnodeRoutes: Route[] = [
  ...standard,
  {
    method: 'GET', path: '/localnodes', access: localnodeClass.readAccess,
    summary: 'Every localnode, by id (spec 004\'s array of {id, artifactId, ip, pingable, …})',
    handler: (_req, ctx) => {
      const objects = ctx.model.objects(localnodeClass);
      return objects.collection.list().sort((a, b) => (a.id as number) - (b.id as number)).map((record) => objects.viewOf(record.uid));
    },
  },
  {
    method: 'POST', path: '/localnodes', access: 'public',
    summary: 'Register a localnode (?ip=&artifactId=&pingable=): from its own address in a keel network without a token, any with a full admin\'s; one record per address',
    handler: async (req, ctx) => {
      const ip = req.query.get('ip');
      if (ip === null) throw badRequest(`Missing parameter 'ip'`);
      const fields: Record<string, unknown> = { ip };
      const artifactId = req.query.get('artifactId');
      if (artifactId !== null) fields.artifactId = artifactId;
      const pingable = parseBoolean('pingable', req.query.get('pingable'));
      if (pingable !== undefined) fields.pingable = pingable;
      const who = await registrant(req, ctx, ip);
      const objects = ctx.model.objects(localnodeClass);
      const existing = objects.collection.lookup('ip', ip);
      const record = existing === undefined ? await objects.create(who, fields) : await objects.update(who, existing, fields, false);
      return objects.viewOf(record.uid);
    },
  },
  {
    method: 'PUT', path: '/localnodes/:id/script', access: 'role.fulladmin',
    summary: 'Run a script as root on the localnode over SSH with the private key sent (used for this call only): output streamed like PUT /node/<UID>/exec',
    body: {
      script: { type: 'any', required: true, summary: `The script (a string of at most ${MAX_STDIN_BYTES} bytes), run by root's shell` },
      privateKey: { type: 'any', required: true, summary: 'An unencrypted OpenSSH or PEM private key root on the localnode accepts; used for this call only' },
    },
    handler: async (req, ctx) => {
      const { script, privateKey } = req.body as { script: unknown; privateKey: unknown };
      if (typeof script !== 'string' || Buffer.byteLength(script) > MAX_STDIN_BYTES) throw badRequest(`Field 'script' must be a string of at most ${MAX_STDIN_BYTES} bytes`);
      if (typeof privateKey !== 'string') throw badRequest(`Field 'privateKey' must be a string`);
      const parsed = ssh2.utils.parseKey(privateKey);
      if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey())
        throw badRequest(`Field 'privateKey' is not an unencrypted private key${parsed instanceof Error ? `: ${parsed.message}` : ''}`);
      const node = ctx.model.objects(localnodeClass).resolve(req.params.id!);
      const target = { node: `localnode ${String(node.name)}`, host: node.ip as string, port: (node.ssh_port as number | undefined) ?? 22 };
      // The key and the script stay out of the log: only the script's size is recorded.
      return remoteReply(ctx, req.principal!.name, target, { cmd: script, privateKey, timeoutMs: EXEC_TIMEOUT_DEFAULT * 1000 }, { script_bytes: Buffer.byteLength(script) });
    },
  },
];
