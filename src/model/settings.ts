// The cluster-wide settings of GET/PATCH /cluster, kept as one value in the store's settings
// database and written inside store transactions, so a change that also touches objects commits
// with them.
import type { Store } from '../store/store.js';

export interface ClusterSettings {
  /** Uid of the attribute group every node implicitly belongs to (first in its merged view). */
  default_group?: string;
  /** Pattern of the default naming pool (nodes without `naming_pool`); default `n{}`. */
  naming?: string;
  /** Uid of the network that pools without their own network allocate from. */
  default_network?: string;
  accept_new_nodes?: boolean;
  default_distro?: string;
  cluster_name?: string;
  cluster_id?: string;
  auth_config?: Record<string, unknown>;
  influx_token?: string;
  /** Cluster accounting configuration (GET/PUT /cluster/accountant). */
  accountant?: Record<string, unknown>;
  /** Seconds between a node agent's status reports (PUT /node/putstatus); default STATUS_PERIOD_DEFAULT. */
  status_period?: number;
}

export const STATUS_PERIOD_DEFAULT = 60;
/** Bounds of `status_period` (PATCH /cluster): a report at most every 5 s, at least once a day. */
export const STATUS_PERIOD_MIN = 5;
export const STATUS_PERIOD_MAX = 86400;

/** Reason a `status_period` value is refused, or undefined when it is a whole number of seconds in bounds. */
export function statusPeriodProblem(value: unknown): string | undefined {
  if (Number.isSafeInteger(value) && (value as number) >= STATUS_PERIOD_MIN && (value as number) <= STATUS_PERIOD_MAX) return undefined;
  return `Field 'status_period' must be an integer ${STATUS_PERIOD_MIN}..${STATUS_PERIOD_MAX} (seconds; got ${JSON.stringify(value)})`;
}

/** How often node agents report: the setting, else the default. */
export function statusPeriod(settings: ClusterSettings): number {
  return settings.status_period ?? STATUS_PERIOD_DEFAULT;
}

const KEY = 'cluster';

export function clusterSettings(store: Store): ClusterSettings {
  return store.getSetting<ClusterSettings>(KEY) ?? {};
}

/** Replace the settings; call inside `store.write` so the change joins that transaction. */
export function putClusterSettingsInTx(store: Store, settings: ClusterSettings): void {
  store.settings.putSync(KEY, settings);
}
