import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FRESH_MS, readiness, StoreHealth } from '../../src/store/health.ts';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

test('a fresh success answers readiness without a round trip (a saturated pool is still a reachable store)', async () => {
  const c = clock();
  let probes = 0;
  const health = new StoreHealth(async () => void probes++, c.now);
  health.onQuery({ level: 'query', query: {} as never, queryDurationMillis: 4_000 });
  c.advance(FRESH_MS - 1);
  assert.equal(await health.ready(), true);
  assert.equal(probes, 0);
  c.advance(2);
  assert.equal(await health.ready(), true, 'stale: the probe answers');
  assert.equal(probes, 1);
});

test('a failure after the last success sends readiness to the probe; a probe that fails or hangs is not ready', async () => {
  const c = clock();
  let answer: 'ok' | 'fail' | 'hang' = 'fail';
  const health = new StoreHealth(
    () =>
      answer === 'ok'
        ? Promise.resolve()
        : answer === 'fail'
          ? Promise.reject(new Error('ECONNREFUSED'))
          : new Promise(() => {}),
    c.now,
  );
  health.noteSuccess();
  c.advance(10);
  health.onQuery({
    level: 'error',
    error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    query: {} as never,
    queryDurationMillis: 1,
  });
  assert.equal(await health.ready(), false);
  assert.match(health.snapshot().lastError ?? '', /ECONNREFUSED/);
  answer = 'hang';
  const started = Date.now();
  assert.equal(await health.ready(), false, 'a probe that does not answer within its timeout');
  assert.ok(Date.now() - started < 5_000);
  answer = 'ok';
  assert.equal(await health.ready(), true);
});

test('an error the server itself answered (a constraint, SQLSTATE 23505) proves the store reachable; connection errors (08006) do not', async () => {
  const c = clock();
  let probes = 0;
  const health = new StoreHealth(async () => void probes++, c.now);
  health.noteFailure(Object.assign(new Error('duplicate key'), { code: '23505' }));
  assert.equal(await health.ready(), true);
  assert.equal(probes, 0);
  c.advance(1);
  health.noteFailure(Object.assign(new Error('connection failure'), { code: '08006' }));
  assert.equal(await health.ready(), true);
  assert.equal(probes, 1, 'a connection error sends readiness to the probe');
});

test('readiness (what /readyz answers on the boot HTTP role and the API): 200 ready while the store answers, else 503', async () => {
  const c = clock();
  let up = true;
  const health = new StoreHealth(() => (up ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))), c.now);
  assert.deepEqual(await readiness(health), { statusCode: 200, body: { status: 'ready' } });
  up = false;
  c.advance(1);
  health.noteFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  assert.deepEqual(await readiness(health), { statusCode: 503, body: { status: 'store unreachable' } });
});
