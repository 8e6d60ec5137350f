// Power control for sets of nodes: resolves each node's target, runs IPMI in batches (plan.ts) and
// Redfish per node, both with bounded concurrency, and returns one result per node. A node whose
// BMC does not answer gets `unknown` with the reason after its own timeout; it never fails the
// request or delays nodes in other batches.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Invalid } from '../model/errors.js';
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

/**
 * What a power request did to a node: `done` (the BMC reports the aim of its last action),
 * `pending` (the BMC accepted the actions but did not report their aim within the node's
 * power_confirm_wait_s: `state` is what it reports, not the outcome) or `failed`.
 */
export type PowerOutcome = 'done' | 'pending' | 'failed';

export interface NodePowerResult extends NodePowerState {
  /** Whether the outcome is `done`. */
  ok: boolean;
  outcome: PowerOutcome;
  /** The BMC's address (no credentials), for a reason that names it. */
  bmc?: string;
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

/** A BMC that failed an operation: which BMC, which step, and the cause. */
export class BmcFailure extends Error {
  constructor(readonly bmc: string, step: string, cause: string) {
    super(`BMC ${bmc}: ${step}: ${cause}`);
  }
}

type Outcome = { ok: true; state?: 'on' | 'off' } | { ok: false; reason: string };

/** Where a target's BMC is, without credentials. */
const bmcAddress = (target: PowerTarget): string => (target.kind === 'ipmi' ? `${target.host}:${target.port}` : target.baseUrl);

const stepName = (step: PowerStep): string => ('action' in step ? step.action : `wait ${step.wait}`);

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
    const key = JSON.stringify([target.baseUrl, target.username, target.password, target.systemId ?? null, o.tls, o.timeoutMs, o.quirks]);
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
      if (target.kind === 'none') unresolved.push({ uid: target.uid, name: target.name, state: 'unknown', reason: target.reason, ok: false, outcome: 'failed' });
      else targets.push(target);
    }
    return { targets, unresolved };
  }

  /** The power state of each node, in the order given. */
  async status(nodes: readonly StoredRecord[]): Promise<NodePowerState[]> {
    const { targets, unresolved } = this.resolve(nodes);
    const outcomes = await this.run(targets, 'stat');
    const byUid = new Map<string, NodePowerState>(unresolved.map(({ uid, name, state, reason }) => [uid, { uid, name, state, reason }]));
    for (const target of targets) {
      const outcome = outcomes.get(target.uid)!;
      byUid.set(target.uid, outcome.ok && outcome.state
        ? { uid: target.uid, name: target.name, state: outcome.state }
        : { uid: target.uid, name: target.name, state: 'unknown', reason: outcome.ok ? 'no state reported' : outcome.reason });
    }
    return nodes.map((node) => byUid.get(node.uid)!);
  }

  /**
   * Run the steps for every node (in lockstep, so each step is batched). A request that ends with
   * an action then waits up to each node's power_confirm_wait_s for the BMC to report its aim:
   * BMCs apply actions seconds after accepting them, and the state read at once would be the old
   * one. The state answered is the last one read; a node whose BMC failed is not asked again (a
   * hung BMC costs its timeout once).
   */
  async apply(nodes: readonly StoredRecord[], steps: readonly PowerStep[]): Promise<NodePowerResult[]> {
    const { targets, unresolved } = this.resolve(nodes);
    const failed = new Map<string, string>();
    const pendingReason = new Map<string, string>();
    const lastState = new Map<string, 'on' | 'off'>();
    const lastError = new Map<string, string>();
    /** Nodes whose action failed but have a fallback after the next wait: they skip that wait. */
    const skipWait = new Set<string>();
    /** Why a node took its fallback, kept as its reason if the fallback succeeds too. */
    const notes = new Map<string, string>();
    let active = targets;
    let aim: 'on' | 'off' = 'on';

    /** Poll `polled` until each reaches the aim or its deadline; returns those that did not. */
    const waitFor = async (polled: PowerTarget[], deadline: (t: PowerTarget) => number): Promise<PowerTarget[]> => {
      let waiting = polled;
      for (;;) {
        const outcomes = await this.run(waiting, 'stat');
        waiting = waiting.filter((t) => {
          const outcome = outcomes.get(t.uid)!;
          if (outcome.ok && outcome.state) {
            lastState.set(t.uid, outcome.state);
            lastError.delete(t.uid);
          } else lastError.set(t.uid, outcome.ok ? 'no state reported' : outcome.reason);
          return !(outcome.ok && outcome.state === aim);
        });
        const open = waiting.filter((t) => Date.now() < deadline(t));
        if (open.length === 0) return waiting;
        await sleep(Math.min(this.limits.pollMs, Math.max(0, Math.min(...open.map(deadline)) - Date.now())));
      }
    };

    for (const [index, step] of steps.entries()) {
      if (active.length === 0) break;
      if ('action' in step) {
        aim = step.action === 'off' || step.action === 'soft' ? 'off' : 'on';
        const outcomes = await this.run(active, step.action);
        // A failed action is final unless a wait and a fallback follow it (a refused graceful
        // shutdown of `power off` goes on to the forced off).
        const hasFallback = steps[index + 1] !== undefined && !('action' in steps[index + 1]!) && steps[index + 2] !== undefined;
        for (const target of active) {
          const outcome = outcomes.get(target.uid)!;
          if (outcome.ok) continue;
          if (hasFallback) {
            skipWait.add(target.uid);
            notes.set(target.uid, `${step.action} refused (${outcome.reason}), fell back to the next steps`);
          } else failed.set(target.uid, `${step.action}: ${outcome.reason}`);
        }
        // What was read before this action is no longer the state of these nodes.
        for (const target of active) lastState.delete(target.uid);
        active = active.filter((t) => !failed.has(t.uid));
      } else {
        const start = Date.now();
        const seconds = (t: PowerTarget) => (step.wait === 'soft' ? t.softWaitS : step.wait);
        const notReached = await waitFor(active.filter((t) => !skipWait.has(t.uid)), (t) => start + 1000 * seconds(t));
        const isLast = index === steps.length - 1;
        // A node that reached the aim is done: the remaining steps are its fallback, not needed.
        const goOn = new Set([...notReached.map((t) => t.uid), ...skipWait]);
        active = active.filter((t) => goOn.has(t.uid));
        skipWait.clear();
        if (isLast) {
          for (const target of notReached) failed.set(target.uid, `${stepName(step)}: ${lastError.get(target.uid) ?? `still not ${aim} after ${seconds(target)} s`}`);
          active = [];
        }
      }
    }
    // The request ended with an action: confirm it.
    if (active.length > 0) {
      const start = Date.now();
      for (const target of await waitFor(active, (t) => start + 1000 * t.confirmWaitS)) {
        const error = lastError.get(target.uid);
        pendingReason.set(target.uid, `accepted by the BMC, not yet ${aim} after ${target.confirmWaitS} s${error === undefined ? '' : ` (last read: ${error})`}`);
      }
    }
    this.log.info({ nodes: nodes.length, steps: steps.map(stepName), failed: failed.size, pending: pendingReason.size }, 'power request');
    const byUid = new Map<string, NodePowerResult>(unresolved.map((r) => [r.uid, r]));
    for (const target of targets) {
      const base = { uid: target.uid, name: target.name, bmc: bmcAddress(target), state: lastState.get(target.uid) ?? 'unknown' as const };
      const failure = failed.get(target.uid);
      const pending = pendingReason.get(target.uid);
      const note = notes.get(target.uid);
      if (failure !== undefined) byUid.set(target.uid, { ...base, ok: false, outcome: 'failed', reason: note === undefined ? failure : `${note}; ${failure}` });
      else if (pending !== undefined) byUid.set(target.uid, { ...base, ok: false, outcome: 'pending', reason: pending });
      else byUid.set(target.uid, { ...base, ok: true, outcome: 'done', ...(note === undefined ? {} : { reason: note }) });
    }
    return nodes.map((node) => byUid.get(node.uid)!);
  }

  async setBootDevice(node: StoredRecord, device: BootDevice): Promise<string> {
    const target = this.target(node);
    return this.onBmc(target, `bootdev ${device}`, async () => {
      if (target.kind === 'ipmi') {
        await this.ipmi.setBootDevice(target, device);
        // Read back: some BMCs accept the write and keep the old value.
        const read = await this.ipmi.getBootDevice(target);
        if (read !== device) throw new Error(`BMC did not keep boot device ${device} (reads back ${read})`);
        return read;
      }
      await this.redfish(target).setBootDevice(device);
      return this.redfish(target).getBootDevice();
    });
  }

  async getBootDevice(node: StoredRecord): Promise<string> {
    const target = this.target(node);
    return this.onBmc(target, 'bootdev', () => (target.kind === 'ipmi' ? this.ipmi.getBootDevice(target) : this.redfish(target).getBootDevice()));
  }

  private async onBmc<T>(target: PowerTarget, step: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new BmcFailure(bmcAddress(target), step, (err as Error).message);
    }
  }

  /** The node's power target; a node without a usable one is the caller's mistake (Invalid). */
  target(node: StoredRecord): PowerTarget {
    const target = resolveTarget(this.store, node);
    if (target.kind === 'none') throw new Invalid(`Node ${target.name}: ${target.reason}`);
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
