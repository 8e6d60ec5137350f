// Power control and boot device routes (spec 001: GET/PUT /node/<UID>/power_state), plus bulk
// forms over a list of nodes, a selector or a dynamic group. See docs/power.md.
import { badRequest, HttpError } from '../../http/errors.js';
import type { Schema } from '../../model/schema.js';
import { BmcFailure, type NodePowerResult } from '../../power/service.js';
import { parseSteps, POWER_STATES, stepsForState, type PowerStateRequest, type PowerStep } from '../../power/steps.js';
import type { ApiContext } from '../context.js';
import { querySelection, selection, SELECTION_BODY } from '../node-selection.js';
import type { Route } from '../route.js';

const power = (ctx: ApiContext) => ctx.power;
const nodeOf = (ctx: ApiContext, id: string) => ctx.model.nodes.resolve(id);

/**
 * One rule for single-node routes: the caller's mistakes (bad body, unknown node, a node without a
 * usable power_uri) are 4xx; a BMC that fails is 502, its reason naming the BMC, the step and the
 * cause (`BMC 10.1.0.9:623: on: connection timeout`).
 */
const badGateway = (reason: string) => new HttpError(502, reason);

async function onBmc<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BmcFailure) throw badGateway(err.message);
    throw err;
  }
}

/** `on`, `off`, … for `power on`, `power off`, …: the short forms scripts tend to send. */
const SHORT_STATES = POWER_STATES.map((state) => state.slice('power '.length));

const ACTION_BODY: Schema = {
  state: { type: 'string', enum: [...POWER_STATES, ...SHORT_STATES], summary: 'power on | power off | power cycle | power reset | power soft (or on, off, cycle, reset, soft)' },
  force: { type: 'boolean', summary: 'With power off: turn off at once instead of a graceful shutdown first' },
  steps: { type: 'any', summary: 'Explicit steps instead of state, e.g. ["soft", "wait 60", "off"] (docs/power.md)' },
};

function stepsOf(body: Record<string, unknown>): PowerStep[] {
  if (body.steps !== undefined && body.state !== undefined) throw badRequest(`Send 'state' or 'steps', not both`);
  if (body.steps !== undefined) {
    try {
      return parseSteps(body.steps);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
  }
  // The spec calls every field optional but names no action for a body without one; a power
  // action is not something to guess (docs/spec-decisions.md).
  if (body.state === undefined)
    throw badRequest(`Nothing to do: send 'state' (${POWER_STATES.join(', ')}) or 'steps'${body.force === undefined ? '' : `; 'force' only modifies 'state': "power off"`}`);
  const state = (body.state as string).startsWith('power ') ? body.state as PowerStateRequest : `power ${body.state as string}` as PowerStateRequest;
  return stepsForState(state, body.force === true);
}

/** `?detail` (any value but `0` or `false`): the single-node routes answer with more than the spec shows. */
function wantsDetail(query: URLSearchParams): boolean {
  const detail = query.get('detail');
  return detail !== null && detail !== '0' && detail !== 'false';
}

const summary = (results: readonly NodePowerResult[]) => ({
  ok: results.filter((r) => r.outcome === 'done').length,
  pending: results.filter((r) => r.outcome === 'pending').length,
  failed: results.filter((r) => r.outcome === 'failed').length,
});

export const powerRoutes: Route[] = [
  {
    method: 'GET', path: '/node/:id/power_state', access: 'role.authuser',
    summary: 'Power state: on, off or unknown; ?detail=1 gives {state, reason} (reason when unknown)',
    handler: async (req, ctx) => {
      const [state] = await power(ctx).status([nodeOf(ctx, req.params.id!)]);
      if (wantsDetail(req.query)) return { state: state!.state, ...(state!.reason ? { reason: state!.reason } : {}) };
      return state!.state;
    },
  },
  {
    method: 'PUT', path: '/node/:id/power_state', access: 'role.poweradmin',
    summary: 'Power action: state (power on|off|cycle|reset|soft) with force, or steps; answers {"success": true} as the spec does, ?detail=1 adds data {state, outcome: done|pending, reason?}',
    body: ACTION_BODY,
    handler: async (req, ctx) => {
      const node = nodeOf(ctx, req.params.id!);
      const steps = stepsOf(req.body as Record<string, unknown>);
      // A node without a usable power_uri is the caller's mistake (400), not a BMC failure.
      power(ctx).target(node);
      const [result] = await power(ctx).apply([node], steps);
      if (result!.outcome === 'failed') throw badGateway(`BMC ${result!.bmc}: ${result!.reason}`);
      if (!wantsDetail(req.query)) return undefined;
      return { state: result!.state, outcome: result!.outcome, ...(result!.reason === undefined ? {} : { reason: result!.reason }) };
    },
  },
  {
    method: 'GET', path: '/nodes/power_state', access: 'role.authuser',
    summary: 'Power state of many nodes (?nodes=a,b | ?selector=… | ?dyngroup=…): [{uid, name, state, reason}]',
    handler: async (req, ctx) => power(ctx).status(querySelection(ctx, req.query)),
  },
  {
    method: 'PUT', path: '/nodes/power_state', access: 'role.poweradmin',
    summary: 'Power action on many nodes (nodes | selector | dyngroup): {ok, pending, failed, results: [{uid, name, bmc, state, outcome, ok, reason?}]}',
    body: { ...SELECTION_BODY, ...ACTION_BODY },
    handler: async (req, ctx) => {
      const body = req.body as Record<string, unknown>;
      const steps = stepsOf(body);
      const results = await power(ctx).apply(selection(ctx, body), steps);
      return { ...summary(results), results };
    },
  },
  {
    method: 'GET', path: '/node/:id/bootdev', access: 'role.authuser', summary: 'Next boot device as the BMC reports it: pxe, disk, or the BMC\'s name',
    handler: async (req, ctx) => {
      const node = nodeOf(ctx, req.params.id!);
      return onBmc(() => power(ctx).getBootDevice(node));
    },
  },
  {
    method: 'PUT', path: '/node/:id/bootdev', access: 'role.poweradmin', summary: 'Set the next boot device (pxe or disk); answers the value read back',
    body: { device: { type: 'string', enum: ['pxe', 'disk'], required: true, summary: 'pxe or disk' } },
    handler: async (req, ctx) => {
      const node = nodeOf(ctx, req.params.id!);
      const device = (req.body as { device: 'pxe' | 'disk' }).device;
      return onBmc(() => power(ctx).setBootDevice(node, device));
    },
  },
];
