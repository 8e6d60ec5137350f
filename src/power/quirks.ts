// Redfish vendor differences, as data. The client (redfish.ts) reads only these fields; a new
// vendor is a new entry here, chosen by the node's `redfish_quirks` attribute or by matching the
// service root's `Vendor`/`Oem` keys.
import type { BootDevice, PowerAction } from './ipmi.js';

export interface RedfishQuirks {
  name: string;
  /** Matches the service root's Vendor (or its Oem keys) when the node names no quirks. */
  vendor?: RegExp;
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

const DEFAULT: RedfishQuirks = {
  name: 'default',
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

export const REDFISH_QUIRKS: readonly RedfishQuirks[] = [
  DEFAULT,
  // HPE iLO: PATCH of a ComputerSystem honours If-Match; a stale ETag is refused instead of racing.
  { ...DEFAULT, name: 'hpe', vendor: /^(HPE|Hpe|Hp)$/, patchWithEtag: true },
  // BMCs whose session service is missing or broken: Basic auth on every request.
  { ...DEFAULT, name: 'basic-auth', basicAuthOnly: true },
  // BMCs that drop a one-time override at the next reset they see: keep it until changed.
  { ...DEFAULT, name: 'boot-continuous', bootOverrideEnabled: 'Continuous' },
];

/** The quirks named, else those whose vendor matches the service root, else the default. */
export function quirksFor(name: string | undefined, serviceRoot: Record<string, unknown>): RedfishQuirks {
  if (name !== undefined) {
    const named = REDFISH_QUIRKS.find((q) => q.name === name);
    if (!named) throw new Error(`unknown redfish_quirks '${name}' (known: ${REDFISH_QUIRKS.map((q) => q.name).join(', ')})`);
    return named;
  }
  const vendors = [serviceRoot.Vendor, ...Object.keys((serviceRoot.Oem as Record<string, unknown> | undefined) ?? {})].filter((v): v is string => typeof v === 'string');
  return REDFISH_QUIRKS.find((q) => q.vendor !== undefined && vendors.some((v) => q.vendor!.test(v))) ?? DEFAULT;
}
