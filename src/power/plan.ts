// The batching planner: IPMI targets that share credentials and options become one ipmipower
// invocation with a host list instead of one process per node. ipmipower prints results as
// `host: result` without the port, so a batch also shares the port and holds each host once;
// nodes behind the same BMC address share its answer.
import { createHash } from 'node:crypto';
import type { IpmiOptions, IpmiTarget } from './target.js';

export interface IpmiBatch {
  username: string;
  password: string;
  port: number;
  options: IpmiOptions;
  /** Distinct BMC host names, in first-seen order. */
  hosts: string[];
  /** The targets behind each host. */
  targetsByHost: Map<string, IpmiTarget[]>;
}

/** Hosts per ipmipower process (it drives them concurrently). Measured on ipmi_sim: 300 hosts answer
 * in 0.8 s; at 512 every host of the batch failed, so batches stay well below that. The service
 * runs smaller batches (PowerLimits.ipmiHostsPerProcess) so that the sessions in flight over all
 * processes stay bounded. */
export const MAX_HOSTS_PER_BATCH = 256;

/** What a batch must share: everything on ipmipower's command line and in its config file. */
export function batchKey(target: IpmiTarget): string {
  const { options: o } = target;
  return createHash('sha256')
    .update(JSON.stringify([target.username, target.password, target.port, o.driverType, o.cipherSuite ?? null, o.workarounds, o.sessionTimeoutMs, o.retransmissionTimeoutMs]))
    .digest('hex');
}

export function planIpmiBatches(targets: readonly IpmiTarget[], maxHosts = MAX_HOSTS_PER_BATCH): IpmiBatch[] {
  const open = new Map<string, IpmiBatch>();
  const batches: IpmiBatch[] = [];
  for (const target of targets) {
    const key = batchKey(target);
    let batch = open.get(key);
    if (batch && !batch.targetsByHost.has(target.host) && batch.hosts.length >= maxHosts) batch = undefined;
    if (!batch) {
      batch = { username: target.username, password: target.password, port: target.port, options: target.options, hosts: [], targetsByHost: new Map() };
      open.set(key, batch);
      batches.push(batch);
    }
    const sharing = batch.targetsByHost.get(target.host);
    if (sharing) sharing.push(target);
    else {
      batch.hosts.push(target.host);
      batch.targetsByHost.set(target.host, [target]);
    }
  }
  return batches;
}
