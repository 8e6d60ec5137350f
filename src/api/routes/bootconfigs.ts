// Boot config objects (spec 001, Boot Config Objects): how a node boots — kernel and initramfs
// (files in the chunk store), command line, boot style, image, repo and kickstart. Also the
// rendered kickstart per node, consistency checks, and export/import as one tar archive.
import { createHash } from 'node:crypto';
import { nodes } from '../../cluster/model.js';
import { bufferContent, FileReply, type ReplyContent } from '../../boot/file-reply.js';
import { kickstartExists, nodeVariables, readKickstart, renderKickstart } from '../../boot/kickstart.js';
import { bootConfigIndexes } from '../../store/classes.js';
import type { FileReader, StagedFile } from '../../store/chunks.js';
import { StoreConflict } from '../../store/errors.js';
import { authenticate } from '../auth.js';
import { AttachedFiles, chunkStoreOf, fileRoutes, recordRoutes } from '../content.js';
import type { ApiContext } from '../context.js';
import { badRequest, notFound, notImplemented } from '../errors.js';
import { META_FIELDS, objectStore, type ObjectClass } from '../objects.js';
import type { Request, Route } from '../route.js';
import { readTar, TAR_END, tarHeader, tarPadding } from '../tar.js';
import { validateBody } from '../validation.js';
import { imageClass } from './images.js';
import { nodeClass } from './nodes.js';
import { repoClass } from './repos.js';

export const BOOT_STYLES = ['rwram', 'roram', 'iscsi', 'next', 'disked', 'sanboot', 'live'] as const;
const SLOTS = ['kernel', 'initramfs'] as const;

export const bootConfigClass: ObjectClass = {
  name: 'bootconfig',
  plural: 'bootconfigs',
  label: 'boot config',
  indexes: bootConfigIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen boot configuration.',
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the boot config' },
    description: { type: 'string', summary: 'Free text' },
    cmdline: { type: 'string', summary: 'Kernel command line' },
    image: { type: 'string', summary: 'Image booted into (UID or name; stored as UID)' },
    boot_style: { type: 'string', enum: BOOT_STYLES, summary: 'How the node boots; default rwram (RAM-based, read-write)' },
    repo: { type: 'string', summary: 'Repo used by installs (UID or name; stored as UID)' },
    kickstart: { type: 'string', summary: 'Name of a kickstart file in <data-dir>/kickstarts/' },
    kernel: { type: 'object', readOnly: true, summary: 'The kernel: size, mtime, chksum, fmt (upload with PUT /bootconfig/<UID>/kernel)' },
    initramfs: { type: 'object', readOnly: true, summary: 'The initramfs: size, mtime, chksum, fmt (upload with PUT /bootconfig/<UID>/initramfs)' },
  },
  defaults: () => ({ boot_style: 'rwram' }),
};

const bootConfigs = (ctx: ApiContext) => objectStore(bootConfigClass, ctx);
const files = (ctx: ApiContext) => new AttachedFiles(bootConfigs(ctx), SLOTS);

/** What is wrong with a boot config: missing files, dangling references, missing kickstart. */
export async function bootConfigProblems(ctx: ApiContext, record: Record<string, unknown> & { uid: string }): Promise<string[]> {
  const problems: string[] = [];
  for (const slot of SLOTS) if (!files(ctx).manifest(ctx, record.uid, slot)) problems.push(`no ${slot}`);
  if (typeof record.image === 'string') {
    const image = objectStore(imageClass, ctx).collection.get(record.image);
    if (!image) problems.push(`image ${record.image} does not exist`);
    else if (!chunkStoreOf(ctx).stat(`image/${image.uid}/content`)) problems.push(`image ${image.name as string} has no content`);
  }
  if (typeof record.repo === 'string' && !objectStore(repoClass, ctx).collection.get(record.repo)) problems.push(`repo ${record.repo} does not exist`);
  if (typeof record.kickstart === 'string' && !(await kickstartExists(ctx.config.server.data_dir, record.kickstart).catch(() => false)))
    problems.push(`kickstart file ${record.kickstart} does not exist`);
  return problems;
}

