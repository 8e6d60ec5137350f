// `keel power status|on|off|cycle|reset|soft|bootdev` over a node, a comma list or a selector,
// through the API's bulk routes (GET/PUT /nodes/power_state, docs/power.md); boot devices have
// single-node routes only (GET/PUT /node/<id>/bootdev), called for each node selected.
import { Argument, type Command } from 'commander';
import { formatTable, print, UsageError } from '../output.js';
import type { Session } from '../session.js';
import { clientCommand, eachTarget, seg, sessionFor, type ClientOptions } from './common.js';

interface SelectOptions extends ClientOptions {
  selector?: string;
}

/** The selection as the bulk routes take it: `nodes` (a comma list) or `selector`, exactly one. */
function selection(targets: string | undefined, options: SelectOptions): { nodes: string[] } | { selector: string } {
  if ((targets === undefined) === (options.selector === undefined)) throw new UsageError('Name the nodes: NODE, a comma list NODE,NODE,… or --selector EXPR (one of them)');
  if (options.selector !== undefined) return { selector: options.selector };
  const nodes = targets!.split(',').filter((s) => s !== '');
  if (nodes.length === 0) throw new UsageError(`No node in ${JSON.stringify(targets)}`);
  return { nodes };
}

function query(selected: { nodes: string[] } | { selector: string }): string {
  return 'nodes' in selected ? `nodes=${selected.nodes.map(seg).join(',')}` : `selector=${seg(selected.selector)}`;
}

/** The names of the selected nodes (for the per-node bootdev routes). */
async function nodeNames(session: Session, selected: { nodes: string[] } | { selector: string }): Promise<string[]> {
  if ('nodes' in selected) return selected.nodes;
  const nodes = (await session.call('GET', `/nodes?selector=${seg(selected.selector)}`)) as Record<string, { name?: string; uid: string }>;
  return Object.values(nodes).map((n) => n.name ?? n.uid);
}

function targeted(command: Command): Command {
  return clientCommand(command.argument('[nodes]', 'a node (uid, name, MAC or IP) or a comma list of them')
    .option('--selector <expr>', 'the nodes the selector picks (docs/selector.md)'));
}

interface PowerResult {
  name?: string;
  uid: string;
  state: string;
  outcome: string;
  reason?: string;
}

const ACTIONS: Record<string, string> = {
  on: 'power on',
  off: 'power off (graceful shutdown first unless --force)',
  cycle: 'power off, then on',
  reset: 'hard reset',
  soft: 'ask the OS to shut down (ACPI)',
};

export function registerPowerCommands(program: Command): void {
  const power = program.command('power').description('power state and boot device of nodes, through their BMCs');

  targeted(power.command('status').description('power state of nodes: on, off or unknown (with the reason)'))
    .action(async (targets: string | undefined, options: SelectOptions) => {
      const selected = selection(targets, options);
      const states = (await (await sessionFor(options)).call('GET', `/nodes/power_state?${query(selected)}`)) as { name?: string; uid: string; state: string; reason?: string }[];
      print(options.json, states, () => formatTable(['node', 'state', 'reason'], states.map((s) => [s.name ?? s.uid, s.state, s.reason])));
      if (states.some((s) => s.state === 'unknown')) process.exitCode = 1;
    });

  for (const [action, description] of Object.entries(ACTIONS)) {
    const command = targeted(power.command(action).description(description));
    if (action === 'off') command.option('--force', 'turn off at once, no graceful shutdown first');
    command.action(async (targets: string | undefined, options: SelectOptions & { force?: boolean }) => {
      const selected = selection(targets, options);
      const body = { ...selected, state: `power ${action}`, ...(options.force ? { force: true } : {}) };
      const answer = (await (await sessionFor(options)).call('PUT', '/nodes/power_state', body)) as { failed: number; results: PowerResult[] };
      print(options.json, answer, () => formatTable(['node', 'state', 'outcome', 'reason'], answer.results.map((r) => [r.name ?? r.uid, r.state, r.outcome, r.reason])));
      if (answer.failed > 0) process.exitCode = 1;
    });
  }

  // [nodes] first, then [device]: commander passes arguments in the order they were declared.
  targeted(power.command('bootdev').description('next boot device as the BMCs report it; with pxe or disk, set it'))
    .addArgument(new Argument('[device]', 'set the next boot device').choices(['pxe', 'disk']))
    .action(async (targets: string | undefined, device: string | undefined, options: SelectOptions) => {
      const session = await sessionFor(options);
      const results: { node: string; device?: string; reason?: string }[] = [];
      const outcomes = await eachTarget(await nodeNames(session, selection(targets, options)), async (node) => {
        const path = `/node/${seg(node)}/bootdev`;
        try {
          const answer = device === undefined ? await session.call('GET', path) : await session.call('PUT', path, { device });
          results.push({ node, device: answer as string });
        } catch (err) {
          results.push({ node, reason: (err as Error).message });
          throw err;
        }
      });
      print(options.json, results, () => formatTable(['node', 'bootdev', 'reason'], results.map((r) => [r.node, r.device, r.reason])));
      if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
    });
}
