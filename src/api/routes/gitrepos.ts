// Gitrepo routes (spec 001, Git Repository Objects; the class is src/model/classes/gitrepo.ts, the
// git work src/git/): the standard routes, the clone URL, file and directory content, syncs with the
// remote, branches, and git's smart HTTP protocol under /git/<name> (clone, fetch, push).
import { extname } from 'node:path';
import { GIT_HTTP_PATHS, gitHttpBackend, type GitHttpPath } from '../../git/http-backend.js';
import { UPSTREAM_REFS } from '../../git/repos.js';
import { SYNC_ACTIONS, type SyncAction } from '../../git/sync.js';
import { HttpError, badRequest } from '../../http/errors.js';
import { FileReply, bufferContent, textReply } from '../../http/file-reply.js';
import { StreamReply } from '../../http/stream-reply.js';
import { branchMapProblem, gitRepoClass, isBranchName } from '../../model/classes/gitrepo.js';
import type { StoredRecord } from '../../store/store.js';
import { authenticate } from '../auth.js';
import type { ApiContext } from '../context.js';
import { objectRoutes } from '../object-routes.js';
import type { Principal, Request, Route } from '../route.js';

/** Where git's smart HTTP protocol is served, under /api/v1: `<prefix>/<name>` is a clone URL. */
export const GIT_HTTP_PATH = '/git';

/** Content types of the files a configuration repository usually holds; others are told apart by their bytes. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.json': 'application/json', '.ign': 'application/json', '.yaml': 'application/yaml', '.yml': 'application/yaml',
  '.xml': 'application/xml', '.html': 'text/html; charset=utf-8', '.tar': 'application/x-tar', '.gz': 'application/gzip',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.pdf': 'application/pdf',
};

const gitRepos = (ctx: ApiContext) => ctx.model.gitRepos;

function contentType(path: string, bytes: Buffer): string {
  const known = CONTENT_TYPES[extname(path).toLowerCase()];
  if (known) return known;
  // git's own test for a binary file: a NUL among the first 8000 bytes.
  return bytes.subarray(0, 8000).includes(0) ? 'application/octet-stream' : 'text/plain; charset=utf-8';
}

/**
 * Who may read or push gitrepo `record`. A public one is read by anyone. Otherwise a token is
 * needed, which git sends as the password of HTTP Basic (any user name) or a client sends as a
 * Bearer token; it is checked by the API's one authenticate() against the class's read or write
 * role. A 401 asks for Basic credentials, which is what makes git prompt or use its credential helper.
 */
async function gitRepoCaller(req: Request, ctx: ApiContext, record: StoredRecord, write: boolean): Promise<Principal | undefined> {
  if (!write && record.public === true) return undefined;
  const basic = /^Basic +(\S+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    req.headers.authorization = `Bearer ${decoded.slice(decoded.indexOf(':') + 1)}`;
  }
  const access = write ? gitRepoClass.writeAccess : gitRepoClass.readAccess;
  try {
    return await authenticate({ method: write ? 'POST' : 'GET', path: req.path, access }, req, ctx);
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) throw new HttpError(401, err.message, { 'WWW-Authenticate': 'Basic realm="keel gitrepo", charset="UTF-8"' });
    throw err;
  }
}

