// Spec 000's client package downloads (docs/install.md): GET /install/client/download lists the
// client packages directory; GET /install/client/download[/<PKGTYPE>[/<PKGARCH>]]/<PKGNAME> (or
// ?pkg=&arch=) sends one, converting an RPM to a TAR when a TAR is asked for and none is there.
// Public: nodes being installed hold no token.
import { DEFAULT_ARCH, DEFAULT_TYPE, packageArch, PackageRequestError, packageType, type PackageRequest } from '../../clientpkgs/directory.js';
import { PackageError } from '../../clientpkgs/rpm.js';
import { badRequest, HttpError, notFound } from '../../http/errors.js';
import { FileReply } from '../../http/file-reply.js';
import type { ApiContext } from '../context.js';
import type { Request, Route } from '../route.js';
import { diskFileContent } from './boot-time.js';

const CONTENT_TYPES = { rpm: 'application/x-rpm', deb: 'application/vnd.debian.binary-package', tar: 'application/gzip' } as const;

function request(req: Request): PackageRequest {
  // The router wants one parameter name per position: the last segment is the name, before it type, then architecture.
  const segments = [req.params.first, req.params.second, req.params.third].filter((segment) => segment !== undefined);
  const name = segments.at(-1);
  const type = segments.length >= 2 ? segments[0] : undefined;
  const arch = segments.length === 3 ? segments[1] : undefined;
  try {
    return {
      name: name!,
      // Spec 000: a type or architecture in the path wins; else ?pkg= and ?arch=; else tar on x86_64 (docs/spec-decisions.md).
      type: packageType(type ?? req.query.get('pkg') ?? DEFAULT_TYPE),
      arch: packageArch(arch ?? req.query.get('arch') ?? DEFAULT_ARCH),
    };
  } catch (err) {
    if (err instanceof PackageRequestError) throw badRequest(err.message);
    throw err;
  }
}

async function download(req: Request, ctx: ApiContext): Promise<FileReply> {
  let found;
  try {
    found = await ctx.clientPackages.find(request(req));
  } catch (err) {
    if (err instanceof PackageRequestError) throw err.kind === 'not-found' ? notFound(err.message) : badRequest(err.message);
    // A package in the directory that keel cannot convert: the request was fine, the stored RPM is not.
    if (err instanceof PackageError) throw new HttpError(422, `Cannot convert ${req.path.slice(req.path.lastIndexOf('/') + 1)} to a TAR: ${err.message}`);
    throw err;
  }
  return new FileReply(diskFileContent(found.path), {
    'Content-Type': CONTENT_TYPES[found.type],
    'Content-Disposition': `attachment; filename="${found.file}"`,
    'Cache-Control': 'no-cache',
  });
}

const downloadSummary = 'Download a client package (?pkg=, ?arch= when not in the path; default tar, x86_64); a TAR may be converted from an RPM';

export const clientPackageRoutes: Route[] = [
  {
    method: 'GET', path: '/install/client/download', access: 'public', summary: 'Every client package by type (tar, rpm, deb) with its size',
    handler: (_req, ctx) => ctx.clientPackages.list(),
  },
  { method: 'GET', path: '/install/client/download/:first', access: 'public', summary: downloadSummary, handler: download },
  { method: 'GET', path: '/install/client/download/:first/:second', access: 'public', summary: downloadSummary, handler: download },
  { method: 'GET', path: '/install/client/download/:first/:second/:third', access: 'public', summary: downloadSummary, handler: download },
];
