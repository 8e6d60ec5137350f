// Bodies that broke the API before (issue 19, items 11 and 12): JSON nested too deep and names or
// fields too long answer 400 with a reason naming what is wrong, never 500.
import test from 'ava';
import { MAX_JSON_DEPTH } from '../src/http/server.js';
import { MAX_NAME_LENGTH } from '../src/model/object-store.js';
import { MAX_STRING_LENGTH } from '../src/model/schema.js';
import { startTestHead } from './helpers/head.js';

const nested = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

test('JSON nested deeper than the limit is a 400, with or without a token', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  t.is((await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:aa:bb:02' } })).status, 200);
  // The token-less node report that answered 500 at ~1,220 levels.
  const deep = await h.call('PUT', '/node/putstatus', { body: `{"status":${nested(1220)}}` });
  t.is(deep.status, 400);
  t.is(deep.json.reason, `JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
  t.is((await h.call('PUT', '/node/putstatus', { body: `{"status":${nested(MAX_JSON_DEPTH - 1)}}` })).status, 200, 'up to the limit is fine');
  t.is((await h.call('PUT', '/node/putstatus', { body: `{"status":${nested(MAX_JSON_DEPTH)}}` })).status, 400);
  // Brackets inside strings are text, not nesting.
  t.is((await h.call('PUT', '/node/putstatus', { body: { status: { note: '{['.repeat(500) + '\\"' } } })).status, 200);
  t.is((await h.call('PATCH', '/cluster', { token, body: `{"accountant":${nested(5000)}}` })).status, 400);
});

test('over-long names and fields are a 400 naming the field, in every class', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const long = 'x'.repeat(2000);
  // A valid body per class, but for its name.
  const bodies: Record<string, Record<string, unknown>> = {
    attribs: {},
    namingpools: { pattern: 'p{}' },
    nets: { first_ip: '10.9.0.1', ip_count: 4, mask_bits: 24 },
    hostnames: { ip: '10.9.0.5' },
    dyngroups: { selector: 'a[rack] == "r1"' },
    images: {},
    bootconfigs: {},
    repos: {},
    distros: {},
    admins: { password: 'long-enough-pw' },
  };
  for (const [plural, body] of Object.entries(bodies)) {
    const res = await h.call('POST', `/${plural}`, { token, body: { ...body, name: long } });
    t.is(res.status, 400, plural);
    t.regex(res.json.reason!, /^Field 'name' must /, plural);
    const ok = await h.call('POST', `/${plural}`, { token, body: { ...body, name: `ok-${plural}` } });
    t.is(ok.status, 200, `${plural}: ${JSON.stringify(ok.json)}`);
  }
  t.is((await h.call('POST', '/attribs', { token, body: { name: 'x'.repeat(MAX_NAME_LENGTH + 1) } })).json.reason, `Field 'name' must have at most ${MAX_NAME_LENGTH} characters`);
  t.is((await h.call('POST', '/attribs', { token, body: { name: 'x'.repeat(MAX_NAME_LENGTH) } })).status, 200, 'the limit itself is fine');

  const huge = 'y'.repeat(MAX_STRING_LENGTH + 1);
  const description = await h.call('PATCH', '/attrib/ok-attribs', { token, body: { description: huge } });
  t.is(description.status, 400);
  t.is(description.json.reason, `Field 'description' must have at most ${MAX_STRING_LENGTH} characters`);
  const keys = await h.call('POST', '/admins', { token, body: { name: 'frank', password: 'long-enough-pw', keys: [huge] } });
  t.is(keys.json.reason, `Field 'keys' must have items of at most ${MAX_STRING_LENGTH} characters`);
  const value = await h.call('PATCH', '/attrib/ok-attribs/attributes', { token, body: { rack: huge } });
  t.is(value.json.reason, `Field 'attributes': attribute 'rack' must have at most ${MAX_STRING_LENGTH} characters`);
  const key = await h.call('PATCH', '/attrib/ok-attribs/attributes', { token, body: { [long]: 'r1' } });
  t.is(key.json.reason, `Field 'attributes': attribute names must have at most ${MAX_NAME_LENGTH} characters`);
  const login = await h.call('POST', '/login', { body: { user: huge, pass: 'x' } });
  t.is(login.status, 400);
  t.is(login.json.reason, `Field 'user' must have at most ${MAX_STRING_LENGTH} characters`);
});
