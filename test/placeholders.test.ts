// The one `<name>` placeholder engine shared by kernel command lines, kickstart templates and power
// URIs (src/model/placeholders.ts).
import test from 'ava';
import { fillKickstart } from '../src/boot/kickstart.js';
import { fillPlaceholders, fromSources } from '../src/model/placeholders.js';
import { fillPowerUri } from '../src/model/power-uri.js';

test('a placeholder with a value is filled; anything else stays exactly as written', (t) => {
  const vars = { name: 'n7', ip: '10.0.0.7', 'bmc.user': 'root' };
  const template = 'node <name> at <ip> as <bmc.user>; keep <nosuch>, <>, < name >, a <<EOF heredoc and x<y>z';
  t.is(fillKickstart(template, vars), 'node n7 at 10.0.0.7 as root; keep <nosuch>, <>, < name >, a <<EOF heredoc and x<y>z');
  // Names from the object prototype are not values of the node.
  t.is(fillKickstart('<constructor> <toString>', vars), '<constructor> <toString>');
});

test('sources are asked in order; only text, numbers and booleans fill a placeholder', (t) => {
  const valueOf = fromSources({ a: 'first', n: { nested: 1 } }, { a: 'second', b: 2, c: false, n: 'later' });
  t.is(fillPlaceholders('<a> <b> <c> <n> <d>', valueOf), 'first 2 false later <d>');
});

test('a power URI is filled from attributes only, never from attributes a node writes itself', (t) => {
  t.is(fillPowerUri('ipmi://<user>@<bmc_ip>/<rack>-<node_slot>-<none>', { user: 'admin', bmc_ip: '10.1.0.9', rack: 'r1', node_slot: '4' }), 'ipmi://admin@10.1.0.9/r1-<node_slot>-<none>');
});
