// Power control's and console capture's per-node settings, declared once: each is an attribute (a
// node's, its groups' or the cluster default group's), checked here when it is written
// (normaliseAttributes) so that a bad value is a 400 naming the allowed values instead of a failure
// at the next power action or console open, and read here into typed values by src/power/target.ts
// and src/power/console-service.ts. docs/power.md lists them.
import { Invalid } from './errors.js';

/** Names of the Redfish quirk sets (their contents are src/power/quirks.ts, typed by this list). */
const REDFISH_QUIRK_NAMES = ['hpe', 'basic-auth', 'boot-continuous'] as const;
export type RedfishQuirkName = (typeof REDFISH_QUIRK_NAMES)[number];

type Setting =
  | { kind: 'integer'; min: number; max: number; default?: number }
  | { kind: 'choice'; values: readonly string[]; default?: string }
  | { kind: 'list'; values: readonly string[] }
  | { kind: 'flags' };

/** Every setting, with its bounds or allowed values; `default` is the built-in value when nobody sets it. */
const POWER_SETTINGS = {
  ipmi_driver_type: { kind: 'choice', values: ['LAN_2_0', 'LAN'], default: 'LAN_2_0' },
  ipmi_cipher_suite: { kind: 'integer', min: 0, max: 17 },
  ipmi_workarounds: { kind: 'flags' },
  ipmi_session_timeout_ms: { kind: 'integer', min: 100, max: 600_000, default: 5000 },
  ipmi_retransmission_timeout_ms: { kind: 'integer', min: 10, max: 60_000, default: 500 },
  redfish_tls: { kind: 'choice', values: ['verify', 'insecure'], default: 'verify' },
  redfish_timeout_ms: { kind: 'integer', min: 100, max: 600_000, default: 5000 },
  redfish_quirks: { kind: 'list', values: REDFISH_QUIRK_NAMES },
  power_soft_wait_s: { kind: 'integer', min: 0, max: 3600, default: 30 },
  power_confirm_wait_s: { kind: 'integer', min: 0, max: 3600, default: 30 },
  // Console capture (src/power/console-service.ts). `console` itself is not checked here: boot
  // configs also use it for the kernel's console= (`ttyS0,115200`).
  console_baud: { kind: 'choice', values: ['1200', '2400', '4800', '9600', '19200', '38400', '57600', '115200', '230400', '460800', '921600'], default: '115200' },
  console_data_bits: { kind: 'choice', values: ['5', '6', '7', '8'], default: '8' },
  console_parity: { kind: 'choice', values: ['none', 'even', 'odd'], default: 'none' },
  console_stop_bits: { kind: 'choice', values: ['1', '2'], default: '1' },
  console_flow: { kind: 'choice', values: ['none', 'rtscts', 'xonxoff'], default: 'none' },
  console_protocol: { kind: 'choice', values: ['raw', 'telnet'], default: 'raw' },
  console_ring_kib: { kind: 'integer', min: 4, max: 65_536, default: 256 },
} as const satisfies Record<string, Setting>;

type PowerSettingName = keyof typeof POWER_SETTINGS;

function problem(key: PowerSettingName, text: string): string | undefined {
  const setting: Setting = POWER_SETTINGS[key];
  switch (setting.kind) {
    case 'integer': {
      const value = Number(text);
      return /^\d+$/.test(text) && value >= setting.min && value <= setting.max ? undefined : `must be an integer ${setting.min}..${setting.max}`;
    }
    case 'choice':
      return setting.values.includes(text) ? undefined : `must be one of ${setting.values.join(', ')}`;
    case 'list': {
      const unknown = listItems(text).filter((item) => !setting.values.includes(item));
      return unknown.length === 0 ? undefined : `must be a comma list of ${setting.values.join(', ')} (unknown: ${unknown.join(', ')})`;
    }
    case 'flags':
      // Passed to FreeIPMI as one argv element: only a flag list.
      return /^[a-z0-9,]*$/i.test(text) ? undefined : 'must be a comma list of FreeIPMI workaround flags (letters and digits)';
  }
}

const listItems = (text: string) => text.split(',').map((item) => item.trim()).filter((item) => item !== '');

const isSetting = (key: string): key is PowerSettingName => Object.hasOwn(POWER_SETTINGS, key);

/** Refuse an attribute set holding a power setting with a bad value; the empty string means "unset". */
export function checkPowerSettings(attributes: Readonly<Record<string, string>>, field: string): void {
  for (const [key, text] of Object.entries(attributes)) {
    if (!isSetting(key) || text === '') continue;
    const reason = problem(key, text);
    if (reason !== undefined) throw new Invalid(`Field '${field}': attribute ${key} ${reason}, got '${text}'`);
  }
}

/** Read power settings from merged attributes; a stored bad value (written before it was checked) throws with the reason. */
export class PowerSettings {
  constructor(private readonly attributes: Readonly<Record<string, string>>) {}

  private text(key: PowerSettingName): string | undefined {
    const text = this.attributes[key];
    if (text === undefined || text === '') return undefined;
    const reason = problem(key, text);
    if (reason !== undefined) throw new Error(`attribute ${key} ${reason}, got '${text}'`);
    return text;
  }

  integer(key: { [K in PowerSettingName]: (typeof POWER_SETTINGS)[K] extends { kind: 'integer'; default: number } ? K : never }[PowerSettingName]): number {
    const text = this.text(key);
    return text === undefined ? POWER_SETTINGS[key].default : Number(text);
  }

  optionalInteger(key: 'ipmi_cipher_suite'): number | undefined {
    const text = this.text(key);
    return text === undefined ? undefined : Number(text);
  }

  choice<K extends 'ipmi_driver_type' | 'redfish_tls' | 'console_baud' | 'console_data_bits' | 'console_parity' | 'console_stop_bits' | 'console_flow' | 'console_protocol'>(key: K): (typeof POWER_SETTINGS)[K]['values'][number] {
    return (this.text(key) ?? POWER_SETTINGS[key].default) as (typeof POWER_SETTINGS)[K]['values'][number];
  }

  quirks(): RedfishQuirkName[] {
    return listItems(this.text('redfish_quirks') ?? '') as RedfishQuirkName[];
  }

  workarounds(): string {
    return this.text('ipmi_workarounds') ?? '';
  }
}
