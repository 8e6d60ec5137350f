// Access and refresh JWTs (HS256) signed with this head's secret. Tokens from another head or
// of the wrong kind are refused: a refresh token is good for GET /newtoken only.
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { unauthorized } from '../http/errors.js';

export type TokenKind = 'access' | 'refresh';

export interface TokenClaims {
  /** Admin uid. */
  sub: string;
  /** Admin name at issue time. */
  name: string;
  typ: TokenKind;
  /** The admin's token generation at issue time: a token of an earlier one is revoked. */
  gen: number;
  /** Expiry, epoch seconds. */
  exp: number;
}

export interface TokenPair {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

/** Verified tokens remembered, so a busy client's signature is checked once, not per request. */
const VERIFIED_CACHE_SIZE = 4096;

export class TokenService {
  private readonly key: Uint8Array;
  private readonly verified = new Map<string, { claims: TokenClaims; exp: number }>();

  constructor(
    secret: Uint8Array,
    private readonly issuer: string,
    private readonly ttl: { access: number; refresh: number },
    /** Epoch milliseconds; tests move it. */
    private readonly clock: () => number,
  ) {
    this.key = secret;
  }

  async issue(sub: string, name: string, generation: number, kind: TokenKind, ttlSeconds: number): Promise<string> {
    const now = Math.floor(this.clock() / 1000);
    return new SignJWT({ name, typ: kind, gen: generation })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuer(this.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(this.key);
  }

  async pair(sub: string, name: string, generation: number): Promise<TokenPair> {
    return {
      access_token: await this.issue(sub, name, generation, 'access', this.ttl.access),
      expires_in: this.ttl.access,
      refresh_token: await this.issue(sub, name, generation, 'refresh', this.ttl.refresh),
      refresh_expires_in: this.ttl.refresh,
    };
  }

  /**
   * Verify a bearer token of the given kind, or throw 401 with the reason. Whether its generation
   * is still the admin's is for the caller to check against the store (auth.ts), on every request,
   * so this cache never keeps a revoked token valid.
   */
  async verify(token: string, kind: TokenKind): Promise<TokenClaims> {
    const known = this.verified.get(token);
    // A cached token was verified in full before; only its lifetime and kind can change the answer.
    if (known && known.exp * 1000 > this.clock() && known.claims.typ === kind) return known.claims;
    const claims = await this.verifyFully(token, kind);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, exp: claims.exp });
    return claims;
  }

  private async verifyFully(token: string, kind: TokenKind): Promise<TokenClaims & { exp: number }> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        currentDate: new Date(this.clock()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthorized('Token has expired');
      throw unauthorized('Invalid token');
    }
    if (payload.typ !== kind) {
      throw unauthorized(kind === 'access' ? 'A refresh token can only be used to get a new token' : 'A refresh token is required here');
    }
    if (typeof payload.sub !== 'string' || typeof payload.name !== 'string' || typeof payload.exp !== 'number' || typeof payload.gen !== 'number') throw unauthorized('Invalid token');
    return { sub: payload.sub, name: payload.name, typ: kind, gen: payload.gen, exp: payload.exp };
  }
}
