// What keel derives from a node's status reports (PUT/POST /node/putstatus): when it last reported
// and whether it is up. One answer for GET /node/<id>/status and for the selector language
// (`s[state] == down`, cluster.ts selectorSubjects), so both always agree.
import type { StoredRecord } from '../store/store.js';

/** Stored field of a node: server time (epoch seconds) of its last status report. Internal: no client writes it. */
export const REPORTED_AT_FIELD = 'reported_at';

/** A node that has not reported for more than this many status periods reads `down`. */
export const MISSED_PERIODS_DOWN = 3;

export type NodeState = 'up' | 'down' | 'unknown';

/** Keys of a node's status that keel derives; a report carrying one is refused, so a node cannot fake them. */
export const DERIVED_STATUS_KEYS: readonly string[] = ['state', 'last_report'];

export interface DerivedStatus {
  /** ISO 8601 time of the last report; null when the node never reported. */
  last_report: string | null;
  /** `up` while reports come, `down` after MISSED_PERIODS_DOWN missed periods, `unknown` before the first report. */
  state: NodeState;
}

/** The derived fields of `node` at server time `nowSeconds`, for a status period of `periodSeconds`. */
export function derivedStatus(node: Readonly<Record<string, unknown>>, nowSeconds: number, periodSeconds: number): DerivedStatus {
  const reportedAt = node[REPORTED_AT_FIELD];
  if (typeof reportedAt !== 'number') return { last_report: null, state: 'unknown' };
  const silentFor = nowSeconds - reportedAt;
  return { last_report: new Date(reportedAt * 1000).toISOString(), state: silentFor > MISSED_PERIODS_DOWN * periodSeconds ? 'down' : 'up' };
}

/** The node's last report with the derived fields; they win over any stored key of the same name. */
export function statusWithDerived(node: StoredRecord, nowSeconds: number, periodSeconds: number): Record<string, unknown> {
  return { ...((node.status as Record<string, unknown> | undefined) ?? {}), ...derivedStatus(node, nowSeconds, periodSeconds) };
}
