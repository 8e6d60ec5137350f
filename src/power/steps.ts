// Power requests as step lists. The API's `state` is shorthand for a list; `steps` gives one
// explicitly. A step is an action (`on`, `off`, `soft`, `cycle`, `reset`) or `wait N` (seconds):
// wait up to N s for the state the previous action aims at (off after off/soft, on after
// on/cycle/reset); a node that reaches it is done and skips the remaining steps, the others go on
// to the next step. `wait soft` waits the node's own power_soft_wait_s.
import type { PowerAction } from './ipmi.js';

export type PowerStep = { action: PowerAction } | { wait: number | 'soft' };

export const POWER_STATES = ['power on', 'power off', 'power cycle', 'power reset', 'power soft'] as const;
export type PowerStateRequest = (typeof POWER_STATES)[number];

const ACTIONS = new Set<string>(['on', 'off', 'soft', 'cycle', 'reset']);
export const MAX_STEPS = 16;
export const MAX_WAIT_S = 3600;

/** The steps of a `state` request. `power off` without force is the spec's graceful-then-forced off. */
export function stepsForState(state: PowerStateRequest, force: boolean): PowerStep[] {
  switch (state) {
    case 'power on': return [{ action: 'on' }];
    case 'power off': return force ? [{ action: 'off' }] : [{ action: 'soft' }, { wait: 'soft' }, { action: 'off' }];
    case 'power cycle': return [{ action: 'cycle' }];
    case 'power reset': return [{ action: 'reset' }];
    case 'power soft': return [{ action: 'soft' }];
  }
}

/** Parse the API's `steps`: a list like ["soft", "wait 60", "off"]. Throws with the reason. */
export function parseSteps(value: unknown): PowerStep[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_STEPS) throw new Error(`'steps' must be a list of 1..${MAX_STEPS} steps`);
  const steps = value.map((item, index): PowerStep => {
    const text = typeof item === 'string' ? item.trim().toLowerCase() : '';
    if (ACTIONS.has(text)) return { action: text as PowerAction };
    const wait = /^wait\s+(\d+|soft)$/.exec(text);
    if (wait) {
      if (wait[1] === 'soft') return { wait: 'soft' };
      const seconds = Number(wait[1]);
      if (seconds <= MAX_WAIT_S) return { wait: seconds };
    }
    throw new Error(`'steps' item ${index}: expected on, off, soft, cycle, reset or 'wait N' (N 0..${MAX_WAIT_S}), got ${JSON.stringify(item)}`);
  });
  if (!('action' in steps[0]!)) throw new Error(`'steps' must start with an action`);
  return steps;
}
