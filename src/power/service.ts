// Power control for sets of nodes: resolves each node's target, runs IPMI in batches (plan.ts) and
// Redfish per node, both with bounded concurrency, and returns one result per node. A node whose
// BMC does not answer gets `unknown` with the reason after its own timeout; it never fails the
// request or delays nodes in other batches.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store, StoredRecord } from '../store/store.js';
import { FreeIpmi, type BootDevice, type PowerAction } from './ipmi.js';
import { MAX_HOSTS_PER_BATCH, planIpmiBatches } from './plan.js';
import { RedfishClient } from './redfish.js';
import type { PowerStep } from './steps.js';
import { resolveTarget, type IpmiTarget, type PowerTarget, type RedfishTarget } from './target.js';

export type PowerStateName = 'on' | 'off' | 'unknown';

export interface NodePowerState {
  uid: string;
  name: string;
  state: PowerStateName;
  reason?: string;
}

export interface NodePowerResult extends NodePowerState {
  /** Whether every step that ran for the node succeeded. */
  ok: boolean;
}

export interface PowerLimits {
  /** FreeIPMI processes at once. */
  ipmiProcesses: number;
  /**
   * Hosts per ipmipower process: with ipmiProcesses, bounds the IPMI sessions in flight. Measured
   * (bench/power, 1,000 ipmi_sim BMCs on 2 cores): with ~1,000 sessions in flight 18% timed out.
   */
  ipmiHostsPerProcess: number;
  /** Redfish nodes at once. */
  redfishNodes: number;
  /** Poll interval of `wait` steps. */
  pollMs: number;
}

/** 8 × 32 = 256 IPMI sessions in flight at most; small batches so that one slow host holds up few others. */
export const DEFAULT_LIMITS: PowerLimits = { ipmiProcesses: 8, ipmiHostsPerProcess: 32, redfishNodes: 32, pollMs: 1000 };

/** ipmipower's messages for a host whose session did not come up, or stopped answering, in time. */
const TIMEOUTS = new Set(['connection timeout', 'session timeout']);

/** The node has no usable power_uri (a request error, not a BMC failure). */
export class NoPowerTarget extends Error {}

type Outcome = { ok: true; state?: 'on' | 'off' } | { ok: false; reason: string };

