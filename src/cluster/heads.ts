// The heads of a multi-head keel (docs/multihead.md, "Heads"): each head's registration
// (`head/<uid>`, spec 003's fields plus where to reach it) stays in etcd until removed; its liveness
// is a second key (`alive/<uid>`) bound to an etcd lease the head keeps alive. A head that dies
// stops renewing, etcd deletes the key when the lease's TTL runs out, and the head is "down":
// registered, not alive. GET /heads/down lists those; DELETE /heads/down removes their registrations.
import type { Etcd3, IKeyValue, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { aliveKey, headKey, prefixRangeEnd } from './keys.js';

/** Spec 003's head fields, and where this head's etcd member and API are. */
export interface HeadRecord {
  uid: string;
  ssh_public: string;
  description?: string;
  ca_pem?: string;
  /** The head's etcd member's peer URL (`GET /head/peerurl`). */
  peer_url: string;
  /** Base URL of the head's API, for calls between heads. */
  api_url?: string;
}

/** Default TTL of a head's liveness lease: a dead head shows as down this long after it stopped. */
export const DEFAULT_HEAD_TTL_SECONDS = 10;
const REJOIN_DELAY_MS = 1_000;

export class HeadRegistry {
  private lease: Lease | undefined;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  /**
   * Registers this head and keeps it alive until `leave` or `stop`: a lease of `ttlSeconds` that
   * etcd3 renews at a third of its TTL; when it is lost anyway (etcd unreachable past the TTL) the
   * head joins again with a new lease.
   */
  async join(head: HeadRecord, ttlSeconds = DEFAULT_HEAD_TTL_SECONDS): Promise<void> {
    await this.client.put(headKey(this.prefix, head.uid)).value(JSON.stringify(head));
    const lease = this.client.lease(ttlSeconds);
    this.lease = lease;
    lease.on('lost', (err) => {
      if (this.closed || this.lease !== lease) return;
      this.log.warn({ err, head: head.uid }, 'head liveness lease lost: joining again');
      setTimeout(() => {
        if (!this.closed && this.lease === lease) this.join(head, ttlSeconds).catch(() => {}); // a failure fires 'lost' again
      }, REJOIN_DELAY_MS);
    });
    await lease.put(aliveKey(this.prefix, head.uid)).value('');
  }

  /** Stops keeping this head alive without telling etcd: it shows as down once the TTL runs out (as after a crash). */
  stop(): void {
    this.closed = true;
    this.lease?.release();
  }

  /** Leaves on purpose: the liveness key goes at once (the registration stays, listed as down). */
  async leave(): Promise<void> {
    this.closed = true;
    await this.lease?.revoke();
  }

  /** Registered heads, and which of them are alive, read at one revision. */
  async heads(): Promise<{ head: HeadRecord; alive: boolean; revision: number }[]> {
    const [heads, alive] = await this.readAtOnce([headKey(this.prefix, ''), aliveKey(this.prefix, '')]);
    const aliveUids = new Set(alive!.map((kv) => kv.key.toString('utf8').slice(aliveKey(this.prefix, '').length)));
    return heads!.map((kv) => {
      const head = JSON.parse(kv.value.toString('utf8')) as HeadRecord;
      return { head, alive: aliveUids.has(head.uid), revision: Number(kv.mod_revision) };
    });
  }

  /** `GET /heads/down`: registered heads that are not alive. */
  async down(): Promise<HeadRecord[]> {
    return (await this.heads()).filter((h) => !h.alive).map((h) => h.head);
  }

  /**
   * `DELETE /heads/down`: removes the registration of every head that is down, each in a
   * transaction comparing that it is still down and unchanged (a head that came back in between
   * keeps its registration); returns the heads removed.
   */
  async removeDown(): Promise<HeadRecord[]> {
    const removed: HeadRecord[] = [];
    for (const { head, alive, revision } of await this.heads()) {
      if (alive) continue;
      const result = await this.client.kv.txn({
        compare: [
          { key: Buffer.from(aliveKey(this.prefix, head.uid)), target: 'Create', result: 'Equal', create_revision: 0 },
          { key: Buffer.from(headKey(this.prefix, head.uid)), target: 'Mod', result: 'Equal', mod_revision: revision },
        ],
        success: [{ request_delete_range: { key: Buffer.from(headKey(this.prefix, head.uid)) } }],
        failure: [],
      });
      if (result.succeeded) removed.push(head);
    }
    return removed;
  }

  /** The keys under each prefix, all read in one transaction (so at one revision). */
  private async readAtOnce(prefixes: string[]): Promise<IKeyValue[][]> {
    const result = await this.client.kv.txn({
      compare: [],
      success: prefixes.map((prefix) => ({ request_range: { key: Buffer.from(prefix), range_end: prefixRangeEnd(Buffer.from(prefix)) } })),
      failure: [],
    });
    return result.responses.map((response) => response.response_range?.kvs ?? []);
  }
}