/** The node a kickstart is rendered for: `?node=` (uid, name, MAC or IP; needs a token) or the caller's IP. */
async function kickstartNode(req: Request, ctx: ApiContext) {
  const collection = nodes(ctx.store);
  const named = req.query.get('node');
  if (named !== null) {
    // Naming another node reveals its data: only for authenticated callers.
    await authenticate(KICKSTART_FOR_NAMED_NODE, req, ctx);
    const uid = collection.get(named) ? named : (collection.lookup('name', named) ?? collection.lookup('mac', named.toLowerCase()) ?? collection.lookup('ip', named));
    const node = uid === undefined ? undefined : collection.get(uid);
    if (!node) throw notFound(`No node found for ID=${named}`);
    return node;
  }
  const uid = collection.lookup('ip', req.remoteAddress);
  const node = uid === undefined ? undefined : collection.get(uid);
  if (!node) throw notFound(`No node has the caller's address ${req.remoteAddress}; name one with ?node=`);
  return node;
}

/** The access rule for `?node=`: the kickstart route as if it required role.authuser. */
const KICKSTART_FOR_NAMED_NODE: Route = {
  method: 'GET', path: '/bootconfig/:id/kickstart?node=', access: 'role.authuser', summary: 'kickstart for a named node', handler: () => undefined,
};

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
  for (const slot of SLOTS) {
    const reader = chunkStoreOf(ctx).open(files(ctx).id(record.uid, slot));
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
  const chunks = chunkStoreOf(ctx);
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
      } else if ((SLOTS as readonly string[]).includes(member.name) && !staged.has(member.name)) {
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
    validateBody(bootConfigs(ctx).fields, record, true);
    const name = record.name as string;
    if (name === '' || /^[0-9a-f]{32}$/.test(name)) throw badRequest(`Field 'name' must be non-empty and not look like a UID`);
    return await ctx.store.write(req.principal!.name, (tx) => {
      const stored = tx.put(bootConfigs(ctx).collection, { boot_style: 'rwram', ...record });
      for (const [slot, file] of staged) chunks.linkInTx(files(ctx).id(stored.uid, slot), file);
      return stored.uid;
    });
  } catch (err) {
    if (err instanceof StoreConflict) throw badRequest(`${err.message} Import it under another name with ?name=`);
    throw err;
  } finally {
    for (const file of staged.values()) file.release();
  }
}

export const bootConfigRoutes: Route[] = [
  ...recordRoutes(bootConfigClass, SLOTS, [{ field: 'image', cls: imageClass }, { field: 'repo', cls: repoClass }]),
  ...fileRoutes(bootConfigClass, 'kernel', 'kernel'),
  ...fileRoutes(bootConfigClass, 'initramfs', 'initramfs'),
  {
    method: 'GET', path: '/bootconfig/:id/kickstart', access: 'public',
    summary: 'The boot config\'s kickstart rendered for a node: ?node= (needs a token) or the caller\'s IP',
    handler: async (req, ctx) => {
      const record = bootConfigs(ctx).resolve(req.params.id!);
      if (typeof record.kickstart !== 'string') throw notFound(`Boot config ${req.params.id} has no kickstart`);
      const node = await kickstartNode(req, ctx);
      const { text, mtime } = await readKickstart(ctx.config.server.data_dir, record.kickstart);
      const rendered = renderKickstart(text, nodeVariables(ctx.store, node, objectStore(nodeClass, ctx).view(node)));
      return new FileReply(bufferContent(Buffer.from(rendered, 'utf8'), mtime), { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    },
  },
  {
    method: 'GET', path: '/bootconfig/:id/errors', access: 'role.authuser', summary: 'Check the boot config: files present, references valid',
    handler: async (req, ctx) => {
      const record = bootConfigs(ctx).resolve(req.params.id!);
      const problems = await bootConfigProblems(ctx, record);
      if (problems.length > 0) throw badRequest(`Boot config ${record.name as string}: ${problems.join('; ')}`);
    },
  },
  {
    method: 'GET', path: '/bootconfigs/errors', access: 'role.authuser', summary: 'Check every boot config',
    handler: async (_req, ctx) => {
      const reasons: string[] = [];
      for (const record of bootConfigs(ctx).collection.list()) {
        const problems = await bootConfigProblems(ctx, record);
        if (problems.length > 0) reasons.push(`Boot config ${record.name as string}: ${problems.join('; ')}`);
      }
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
