// `keel node`, `keel attrib` and `keel group`: nodes, their attributes and attribute groups on a
// head, through the API's object routes (GET/POST /nodes, PATCH/DELETE /node/<id>,
// /node/<id>/attributes, /node/<id>/groups, /attribs, /attrib/<id>…).
import { Option, type Command } from 'commander';
import { NODE_TYPES } from '../../model/classes/node.js';
import { formatFields, formatTable, parsePairs, print, UsageError } from '../output.js';
import type { Session } from '../session.js';
import { byName, clientCommand, eachTarget, reportOutcomes, seg, sessionFor, type ClientOptions } from './common.js';

type Row = Record<string, unknown>;

/** uid → name of every attribute group, to show a node's groups by name. */
async function groupNames(session: Session): Promise<Map<string, string>> {
  const groups = (await session.call('GET', '/attribs')) as Record<string, Row>;
  return new Map(Object.values(groups).map((g) => [String(g.uid), String(g.name)]));
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface NodeFieldOptions {
  description?: string;
  type?: string;
  powerUri?: string;
  redfishUri?: string;
  namingPool?: string;
  mac?: string;
}

/** The node fields the options set, as the API names them. */
function nodeFields(options: NodeFieldOptions): Row {
  const fields: Row = {};
  if (options.mac !== undefined) fields.mac = options.mac;
  if (options.description !== undefined) fields.description = options.description;
  if (options.type !== undefined) fields.type = options.type;
  if (options.powerUri !== undefined) fields.power_uri = options.powerUri;
  if (options.redfishUri !== undefined) fields.redfish_uri = options.redfishUri;
  if (options.namingPool !== undefined) fields.naming_pool = options.namingPool;
  return fields;
}

function nodeFieldOptions(command: Command): Command {
  return command
    .option('--description <text>', 'free text')
    .addOption(new Option('--type <type>', 'kind of node').choices(NODE_TYPES))
    .option('--power-uri <uri>', 'power controller, e.g. ipmi://<ipmi_user>:<ipmi_pass>@<bmc> (placeholders from attributes)')
    .option('--redfish-uri <uri>', "URI of the node's Redfish service")
    .option('--naming-pool <pool>', 'naming pool (uid or name)');
}

function registerNode(program: Command): void {
  const node = program.command('node').description('nodes of a head');

  clientCommand(node.command('ls').description('list nodes: name, MAC, IP, type, groups')
    .option('--selector <expr>', 'only the nodes the selector picks (docs/selector.md), e.g. "a[rack]==r1"'))
    .action(async (options: ClientOptions & { selector?: string }) => {
      const session = await sessionFor(options);
      const query = options.selector === undefined ? '' : `?selector=${seg(options.selector)}`;
      const nodes = (await session.call('GET', `/nodes${query}`)) as Record<string, Row>;
      if (options.json) return print(true, nodes, () => '');
      const names = await groupNames(session);
      const rows = Object.values(nodes).sort(byName)
        .map((n) => [n.name, n.mac, n.ip, n.type, ((n.groups as string[] | undefined) ?? []).map((uid) => names.get(uid) ?? uid)]);
      print(false, nodes, () => formatTable(['name', 'mac', 'ip', 'type', 'groups'], rows));
    });

  clientCommand(node.command('show <node>').description('one node (uid, name, MAC or IP): its fields, then its merged attributes'))
    .action(async (id: string, options: ClientOptions) => {
      const session = await sessionFor(options);
      const view = (await session.call('GET', `/node/${seg(id)}`)) as Row;
      if (options.json) return print(true, view, () => '');
      const attributes = (await session.call('GET', `/node/${seg(id)}/attributes`)) as Row;
      const names = await groupNames(session);
      const { attributes: _own, hardware, ...fields } = view;
      fields.groups = ((fields.groups as string[] | undefined) ?? []).map((uid) => names.get(uid) ?? uid);
      const hardwareLine = hardware !== undefined && Object.keys(hardware as object).length > 0 ? { hardware } : {};
      process.stdout.write(formatFields({ ...fields, ...hardwareLine }));
      process.stdout.write(`\n${formatTable(['attribute', 'value'], Object.entries(attributes))}`);
    });

  clientCommand(nodeFieldOptions(node.command('create').description('create a node; prints its name and uid')
    .requiredOption('--mac <mac>', 'MAC address of the boot interface')
    .option('--group <group>', 'attribute group (uid or name); repeatable, applied in order', collect)
    .option('--attr <key=value>', 'own attribute; repeatable', collect)))
    .action(async (options: ClientOptions & NodeFieldOptions & { group?: string[]; attr?: string[] }) => {
      const body = { ...nodeFields(options), ...(options.group ? { groups: options.group } : {}), ...(options.attr ? { attributes: parsePairs(options.attr) } : {}) };
      const session = await sessionFor(options);
      const uid = (await session.call('POST', '/nodes', body)) as string;
      const view = (await session.call('GET', `/node/${uid}`)) as Row;
      print(options.json, view, () => `created ${String(view.name ?? uid)} ${uid}\n`);
    });

  clientCommand(nodeFieldOptions(node.command('set <node>').description('change fields of a node (attributes: keel attrib set)')
    .option('--mac <mac>', 'MAC address of the boot interface')))
    .action(async (id: string, options: ClientOptions & NodeFieldOptions) => {
      const fields = nodeFields(options);
      if (Object.keys(fields).length === 0) throw new UsageError('Nothing to set: give at least one of --mac, --description, --type, --power-uri, --redfish-uri, --naming-pool');
      const session = await sessionFor(options);
      await session.call('PATCH', `/node/${seg(id)}`, fields);
      const view = (await session.call('GET', `/node/${seg(id)}`)) as Row;
      print(options.json, view, () => `changed ${String(view.name ?? id)}\n`);
    });

  clientCommand(node.command('rm <nodes...>').description('delete nodes'))
    .action(async (ids: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      reportOutcomes(await eachTarget(ids, async (id) => void (await session.call('DELETE', `/node/${seg(id)}`))), 'deleted', options.json);
    });
}

/** `/node/<id>` or, with --group, `/attrib/<id>`. */
const attributeOwner = (id: string, group: boolean | undefined) => `/${group ? 'attrib' : 'node'}/${seg(id)}`;

function registerAttrib(program: Command): void {
  const attrib = program.command('attrib').description("attributes of a node (with --group: of an attribute group)");
  const target = (command: Command) => clientCommand(command.option('--group', 'the target is an attribute group, not a node'));

  target(attrib.command('ls <target>').description("a node's merged attributes (its groups' in order, then its own); with --group, the group's"))
    .action(async (id: string, options: ClientOptions & { group?: boolean }) => {
      const attributes = (await (await sessionFor(options)).call('GET', `${attributeOwner(id, options.group)}/attributes`)) as Row;
      print(options.json, attributes, () => formatTable(['attribute', 'value'], Object.entries(attributes)));
    });

  target(attrib.command('set <target> <pairs...>').description('set attributes (KEY=VALUE …), keeping the others'))
    .action(async (id: string, pairs: string[], options: ClientOptions & { group?: boolean }) => {
      const values = parsePairs(pairs);
      const session = await sessionFor(options);
      await session.call('PATCH', `${attributeOwner(id, options.group)}/attributes`, values);
      print(options.json, values, () => `set ${Object.keys(values).join(', ')} on ${id}\n`);
    });

  target(attrib.command('unset <target> <keys...>').description('remove attributes of the target itself (not those it inherits)'))
    .action(async (id: string, keys: string[], options: ClientOptions & { group?: boolean }) => {
      const session = await sessionFor(options);
      await session.call('DELETE', `${attributeOwner(id, options.group)}/attributes`, keys);
      print(options.json, keys, () => `unset ${keys.join(', ')} on ${id}\n`);
    });
}

/** A node's groups by name, in order, after assign/unassign. */
async function printNodeGroups(session: Session, node: string, json: boolean | undefined): Promise<void> {
  const names = await groupNames(session);
  const now = ((await session.call('GET', `/node/${seg(node)}/groups`)) as string[]).map((uid) => names.get(uid) ?? uid);
  print(json, now, () => `${node}: groups ${now.length > 0 ? now.join(', ') : '(none)'}\n`);
}

function registerGroup(program: Command): void {
  const group = program.command('group').description('attribute groups: named sets of attributes nodes inherit in order');

  clientCommand(group.command('ls').description('list attribute groups: name, attributes, description')
    .option('--selector <expr>', 'only the groups whose attributes the selector picks'))
    .action(async (options: ClientOptions & { selector?: string }) => {
      const query = options.selector === undefined ? '' : `?selector=${seg(options.selector)}`;
      const groups = (await (await sessionFor(options)).call('GET', `/attribs${query}`)) as Record<string, Row>;
      const rows = Object.values(groups).sort(byName).map((g) => [g.name,
        Object.entries((g.attributes as Row | undefined) ?? {}).map(([k, v]) => `${k}=${String(v)}`), g.description]);
      print(options.json, groups, () => formatTable(['name', 'attributes', 'description'], rows));
    });

  clientCommand(group.command('show <group>').description('one attribute group: its fields and attributes'))
    .action(async (id: string, options: ClientOptions) => {
      const view = (await (await sessionFor(options)).call('GET', `/attrib/${seg(id)}`)) as Row;
      const { attributes, ...fields } = view;
      print(options.json, view, () => `${formatFields(fields)}\n${formatTable(['attribute', 'value'], Object.entries((attributes as Row | undefined) ?? {}))}`);
    });

  clientCommand(group.command('create <name> [pairs...]').description('create an attribute group with attributes KEY=VALUE …; prints its uid')
    .option('--description <text>', 'free text'))
    .action(async (name: string, pairs: string[], options: ClientOptions & { description?: string }) => {
      const body = { name, attributes: parsePairs(pairs), ...(options.description === undefined ? {} : { description: options.description }) };
      const uid = (await (await sessionFor(options)).call('POST', '/attribs', body)) as string;
      print(options.json, { uid, ...body }, () => `created ${name} ${uid}\n`);
    });

  clientCommand(group.command('rm <groups...>').description('delete attribute groups (refused while a node still uses one)'))
    .action(async (ids: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      reportOutcomes(await eachTarget(ids, async (id) => void (await session.call('DELETE', `/attrib/${seg(id)}`))), 'deleted', options.json);
    });

  clientCommand(group.command('assign <node> <groups...>').description("append attribute groups to a node's groups"))
    .action(async (node: string, groups: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      await session.call('POST', `/node/${seg(node)}/groups`, groups);
      await printNodeGroups(session, node, options.json);
    });

  clientCommand(group.command('unassign <node> <groups...>').description("remove attribute groups from a node's groups"))
    .action(async (node: string, groups: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      await session.call('DELETE', `/node/${seg(node)}/groups`, groups);
      await printNodeGroups(session, node, options.json);
    });
}

export function registerNodeCommands(program: Command): void {
  registerNode(program);
  registerAttrib(program);
  registerGroup(program);
}
