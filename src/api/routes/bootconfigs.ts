// Boot config routes (spec 001, Boot Config Objects; the class is src/model/classes/bootconfig.ts):
// the standard routes, kernel and initramfs files, the kickstart rendered per node, consistency
// checks, and export/import as one tar archive.
import { createHash } from 'node:crypto';
import { fillKickstart, nodeVariables } from '../../boot/kickstart.js';
import { badRequest, notFound, notImplemented } from '../../http/errors.js';
import { bufferContent, FileReply, type ReplyContent } from '../../http/file-reply.js';
import { bootConfigClass } from '../../model/classes/bootconfig.js';
import { Conflict } from '../../model/errors.js';
import { parseGitSource } from '../../model/classes/gitrepo.js';
import { META_FIELDS } from '../../model/object-store.js';
import type { FileReader, StagedFile } from '../../store/chunks.js';
import type { StoredRecord } from '../../store/store.js';
import { authenticate } from '../auth.js';
import type { ApiContext } from '../context.js';
import { fileRoutes } from '../file-routes.js';
import { objectRoutes } from '../object-routes.js';
import { actor, type Request, type Route } from '../route.js';
import { readTar, TAR_END, tarHeader, tarPadding } from '../tar.js';

const bootConfigs = (ctx: ApiContext) => ctx.model.bootConfigs;
const files = (ctx: ApiContext) => ctx.model.files(bootConfigClass);

/** The reason GET …/errors gives for a boot config with problems, or undefined when it has none. */
function problemReason(ctx: ApiContext, record: StoredRecord): string | undefined {
  const problems = ctx.model.bootConfigProblems(record);
  return problems.length === 0 ? undefined : `Boot config ${record.name as string}: ${problems.map((p) => p.text).join('; ')}`;
}

/** The node a kickstart is rendered for: `?node=` (uid, name, MAC or IP; needs a token) or the caller's IP. */
async function kickstartNode(req: Request, ctx: ApiContext): Promise<StoredRecord> {
  const named = req.query.get('node');
  if (named !== null) {
    // Naming another node reveals its data: only for authenticated callers.
    await authenticate(KICKSTART_FOR_NAMED_NODE, req, ctx);
    // Any id a node answers to (uid, name, MAC in any notation, IP), as on /node/<id>.
    return ctx.model.nodes.resolve(named);
  }
  const uid = ctx.model.nodes.collection.lookup('ip', req.remoteAddress);
  const node = uid === undefined ? undefined : ctx.model.nodes.collection.get(uid);
  if (!node) throw notFound(`No node has the caller's address ${req.remoteAddress}; name one with ?node=`);
  return node;
}

/** The access rule for `?node=`: the kickstart route as if it required role.authuser. */
const KICKSTART_FOR_NAMED_NODE = { method: 'GET', path: '/bootconfig/:id/kickstart?node=', access: 'role.authuser' } as const;

/** The archive GET /bootconfig/<UID>/export sends: bootconfig.json, kernel, initramfs. */
function exportArchive(ctx: ApiContext, id: string): FileReply {
  const record = bootConfigs(ctx).resolve(id);
  const json = Buffer.from(JSON.stringify(bootConfigs(ctx).view(record), null, 2) + '\n');
  const readers: FileReader[] = [];
  type Segment = { size: number; bytes?: Buffer; reader?: FileReader };
  const segments: Segment[] = [];
  const add = (name: string, size: number, mtime: number, body: Omit<Segment, 'size'>) => {
    segments.push({ size: 512, bytes: tarHeader(name, size, mtime) }, { size, ...body });
    if (tarPadding(size)) segments.push({ size: tarPadding(size), bytes: Buffer.alloc(tarPadding(size)) });
  };
  add('bootconfig.json', json.length, record.last_modified as number, { bytes: json });
  const digest = createHash('sha256').update(json);
  for (const slot of files(ctx).slots) {
    const reader = ctx.model.chunks.open(files(ctx).id(record.uid, slot));
    if (!reader) continue;
    readers.push(reader);
    digest.update(reader.manifest.sha256);
    add(slot, reader.manifest.size, reader.manifest.mtime, { reader });
  }
  segments.push({ size: TAR_END.length, bytes: TAR_END });
  const content: ReplyContent = {
    size: segments.reduce((sum, s) => sum + s.size, 0),
    // Not the archive's hash (that would mean reading it twice): a digest of everything in it.
    sha256: digest.digest('hex'),
    mtime: record.last_modified as number,
    stable: false,
    piece(start, end) {
      let at = 0;
      for (const segment of segments) {
        if (start < at + segment.size) {
          const to = Math.min(end, at + segment.size) - at;
          return segment.bytes ? segment.bytes.subarray(start - at, to) : segment.reader!.piece(start - at, to);
        }
        at += segment.size;
      }
      throw new RangeError(`offset ${start} is past the archive's ${at} bytes`);
    },
    close: () => readers.forEach((r) => r.close()),
  };
  return new FileReply(content, {
    'Content-Type': 'application/x-tar',
    'Content-Disposition': `attachment; filename="${String(record.name).replace(/[^A-Za-z0-9._-]/g, '_')}.bootconfig.tar"`,
  });
}