/** GET …/repo[/<PATH>] and …/content[/<PATH>]: the file's bytes, or a directory's names (directories end in `/`). */
async function content(req: Request, ctx: ApiContext): Promise<FileReply> {
  const record = gitRepos(ctx).resolve(req.params.id!);
  await gitRepoCaller(req, ctx, record, false);
  const path = req.params.path ?? '';
  const ref = req.query.get('ref') ?? undefined;
  const entry = await ctx.git.repos.read(record.uid, path, ref);
  const headers = { 'Cache-Control': 'no-cache', 'X-Git-Commit': entry.commit };
  if (entry.kind === 'file') return new FileReply(bufferContent(entry.bytes, Date.now() / 1000), { ...headers, 'Content-Type': contentType(path, entry.bytes) });
  const listing = entry.entries.map((e) => (e.directory ? `${e.name}/` : e.name)).join('\n');
  return new FileReply(bufferContent(Buffer.from(listing === '' ? '' : `${listing}\n`, 'utf8'), Date.now() / 1000), { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
}

/** Git's smart HTTP: info/refs (GET), git-upload-pack and git-receive-pack (POST, streamed both ways). */
async function smartHttp(req: Request, ctx: ApiContext, path: GitHttpPath): Promise<StreamReply> {
  const record = gitRepos(ctx).resolve(req.params.id!);
  const service = path === 'info/refs' ? req.query.get('service') : path;
  if (service !== 'git-upload-pack' && service !== 'git-receive-pack') throw badRequest(`Only git's smart HTTP protocol is served: ?service=git-upload-pack or git-receive-pack`);
  const caller = await gitRepoCaller(req, ctx, record, service === 'git-receive-pack');
  const dir = await ctx.git.repos.ensure(record.uid);
  const reply = await gitHttpBackend(dir, {
    method: path === 'info/refs' ? 'GET' : 'POST',
    path,
    query: path === 'info/refs' ? `service=${service}` : '',
    headers: req.headers,
    remoteUser: caller?.name,
    remoteAddress: req.remoteAddress,
    body: req.stream,
  });
  return new StreamReply(reply.status, { ...reply.headers, 'Cache-Control': 'no-cache' }, reply.body, reply.cancel);
}

/** The clone URL: the host the caller reached keel at, else the head's name and port. */
function cloneUrl(req: Request, ctx: ApiContext, record: StoredRecord): string {
  const host = req.headers.host ?? `${ctx.config.server.name}:${ctx.config.http.port}`;
  return `http://${host}/api/v1${GIT_HTTP_PATH}/${encodeURIComponent(record.name as string)}`;
}

function listParam(req: Request, name: string): string[] | undefined {
  const value = req.query.get(name);
  return value === null ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** A glob of `*` and `?` as a test. */
function globTest(glob: string): (name: string) => boolean {
  const pattern = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return (name) => pattern.test(name);
}

const SYNC_BODY = {
  action: { type: 'string', required: true, enum: SYNC_ACTIONS, summary: 'status, checkout, reset, pull or rebase' },
  branchmap: { type: 'string[]', summary: 'Instead of the gitrepo\'s branch_map: `local:remote` or `name` entries' },
} as const;

const DELETE_BRANCHES_BODY = {
  branches: { type: 'string[]', summary: 'Branches to delete' },
  all: { type: 'boolean', summary: 'Delete every branch' },
} as const;

export const gitRepoRoutes: Route[] = [
  ...objectRoutes(gitRepoClass),
  {
    method: 'GET', path: '/gitrepo/:id/url', access: 'public', summary: 'The URL to clone the gitrepo from (raw text, no envelope)',
    handler: (req, ctx) => textReply(cloneUrl(req, ctx, gitRepos(ctx).resolve(req.params.id!))),
  },
  ...(['repo', 'content'] as const).flatMap((segment): Route[] => [
    {
      method: 'GET', path: `/gitrepo/:id/${segment}`, access: 'public',
      summary: 'The top level of the default branch (?ref= another): one name per line, directories ending in / (raw; a token unless public)',
      handler: content,
    },
    {
      method: 'GET', path: `/gitrepo/:id/${segment}/*path`, access: 'public',
      summary: 'The file at PATH (raw bytes with a content type) or the directory\'s names, on the default branch or ?ref= (a token unless public)',
      handler: content,
    },
  ]),
  {
    method: 'GET', path: '/gitrepo/:id/sync', access: gitRepoClass.readAccess,
    summary: 'The last sync\'s result; ?action=status compares with the remote now (other actions change branches: POST)',
    handler: async (req, ctx) => {
      const action = req.query.get('action');
      if (action === null) return (await ctx.git.lastSync(req.params.id!)) ?? null;
      if (action !== 'status') throw badRequest(`GET /sync only takes action=status; ${action} changes branches: use POST`);
      return ctx.git.sync(req.params.id!, 'status', listParam(req, 'branchmap'));
    },
  },
  {
    method: 'POST', path: '/gitrepo/:id/sync', access: gitRepoClass.writeAccess, body: SYNC_BODY,
    summary: 'Sync with the remote now: {action: status|checkout|reset|pull|rebase, branchmap?}; the result per branch',
    handler: async (req, ctx) => {
      const { action, branchmap } = req.body as { action: SyncAction; branchmap?: string[] };
      const problem = branchmap && branchMapProblem(branchmap);
      if (problem) throw badRequest(`Field 'branchmap': ${problem}`);
      const result = await ctx.git.sync(req.params.id!, action, branchmap);
      if (!result.ok) throw badRequest(`Sync ${action} failed: ${result.reason}`);
      return result;
    },
  },
  {
    method: 'GET', path: '/gitrepo/:id/branches', access: gitRepoClass.readAccess,
    summary: 'Branches by name (commit, date, subject); ?branchmap=a,b only those, ?all=true also the remote\'s as last fetched (remote/<name>), ?filter=glob',
    handler: async (req, ctx) => {
      const record = gitRepos(ctx).resolve(req.params.id!);
      const wanted = listParam(req, 'branchmap');
      const filter = req.query.get('filter');
      const all = req.query.get('all');
      if (all !== null && all !== 'true' && all !== 'false') throw badRequest(`Query 'all' must be true or false`);
      const branches = await ctx.git.repos.branches(record.uid);
      if (all === 'true') {
        for (const [name, info] of Object.entries(await ctx.git.repos.branches(record.uid, UPSTREAM_REFS))) branches[`remote/${name}`] = info;
      }
      const keep = filter === null ? () => true : globTest(filter);
      return Object.fromEntries(Object.entries(branches).filter(([name]) => keep(name) && (!wanted || wanted.includes(name))));
    },
  },
  {
    method: 'DELETE', path: '/gitrepo/:id/branches', access: gitRepoClass.writeAccess, body: DELETE_BRANCHES_BODY,
    summary: 'Delete branches: {branches: [...]} or {all: true}; returns the names deleted',
    handler: async (req, ctx) => {
      const record = gitRepos(ctx).resolve(req.params.id!);
      const { branches, all } = (req.body ?? {}) as { branches?: string[]; all?: boolean };
      if ((branches === undefined) === (all !== true)) throw badRequest(`Send either 'branches' (a list) or 'all': true`);
      const bad = branches?.find((name) => !isBranchName(name));
      if (bad !== undefined) throw badRequest(`Malformed branch name '${bad}'`);
      const names = branches ?? Object.keys(await ctx.git.repos.branches(record.uid));
      return ctx.git.repos.deleteBranches(record.uid, names);
    },
  },
  ...GIT_HTTP_PATHS.map((path): Route => ({
    method: path === 'info/refs' ? 'GET' : 'POST',
    path: `${GIT_HTTP_PATH}/:id/${path}`,
    // The access check is the handler's: anonymous for reads of a public gitrepo, else a token.
    access: 'public',
    ...(path === 'info/refs' ? {} : { body: 'stream' as const }),
    summary: `Git smart HTTP (${path}): clone and fetch (a token unless public), push (${gitRepoClass.writeAccess})`,
    handler: (req, ctx) => smartHttp(req, ctx, path),
  })),
];

