import test from 'ava';
import { DEFAULT_LIMITS, maxBlockSizeFor, negotiateOptions, type NegotiatedOptions, type TftpLimits } from '../src/net/tftp/options.js';
import type { TftpOption } from '../src/net/tftp/packets.js';

const limits: TftpLimits = { maxBlockSize: 8192, maxWindowSize: 32 };

function options(pairs: Record<string, string>): TftpOption[] {
  return Object.entries(pairs).map(([name, value]) => ({ name, value }));
}

function negotiated(requested: TftpOption[], serverLimits = limits, fileSize: number | undefined = 1000): NegotiatedOptions {
  const result = negotiateOptions(requested, serverLimits, fileSize);
  if (!result.ok) throw new Error(`expected negotiation to succeed: ${result.reason}`);
  return result.negotiated;
}

test('no options: RFC 1350 defaults and no OACK', (t) => {
  t.deepEqual(negotiated([]), { blockSize: 512, windowSize: 1, timeoutSeconds: undefined, oack: undefined, ignored: [] });
});

test('only unknown or unusable options: no OACK, the reasons are kept for the log', (t) => {
  const result = negotiated(options({ multicast: '', rollover: '0', blksize: 'big', timeout: '0' }));
  t.is(result.oack, undefined);
  t.is(result.blockSize, 512);
  t.deepEqual(result.ignored, [
    'multicast: unknown option',
    'rollover: unknown option',
    'blksize: value "big" is not a decimal number',
    'timeout: 0 is outside 1..255 seconds',
  ]);
});

test('blksize: honoured within limits, clamped to the server maximum, to 65464 and to the MTU', (t) => {
  t.is(negotiated(options({ blksize: '1468' })).blockSize, 1468);
  t.deepEqual(negotiated(options({ blksize: '65464' })).oack, [{ name: 'blksize', value: '8192' }]);
  t.is(negotiated(options({ blksize: '70000' }), DEFAULT_LIMITS).blockSize, 65464);
  t.is(negotiated(options({ blksize: '99999999999999999999' }), DEFAULT_LIMITS).blockSize, 65464);
  t.is(negotiated(options({ blksize: '9000' }), { ...limits, mtu: 1500 }).blockSize, 1468);
  t.is(negotiated(options({ blksize: '8' })).blockSize, 8);
  t.is(maxBlockSizeFor({ maxBlockSize: 65464, maxWindowSize: 1, mtu: 9000 }), 8968);
});

test('blksize below 8 or windowsize 0 cannot be honoured: option negotiation refused', (t) => {
  t.deepEqual(negotiateOptions(options({ blksize: '7' }), limits, 10), { ok: false, reason: 'blksize 7 is below the minimum of 8' });
  t.deepEqual(negotiateOptions(options({ windowsize: '0' }), limits, 10), { ok: false, reason: 'windowsize 0 is below the minimum of 1' });
});

test('windowsize: honoured up to the server maximum', (t) => {
  t.deepEqual(negotiated(options({ windowsize: '16' })).oack, [{ name: 'windowsize', value: '16' }]);
  t.is(negotiated(options({ windowsize: '65535' })).windowSize, 32);
  t.is(negotiated(options({ windowsize: '99999' }), { ...limits, maxWindowSize: 100000 }).windowSize, 65535);
});

test('timeout: 1..255 echoed as sent, outside that omitted', (t) => {
  t.deepEqual(negotiated(options({ timeout: '1' })).oack, [{ name: 'timeout', value: '1' }]);
  t.is(negotiated(options({ timeout: '255' })).timeoutSeconds, 255);
  t.is(negotiated(options({ timeout: '256' })).timeoutSeconds, undefined);
  t.is(negotiated(options({ timeout: '256' })).oack, undefined);
});

test('tsize: answered with the real size; not answered when the size on the wire is unknown (netascii)', (t) => {
  t.deepEqual(negotiated(options({ tsize: '0' }), limits, 34_000_000).oack, [{ name: 'tsize', value: '34000000' }]);
  t.deepEqual(negotiated(options({ tsize: '0' }), limits, 0).oack, [{ name: 'tsize', value: '0' }]);
  t.like(negotiateOptions(options({ tsize: '0' }), limits, undefined), {
    ok: true,
    negotiated: { oack: undefined, ignored: ['tsize: size on the wire not known in advance (netascii)'] },
  });
});

test('OACK keeps the client order and spelling of option names', (t) => {
  const result = negotiated(options({ TSIZE: '0', BlkSize: '1432', foo: 'bar', windowsize: '4', Timeout: '2' }), limits, 77);
  t.deepEqual(result.oack, options({ TSIZE: '77', BlkSize: '1432', windowsize: '4', Timeout: '2' }));
  t.like(result, { blockSize: 1432, windowSize: 4, timeoutSeconds: 2 });
});