/** Run `work` over `items` with at most `limit` at once. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class PowerService {
  private readonly ipmi: FreeIpmi;
  private readonly redfishClients = new Map<string, RedfishClient>();

  constructor(
    private readonly store: Store,
    runtimeDir: string,
    private readonly log: Logger,
    private readonly limits: PowerLimits = DEFAULT_LIMITS,
  ) {
    this.ipmi = new FreeIpmi(runtimeDir);
  }

  private redfish(target: RedfishTarget): RedfishClient {
    const o = target.options;
    const key = JSON.stringify([target.baseUrl, target.username, target.password, target.systemId ?? null, o.tls, o.timeoutMs, o.quirks ?? null]);
    let client = this.redfishClients.get(key);
    if (!client) {
      client = new RedfishClient(target);
      this.redfishClients.set(key, client);
    }
    return client;
  }

  /** One outcome per target: a status query (`stat`) or an action. */
  private async run(targets: readonly PowerTarget[], action: PowerAction | 'stat'): Promise<Map<string, Outcome>> {
    const outcomes = new Map<string, Outcome>();
    const ipmiTargets = targets.filter((t): t is IpmiTarget => t.kind === 'ipmi');
    const redfishTargets = targets.filter((t): t is RedfishTarget => t.kind === 'redfish');
    await Promise.all([
      mapLimited(planIpmiBatches(ipmiTargets, Math.min(MAX_HOSTS_PER_BATCH, this.limits.ipmiHostsPerProcess)), this.limits.ipmiProcesses, async (batch) => {
        const byHost = await this.ipmi.power(batch, action);
        // A status query is asked once more of hosts whose session timed out (measured: a loaded
        // BMC or host loses the odd session); actions are never repeated.
        const retry = action === 'stat' ? batch.hosts.filter((host) => TIMEOUTS.has(byHost.get(host)?.reason ?? '')) : [];
        if (retry.length > 0) {
          this.log.warn({ hosts: retry.length, batch: batch.hosts.length }, 'ipmi status: asking timed-out hosts again');
          for (const [host, outcome] of await this.ipmi.power({ ...batch, hosts: retry }, action)) byHost.set(host, outcome);
        }
        for (const [host, sharing] of batch.targetsByHost) {
          const outcome = byHost.get(host)!;
          for (const target of sharing) outcomes.set(target.uid, outcome.ok ? { ok: true, state: outcome.state } : { ok: false, reason: outcome.reason ?? 'failed' });
        }
      }),
      mapLimited(redfishTargets, this.limits.redfishNodes, async (target) => {
        try {
          const client = this.redfish(target);
          if (action === 'stat') {
            const state = await client.powerState();
            outcomes.set(target.uid, typeof state === 'string' ? { ok: true, state } : { ok: false, reason: state.unknown });
          } else {
            await client.reset(action);
            outcomes.set(target.uid, { ok: true });
          }
        } catch (err) {
          outcomes.set(target.uid, { ok: false, reason: (err as Error).message });
        }
      }),
    ]);
    return outcomes;
  }

  private resolve(nodes: readonly StoredRecord[]): { targets: PowerTarget[]; unresolved: NodePowerResult[] } {
    const targets: PowerTarget[] = [];
    const unresolved: NodePowerResult[] = [];
    for (const node of nodes) {
      const target = resolveTarget(this.store, node);
      if (target.kind === 'none') unresolved.push({ uid: target.uid, name: target.name, state: 'unknown', reason: target.reason, ok: false });
      else targets.push(target);
    }
    return { targets, unresolved };
  }

  /** The power state of each node, in the order given. */
  async status(nodes: readonly StoredRecord[]): Promise<NodePowerState[]> {
    const { targets, unresolved } = this.resolve(nodes);
    const outcomes = await this.run(targets, 'stat');
    const byUid = new Map<string, NodePowerState>(unresolved.map(({ ok: _ok, ...rest }) => [rest.uid, rest]));
    for (const target of targets) {
      const outcome = outcomes.get(target.uid)!;
      byUid.set(target.uid, outcome.ok && outcome.state
        ? { uid: target.uid, name: target.name, state: outcome.state }
        : { uid: target.uid, name: target.name, state: 'unknown', reason: outcome.ok ? 'no state reported' : outcome.reason });
    }
    return nodes.map((node) => byUid.get(node.uid)!);
  }

  /** Run the steps for every node (in lockstep, so each step is batched), then read the state back. */
  async apply(nodes: readonly StoredRecord[], steps: readonly PowerStep[]): Promise<NodePowerResult[]> {
    const { targets, unresolved } = this.resolve(nodes);
    const failed = new Map<string, string>();
    let pending = targets;
    let aim: 'on' | 'off' = 'on';
    for (const [index, step] of steps.entries()) {
      if (pending.length === 0) break;
      if ('action' in step) {
        aim = step.action === 'off' || step.action === 'soft' ? 'off' : 'on';
        const outcomes = await this.run(pending, step.action);
        for (const target of pending) {
          const outcome = outcomes.get(target.uid)!;
          if (!outcome.ok) failed.set(target.uid, `${step.action}: ${outcome.reason}`);
        }
        pending = pending.filter((t) => !failed.has(t.uid));
      } else {
        const start = Date.now();
        const deadline = (t: PowerTarget) => start + 1000 * (step.wait === 'soft' ? t.softWaitS : step.wait);
        const isLast = index === steps.length - 1;
        for (;;) {
          const outcomes = await this.run(pending, 'stat');
          // A node that reached the aim is done: the remaining steps are its fallback, not needed.
          pending = pending.filter((t) => {
            const outcome = outcomes.get(t.uid)!;
            return !(outcome.ok && outcome.state === aim);
          });
          const waiting = pending.filter((t) => Date.now() < deadline(t));
          if (waiting.length === 0) break;
          await sleep(Math.min(this.limits.pollMs, Math.max(0, Math.min(...waiting.map(deadline)) - Date.now())));
        }
        if (isLast) for (const target of pending) failed.set(target.uid, `still not ${aim} after waiting`);
      }
    }
    this.log.info({ nodes: nodes.length, steps: steps.map((s) => ('action' in s ? s.action : `wait ${s.wait}`)), failed: failed.size }, 'power request');
    const states = await this.status(targets.map((t) => nodes.find((n) => n.uid === t.uid)!));
    const byUid = new Map<string, NodePowerResult>(unresolved.map((r) => [r.uid, r]));
    for (const state of states) {
      const reason = failed.get(state.uid);
      byUid.set(state.uid, reason === undefined ? { ...state, ok: true } : { ...state, ok: false, reason });
    }
    return nodes.map((node) => byUid.get(node.uid)!);
  }

  async setBootDevice(node: StoredRecord, device: BootDevice): Promise<string> {
    const target = this.target(node);
    if (target.kind === 'ipmi') {
      await this.ipmi.setBootDevice(target, device);
      // Read back: some BMCs accept the write and keep the old value.
      const read = await this.ipmi.getBootDevice(target);
      if (read !== device) throw new Error(`BMC did not keep boot device ${device} (reads back ${read})`);
      return read;
    }
    await this.redfish(target).setBootDevice(device);
    return this.redfish(target).getBootDevice();
  }

  async getBootDevice(node: StoredRecord): Promise<string> {
    const target = this.target(node);
    return target.kind === 'ipmi' ? this.ipmi.getBootDevice(target) : this.redfish(target).getBootDevice();
  }

  private target(node: StoredRecord): PowerTarget {
    const target = resolveTarget(this.store, node);
    if (target.kind === 'none') throw new NoPowerTarget(target.reason);
    return target;
  }

  /** Delete Redfish sessions and the credential files. */
  async close(): Promise<void> {
    await Promise.all([...this.redfishClients.values()].map((c) => c.close()));
    this.redfishClients.clear();
    this.ipmi.close();
  }
}

/** The runtime directory of power control under the data directory (0700, like the data directory). */
export const powerRuntimeDir = (dataDir: string) => join(dataDir, 'run', 'power');
