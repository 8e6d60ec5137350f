import test from 'ava';
import { pino } from 'pino';
import { RecentLog } from '../src/log.js';

test('the recent log keeps the newest lines within its byte bound, oldest first', (t) => {
  const recent = new RecentLog(2000);
  const log = pino({ level: 'info' }, recent);
  for (let i = 0; i < 500; i++) log.info({ i }, 'line');
  log.debug('below the level');
  const lines = recent.tail(10_000) as { i: number; msg: string }[];
  t.true(lines.length > 5 && lines.length < 50, `${lines.length} lines kept`);
  t.is(lines.at(-1)!.i, 499);
  t.deepEqual(lines.map((l) => l.i), lines.map((_, k) => 500 - lines.length + k), 'contiguous, oldest first');
  t.is(JSON.stringify(lines).length < 2000 + lines.length * 2, true);
  t.deepEqual((recent.tail(2) as { i: number }[]).map((l) => l.i), [498, 499]);
});
