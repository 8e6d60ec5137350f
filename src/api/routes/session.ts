// Login, token refresh and "who am I" (spec 001, Authentication).
import { badRequest, HttpError, unauthorized } from '../../http/errors.js';
import { tokenGeneration } from '../../model/classes/admin.js';
import { verifyPassword } from '../../model/passwords.js';
import type { StoredRecord } from '../../store/store.js';
import type { ApiContext } from '../context.js';
import type { Request, Route } from '../route.js';

interface Credentials {
  user: string;
  pass?: string;
  secret?: string;
}

async function checkCredentials(req: Request, ctx: ApiContext, body: Credentials): Promise<StoredRecord> {
  const admin = ctx.model.admins.find(body.user);
  if (body.secret !== undefined) {
    // One-time secret from the local socket: consumed even when the user does not match. Not
    // throttled: it cannot be guessed, and it is the way in that others' failures never block.
    if (!ctx.localLogin.redeem(body.secret, body.user) || !admin) throw unauthorized('Invalid or expired one-time secret');
    return admin;
  }
  const from = req.remoteAddress;
  const wait = ctx.loginThrottle.wait(body.user, from);
  if (wait > 0) {
    ctx.log.warn({ user: body.user, from, retryAfter: wait }, 'login refused: too many failed attempts');
    throw new HttpError(429, `Too many failed logins for this user or from this address; try again in ${wait} s`, { 'Retry-After': String(wait) });
  }
  // An unknown user costs the same scrypt as a wrong password, so response time does not reveal names.
  const ok = await verifyPassword(body.pass!, admin?.password_hash as string | undefined);
  if (!admin || !ok) {
    ctx.loginThrottle.failed(body.user, from);
    ctx.log.info({ user: body.user, from }, 'login failed');
    throw unauthorized('Invalid user name or password');
  }
  ctx.loginThrottle.succeeded(body.user, from);
  return admin;
}

export const sessionRoutes: Route[] = [
  {
    method: 'POST', path: '/login', access: 'public',
    summary: 'Log in with {user, pass} or with {user, secret} from the local socket; returns access and refresh tokens',
    body: {
      user: { type: 'string', required: true, summary: 'Admin name' },
      pass: { type: 'string', summary: 'Password' },
      secret: { type: 'string', summary: 'One-time secret from the local login socket' },
    },
    handler: async (req, ctx) => {
      const body = req.body as Credentials;
      if ((body.pass === undefined) === (body.secret === undefined)) throw badRequest(`Send exactly one of 'pass' or 'secret'`);
      const admin = await checkCredentials(req, ctx, body);
      const name = admin.name as string;
      return { user: name, token: await ctx.tokens.pair(admin.uid, name, tokenGeneration(admin)) };
    },
  },
  {
    method: 'GET', path: '/newtoken', access: 'refresh-token', summary: 'Trade a refresh token for new tokens',
    handler: async (req, ctx) => {
      const { uid, name } = req.principal!;
      return { authorized_by: name, userid: name, uid, token: await ctx.tokens.pair(uid, name, tokenGeneration(ctx.model.admins.resolve(uid))) };
    },
  },
  {
    method: 'GET', path: '/whoami', access: 'role.authuser', summary: 'The admin the token belongs to',
    handler: (req) => ({ user: req.principal!.name, uid: req.principal!.uid, roles: req.principal!.roles }),
  },
];