/** POST /bootconfigs/import: a new boot config from an export archive, record and files in one transaction. */
async function importArchive(req: Request, ctx: ApiContext): Promise<string> {
  const chunks = ctx.model.chunks;
  const slots = files(ctx).slots;
  const staged = new Map<string, StagedFile>();
  let fields: Record<string, unknown> | undefined;
  try {
    for await (const member of readTar(req.stream!)) {
      if (member.name === 'bootconfig.json') {
        if (member.size > 1024 * 1024) throw badRequest('bootconfig.json in the archive is too large');
        const parts: Buffer[] = [];
        for await (const piece of member.data) parts.push(Buffer.from(piece));
        try {
          fields = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
        } catch {
          throw badRequest('bootconfig.json in the archive is not JSON');
        }
      } else if (slots.includes(member.name) && !staged.has(member.name)) {
        staged.set(member.name, await chunks.stage(member.data, { mtime: member.mtime }));
      } else throw badRequest(`Unexpected member '${member.name}' in the archive (expected bootconfig.json, kernel, initramfs)`);
    }
    if (!fields) throw badRequest('The archive has no bootconfig.json');
    const record: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (Object.hasOwn(META_FIELDS, key) || bootConfigClass.fields[key]?.readOnly) continue;
      record[key] = value;
    }
    const rename = req.query.get('name');
    if (rename !== null) record.name = rename;
    const stored = await bootConfigs(ctx).create(actor(req), record, (created) => {
      for (const [slot, file] of staged) chunks.linkInTx(files(ctx).id(created.uid, slot), file);
    });
    return stored.uid;
  } catch (err) {
    if (err instanceof Conflict) throw new Conflict(`${err.message} Import it under another name with ?name=`);
    throw err;
  } finally {
    for (const file of staged.values()) file.release();
  }
}

export const bootConfigRoutes: Route[] = [
  ...objectRoutes(bootConfigClass),
  ...fileRoutes(bootConfigClass, 'kernel', 'kernel'),
  ...fileRoutes(bootConfigClass, 'initramfs', 'initramfs'),
  {
    method: 'GET', path: '/bootconfig/:id/kickstart', access: 'public',
    summary: 'The boot config\'s kickstart rendered for a node: ?node= (needs a token) or the caller\'s IP',
    handler: async (req, ctx) => {
      const record = bootConfigs(ctx).resolve(req.params.id!);
      if (typeof record.kickstart !== 'string') throw notFound(`Boot config ${req.params.id} has no kickstart`);
      const node = await kickstartNode(req, ctx);
      // A `git:<repo>/<path>[@<ref>]` kickstart is read from the gitrepo (docs/gitrepos.md), else from <data-dir>/kickstarts/.
      const { text, mtime } = parseGitSource(record.kickstart) ? await ctx.git.readSource(record.kickstart) : await ctx.model.kickstarts.read(record.kickstart);
      const rendered = fillKickstart(text, nodeVariables(ctx.store, node, ctx.model.nodes.view(node), ctx.model.credentialNames()));
      return new FileReply(bufferContent(Buffer.from(rendered, 'utf8'), mtime), { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    },
  },
  {
    method: 'GET', path: '/bootconfig/:id/errors', access: 'role.authuser', summary: 'Check the boot config: what its boot style needs is there, references valid',
    handler: (req, ctx) => {
      const reason = problemReason(ctx, bootConfigs(ctx).resolve(req.params.id!));
      if (reason !== undefined) throw badRequest(reason);
    },
  },
  {
    method: 'GET', path: '/bootconfigs/errors', access: 'role.authuser', summary: 'Check every boot config',
    handler: (_req, ctx) => {
      const reasons = bootConfigs(ctx).collection.list().map((record) => problemReason(ctx, record)).filter((reason) => reason !== undefined);
      if (reasons.length > 0) throw badRequest(reasons.join('\n'));
    },
  },
  {
    method: 'GET', path: '/bootconfig/:id/export', access: 'role.authuser', summary: 'The boot config and its files as one tar archive',
    handler: (req, ctx) => exportArchive(ctx, req.params.id!),
  },
  {
    method: 'POST', path: '/bootconfigs/import', access: 'role.fulladmin', body: 'stream',
    summary: 'Create a boot config from an export archive (raw body); ?name= to import under another name',
    handler: (req, ctx) => importArchive(req, ctx),
  },
  {
    method: 'GET', path: '/bootconfigs/mkiso', access: 'role.fulladmin', summary: 'Build a bootable ISO (not implemented)',
    handler: () => {
      throw notImplemented('Building a bootable ISO is not implemented in keel yet');
    },
  },
];
