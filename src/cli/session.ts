// The CLI's sessions with heads (`keel login`, then every client command): which head to talk to,
// and the access and refresh tokens kept per head in the user's config directory
// ($XDG_CONFIG_HOME/keel/cli.json, else ~/.config/keel/cli.json; directory 0700, file 0600, written
// atomically). An access token the head refuses (expired, 401) is traded once for new tokens with
// the refresh token (GET /newtoken), stored, and the call repeated. docs/cli.md, "Login and tokens".
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig, type KeelConfig } from '../config.js';
import { writeFileDurably } from '../durable-file.js';
import { ApiClient, ApiError, apiBase, PASSWORD_ENV, readLoginPassword } from './client.js';

/** Environment variable naming the head when --url is not given. */
export const URL_ENV = 'KEEL_URL';
/** Environment variable naming the admin a command logs in as when no token is stored (with $KEEL_PASSWORD). */
export const USER_ENV = 'KEEL_USER';

export interface StoredTokens {
  user: string;
  access_token: string;
  refresh_token: string;
}

interface CliFile {
  /** The head of the last `keel login`: what commands talk to without --url or $KEEL_URL. */
  default_url?: string;
  /** Tokens by API base URL (`http://host:port/api/v1`). */
  heads: Record<string, StoredTokens>;
}

/** $XDG_CONFIG_HOME/keel, else ~/.config/keel. */
export function cliConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.config'), 'keel');
}

/** The CLI's file of heads and tokens. Readers get an empty file when there is none. */
export class TokenFile {
  readonly path: string;

  constructor(dir: string = cliConfigDir()) {
    this.path = join(dir, 'cli.json');
  }

  read(): CliFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { heads: {} };
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as CliFile;
      return { ...parsed, heads: parsed.heads ?? {} };
    } catch {
      throw new Error(`${this.path}: not valid JSON; delete it and run keel login`);
    }
  }

  /** Written to a temporary file (0600 from its creation) and renamed: never a half-written or readable-by-others file. */
  write(contents: CliFile): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileDurably(this.path, `${JSON.stringify(contents, null, 2)}\n`, 0o600);
  }

  update(change: (contents: CliFile) => void): void {
    const contents = this.read();
    change(contents);
    this.write(contents);
  }
}

/** The head a command talks to: --url, else $KEEL_URL, else the last login's, else this host's keel as configured. */
export function headBase(url: string | undefined, file: TokenFile): string {
  const given = url ?? process.env[URL_ENV] ?? file.read().default_url;
  if (given === undefined) return apiBase(loadConfig(), undefined);
  // apiBase reads the config only when no URL is given: no keel.toml is needed to reach a named head.
  return apiBase(undefined as unknown as KeelConfig, given);
}

/** Network failures of fetch say only "fetch failed": name the head and the cause. */
async function reaching<T>(base: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof TypeError && err.message === 'fetch failed') {
      throw new Error(`Cannot reach keel at ${base}: ${(err as { cause?: Error }).cause?.message ?? err.message}`);
    }
    throw err;
  }
}

/** An authenticated session with one head that refreshes its access token when the head refuses it. */
export class Session {
  private constructor(
    private client: ApiClient,
    /** Undefined for a session logged in for this command only ($KEEL_PASSWORD): nothing to store or refresh. */
    private readonly file: TokenFile | undefined,
  ) {}

  get base(): string {
    return this.client.base;
  }

  /**
   * The session for `base`: its stored tokens, else (no login stored) a login for this command only
   * as $KEEL_USER (default admin) with $KEEL_PASSWORD, else an error saying to log in.
   */
  static async open(base: string, file: TokenFile): Promise<Session> {
    const stored = file.read().heads[base];
    if (stored !== undefined) return new Session(new ApiClient(base, stored.access_token, stored.refresh_token), file);
    if (process.env[PASSWORD_ENV]) {
      const user = process.env[USER_ENV] ?? 'admin';
      return new Session(await ApiClient.login(base, user, await readLoginPassword()), undefined);
    }
    throw new Error(`Not logged in to ${base.replace(/\/api\/v1$/, '')}: run keel login --url ${base.replace(/\/api\/v1$/, '')}`);
  }

  /** A JSON call (ApiClient.call), with one refresh and retry when the access token is refused. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    try {
      return await reaching(this.base, () => this.client.call(method, path, body));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401) || !(await this.refresh())) throw err;
      return reaching(this.base, () => this.client.call(method, path, body));
    }
  }

  /**
   * The client with an access token the head accepts right now (checked with GET /whoami, refreshed
   * if need be): for uploads, streams and the WebSocket, which are not retried once started.
   */
  async fresh(): Promise<ApiClient> {
    await this.call('GET', '/whoami');
    return this.client;
  }

  /** New tokens for the refresh token, stored; false when this session has none to refresh with. */
  private async refresh(): Promise<boolean> {
    const { file, client } = this;
    if (file === undefined || client.refreshToken === undefined) return false;
    let data: { token: { access_token: string; refresh_token: string } };
    try {
      data = (await reaching(this.base, () => new ApiClient(client.base, client.refreshToken!).call('GET', '/newtoken'))) as typeof data;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        throw new Error(`Session with ${client.base.replace(/\/api\/v1$/, '')} expired (${err.message}): run keel login`);
      }
      throw err;
    }
    this.client = new ApiClient(client.base, data.token.access_token, data.token.refresh_token);
    file.update((contents) => {
      const previous = contents.heads[client.base];
      contents.heads[client.base] = { user: previous?.user ?? '', access_token: data.token.access_token, refresh_token: data.token.refresh_token };
    });
    return true;
  }
}

/**
 * For `image import` and `bootconfig create` (src/cli.ts): the stored tokens of `base`, checked and
 * refreshed, else a login as `user` with $KEEL_PASSWORD or stdin, for this command only.
 */
export async function storedOrLogin(base: string, user: string): Promise<ApiClient> {
  const file = new TokenFile();
  if (file.read().heads[base] !== undefined) return (await Session.open(base, file)).fresh();
  return ApiClient.login(base, user, await readLoginPassword());
}

/** The password for `keel login`: $KEEL_PASSWORD, else stdin when it is not a terminal, else a prompt without echo. */
export async function loginPassword(user: string, base: string): Promise<string> {
  if (process.env[PASSWORD_ENV] || !process.stdin.isTTY) return readLoginPassword();
  return promptHidden(`Password for ${user} at ${base.replace(/\/api\/v1$/, '')}: `);
}

/** Reads a line from the terminal in raw mode, echoing nothing; Ctrl-C or Ctrl-D gives up. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003' || char === '\u0004') return done(new Error('Login cancelled'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.on('data', onData);
  });
}
