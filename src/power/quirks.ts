// Redfish vendor differences, as data. The client (redfish.ts) reads only the fields of
// RedfishQuirks; a quirk set changes some of them. The sets that apply are those whose vendor
// matches the service root's `Vendor`/`Oem` keys, then those the node's `redfish_quirks` lists
// (a comma list, applied in order, so they combine: `hpe,boot-continuous`).
import type { RedfishQuirkName } from '../model/power-settings.js';
import type { BootDevice, PowerAction } from './ipmi.js';

export interface RedfishQuirks {
  /** ResetType candidates per action, best first; the first the system allows is used. */
  resetTypes: Record<PowerAction, readonly string[]>;
  /** BootSourceOverrideTarget values. */
  bootTargets: Record<BootDevice, string>;
  /** BootSourceOverrideEnabled to write with a target. */
  bootOverrideEnabled: 'Once' | 'Continuous';
  /** Write attempts when the read-back shows the BMC did not keep the boot override. */
  bootWriteAttempts: number;
  /** Skip SessionService and use Basic auth on every request. */
  basicAuthOnly: boolean;
  /** Send the resource's ETag as If-Match on PATCH. */
  patchWithEtag: boolean;
}

const DEFAULT_QUIRKS: RedfishQuirks = {
  resetTypes: {
    on: ['On', 'ForceOn', 'PushPowerButton'],
    off: ['ForceOff'],
    soft: ['GracefulShutdown', 'PushPowerButton'],
    cycle: ['PowerCycle', 'ForceRestart'],
    reset: ['ForceRestart', 'PowerCycle'],
  },
  bootTargets: { pxe: 'Pxe', disk: 'Hdd' },
  bootOverrideEnabled: 'Once',
  bootWriteAttempts: 2,
  basicAuthOnly: false,
  patchWithEtag: false,
};

interface QuirkSet {
  /** Applied without being named when the service root's Vendor (or an Oem key) matches. */
  vendor?: RegExp;
  changes: Partial<RedfishQuirks>;
}

const QUIRK_SETS: Record<RedfishQuirkName, QuirkSet> = {
  // HPE iLO: PATCH of a ComputerSystem honours If-Match; a stale ETag is refused instead of racing.
  hpe: { vendor: /^(HPE|Hpe|Hp)$/, changes: { patchWithEtag: true } },
  // BMCs whose session service answers but does not work (a token that is then refused): Basic
  // auth on every request. A missing or refusing session service needs no quirk.
  'basic-auth': { changes: { basicAuthOnly: true } },
  // BMCs that drop a one-time override at the next reset they see: keep it until changed.
  'boot-continuous': { changes: { bootOverrideEnabled: 'Continuous' } },
};

/** The default quirks changed by the vendor's sets, then by the named ones in order. */
export function quirksFor(named: readonly RedfishQuirkName[], serviceRoot: Record<string, unknown>): RedfishQuirks {
  const vendors = [serviceRoot.Vendor, ...Object.keys((serviceRoot.Oem as Record<string, unknown> | undefined) ?? {})].filter((v): v is string => typeof v === 'string');
  const byVendor = Object.values(QUIRK_SETS).filter((set) => set.vendor !== undefined && vendors.some((v) => set.vendor!.test(v)));
  return [...byVendor, ...named.map((name) => QUIRK_SETS[name])].reduce<RedfishQuirks>((quirks, set) => ({ ...quirks, ...set.changes }), DEFAULT_QUIRKS);
}
