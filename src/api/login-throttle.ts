// Backoff for password logins (POST /login): failures are counted per user name and per source
// address. Past a few free attempts, each further attempt has to wait — one second, doubling with
// every failure up to a cap — and is refused (429, Retry-After) before any password is checked.
// Made once per head by the composition root and handed to the login route in the ApiContext.
//
// Never a permanent lockout of the real admin: a wait is capped (a minute per user name); a source
// address a user has logged in from is not held back by that user's failures elsewhere (only by its
// own); counters are forgotten FORGET_AFTER_MS after the last failure; and the one-time secret of the
// local login socket is not throttled at all (it cannot be guessed and costs no scrypt).

interface Backoff {
  /** Failures so far (forgotten FORGET_AFTER_MS after the last one). */
  failures: number;
  /** Epoch ms of the last failure. */
  last: number;
}

interface BackoffRule {
  /** Failures allowed before attempts have to wait. */
  freeFailures: number;
  /** Longest wait, seconds. */
  maxDelaySeconds: number;
}

/** One user name, whichever address the attempts come from. */
const PER_USER: BackoffRule = { freeFailures: 5, maxDelaySeconds: 60 };
/** One source address, whichever user names it tries. */
const PER_SOURCE: BackoffRule = { freeFailures: 10, maxDelaySeconds: 900 };
/** Failures older than this (after the last one) are forgotten. */
const FORGET_AFTER_MS = 15 * 60_000;
/** How long a source address stays known for a user after a successful login from it. */
const KNOWN_SOURCE_MS = 30 * 24 * 3600_000;
/** Entries kept per table; the least recently changed go first (a flood of names cannot grow memory). */
const MAX_ENTRIES = 10_000;
/** Admin names have at most 64 characters (src/model/classes/admin.ts): a longer one is counted under its first 64. */
const userKey = (user: string) => user.slice(0, 64);

export class LoginThrottle {
  private readonly users = new Map<string, Backoff>();
  private readonly sources = new Map<string, Backoff>();
  /** `<user>\n<source>` → epoch ms until which the source is known for the user. */
  private readonly knownSources = new Map<string, number>();

  /** `clock`: epoch milliseconds (tests move it). */
  constructor(private readonly clock: () => number) {}

  /** Seconds `user` from `source` has to wait before a password may be checked; 0 = go ahead. */
  wait(user: string, source: string): number {
    const now = this.clock();
    const bySource = waitFor(this.sources.get(source), PER_SOURCE, now);
    const known = (this.knownSources.get(`${userKey(user)}\n${source}`) ?? 0) > now;
    const byUser = known ? 0 : waitFor(this.users.get(userKey(user)), PER_USER, now);
    return Math.max(bySource, byUser);
  }

  failed(user: string, source: string): void {
    const now = this.clock();
    count(this.users, userKey(user), now);
    count(this.sources, source, now);
  }

  /** A good password: the source's failures are forgiven and the source is known for the user from now on. */
  succeeded(user: string, source: string): void {
    this.sources.delete(source);
    remember(this.knownSources, `${userKey(user)}\n${source}`, this.clock() + KNOWN_SOURCE_MS);
  }
}

function waitFor(backoff: Backoff | undefined, rule: BackoffRule, now: number): number {
  if (!backoff || now - backoff.last > FORGET_AFTER_MS || backoff.failures < rule.freeFailures) return 0;
  const delaySeconds = Math.min(rule.maxDelaySeconds, 2 ** (backoff.failures - rule.freeFailures));
  return Math.max(0, Math.ceil((backoff.last + delaySeconds * 1000 - now) / 1000));
}

function count(table: Map<string, Backoff>, key: string, now: number): void {
  const previous = table.get(key);
  const failures = previous && now - previous.last <= FORGET_AFTER_MS ? previous.failures + 1 : 1;
  remember(table, key, { failures, last: now });
}

/** Set `key` as the newest entry of `table`, dropping the oldest beyond MAX_ENTRIES. */
function remember<V>(table: Map<string, V>, key: string, value: V): void {
  table.delete(key);
  table.set(key, value);
  if (table.size > MAX_ENTRIES) table.delete(table.keys().next().value!);
}
