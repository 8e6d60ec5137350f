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
}

const KEY = 'cluster';

export function clusterSettings(store: Store): ClusterSettings {
  return store.getSetting<ClusterSettings>(KEY) ?? {};
}

/** Replace the settings; call inside `store.write` so the change joins that transaction. */
export function putClusterSettingsInTx(store: Store, settings: ClusterSettings): void {
  store.settings.putSync(KEY, settings);
}
