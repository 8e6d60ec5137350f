// Login, token refresh and "who am I" (spec 001, Authentication).
import { badRequest, unauthorized } from '../../http/errors.js';
import { verifyPassword } from '../../model/passwords.js';
import type { ApiContext } from '../context.js';
import type { Route } from '../route.js';

async function checkCredentials(ctx: ApiContext, body: { user: string; pass?: string; secret?: string }) {
  const admin = ctx.model.admins.find(body.user);
  if (body.secret !== undefined) {
    // One-time secret from the local socket: consumed even when the user does not match.
    if (!ctx.localLogin.redeem(body.secret, body.user) || !admin) throw unauthorized('Invalid or expired one-time secret');
    return admin;
  }
  // Verify against a hash even for an unknown user, so response time does not reveal names.
  const ok = await verifyPassword(body.pass!, admin?.password_hash as string | undefined);
  if (!admin || !ok) throw unauthorized('Invalid user name or password');
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
      const body = req.body as { user: string; pass?: string; secret?: string };
      if ((body.pass === undefined) === (body.secret === undefined)) throw badRequest(`Send exactly one of 'pass' or 'secret'`);
      const admin = await checkCredentials(ctx, body);
      const name = admin.name as string;
      return { user: name, token: await ctx.tokens.pair(admin.uid, name) };
    },
  },
  {
    method: 'GET', path: '/newtoken', access: 'refresh-token', summary: 'Trade a refresh token for new tokens',
    handler: async (req, ctx) => {
      const { uid, name } = req.principal!;
      return { authorized_by: name, userid: name, uid, token: await ctx.tokens.pair(uid, name) };
    },
  },
  {
    method: 'GET', path: '/whoami', access: 'role.authuser', summary: 'The admin the token belongs to',
    handler: (req) => ({ user: req.principal!.name, uid: req.principal!.uid, roles: req.principal!.roles }),
  },
];
